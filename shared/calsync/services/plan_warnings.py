"""Plan warnings: the allocations a publish would place over busy time, shown before the admin confirms.

Busy time comes from two places, as intervals only (never a person's title, guests or content):

- **on a calsync calendar** (kind ``overlap_manual``, the conflict the write would raise): people's
  events in the mirror of the allocation's professional or room calendar that block time
  (``classify.busy``: live, opaque, not a working location; all-day events and each instance of a
  series count);
- **elsewhere** (kind ``busy_elsewhere``): the professional's own calendar as calsync's last free/busy
  check saw it. Free/busy has no push and a plan reads no Google calendar, so the busy intervals are
  those the check recorded on its open ``busy_elsewhere`` conflicts of the professional; ``collisions``
  compares them with every allocation of the plan (also one not yet published). A professional whose
  free/busy is not readable (``FreeBusyState``) gives no warning: nothing is known, nothing invented.

Warnings never block a plan: the admin sees them and decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from calsync.model import Allocation, ConflictKind, has_started
from calsync.ports import PublishStore
from calsync.ports.queries import ConflictQuery, pages
from calsync.results import PlanWarning
from calsync.services.availability import Interval, collisions
from calsync.services.classify import busy, overlaps
from calsync.services.our_events import professional_key, room_key

PAGE = 500
PUBLISHED = frozenset({"reviewed", "adjusted"})


def _calendar_busy(store: PublishStore, key: str, time_min: datetime, time_max: datetime) -> list[Interval]:
    """People's busy intervals on one calsync calendar over the window, from its mirror."""
    return sorted(
        (m.start, m.end)
        for m in store.manual_events_overlapping(key, time_min, time_max)
        if busy(m) and m.start is not None and m.end is not None
    )


def _elsewhere_busy(store: PublishStore, clinic_id: str, professional_ids: Iterable[str]) -> dict[str, list[Interval]]:
    """Busy intervals on each professional's own calendar, as the last free/busy check recorded them."""
    found: dict[str, list[Interval]] = {}
    for pid in sorted(set(professional_ids)):
        query = ConflictQuery(professional_key(clinic_id, pid), status="open", kind="busy_elsewhere", page_size=PAGE)
        for page in pages(store.list_conflicts, query):
            found.setdefault(pid, []).extend(
                (c.google_start, c.google_end) for c in page if c.google_start and c.google_end
            )
    return {pid: sorted(set(intervals)) for pid, intervals in found.items() if intervals}


def _warning(allocation: Allocation, calendar_key: str, kind: ConflictKind, interval: Interval) -> PlanWarning:
    start, end = interval
    return PlanWarning(allocation_id=allocation.id, calendar_id=calendar_key, kind=kind, start=start, end=end)


def plan_warnings(
    store: PublishStore,
    *,
    clinic_id: str,
    allocations: Sequence[Allocation],
    calendar_keys: Iterable[str],
    time_min: datetime,
    time_max: datetime,
    now: datetime,
) -> list[PlanWarning]:
    """The plan's allocations (published, not started) over busy time, sorted; ``calendar_keys``: registered ones."""
    upcoming = [a for a in allocations if a.status in PUBLISHED and not has_started(a.start, now)]
    if not upcoming:
        return []
    registered = set(calendar_keys)
    warnings: list[PlanWarning] = []
    by_calendar: dict[str, list[Allocation]] = {}
    for a in upcoming:
        for key in (professional_key(a.clinic_id, a.professional_id), room_key(a.clinic_id, a.room_id)):
            if key in registered:
                by_calendar.setdefault(key, []).append(a)
    for key, placed in sorted(by_calendar.items()):
        intervals = _calendar_busy(store, key, time_min, time_max)
        for a in placed:
            hit = next((i for i in intervals if overlaps(a.start, a.end, *i)), None)
            if hit is not None:
                warnings.append(_warning(a, key, "overlap_manual", hit))
    elsewhere: Mapping[str, list[Interval]] = _elsewhere_busy(store, clinic_id, (a.professional_id for a in upcoming))
    for collision in collisions(upcoming, elsewhere):
        a = collision.allocation
        warnings.append(_warning(a, professional_key(a.clinic_id, a.professional_id), "busy_elsewhere", collision.busy))
    return sorted(warnings, key=lambda w: (w.allocation_id, w.calendar_id, w.kind, w.start))
