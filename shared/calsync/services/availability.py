"""Busy elsewhere: a professional's own calendar, read through free/busy only.

Professionals mark vacations, congresses and out-of-office time on their **own** primary calendar,
which calsync never lists. For each professional with an e-mail, ``check_clinic`` asks
``freebusy.query`` (at most ``FREEBUSY_MAX_CALENDARS`` calendars per query) for busy intervals over
the coming ``horizon_days``, and compares them with the clinic's published allocations that have not
started: an allocation that collides with busy time there is a conflict of kind ``busy_elsewhere``
(one per allocation, deterministic id, on the professional's calsync calendar), with a suggestion;
one that no longer collides has its conflict resolved. Only intervals are read, never content.

A calendar whose free/busy calsync cannot read (``notFound``: not shared with the acting account) is
recorded as not readable (health shows it per professional) and invents no conflict; its open
conflicts stay as they were, since nothing new is known. Free/busy has no push: the renew function
runs this on a schedule, and a plan calls ``collisions`` to warn before writing.
Reference: https://developers.google.com/workspace/calendar/api/v3/reference/freebusy/query
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from calsync.job_results import AvailabilityRun
from calsync.logs import get_logger
from calsync.model import Allocation, Conflict, ConflictKind, FreeBusyState, Professional, has_started
from calsync.ports import FREEBUSY_MAX_CALENDARS, CalendarApi, Clock, PublishStore
from calsync.ports.queries import ConflictQuery, pages
from calsync.results import AvailabilityChecked
from calsync.services.classify import conflict_id, when_text
from calsync.services.our_events import event_id, professional_key

log = get_logger(__name__)

KIND: ConflictKind = "busy_elsewhere"
PUBLISHED = frozenset({"reviewed", "adjusted"})
Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class AvailabilityConfig:
    """Settings of the check (built by the composition root)."""

    env: str
    time_zone: str = "America/Sao_Paulo"
    horizon_days: int = 14


@dataclass(frozen=True)
class Collision:
    """A published allocation that overlaps busy time on its professional's own calendar."""

    allocation: Allocation
    busy: Interval


def collisions(allocations: Iterable[Allocation], busy: Mapping[str, Sequence[Interval]]) -> list[Collision]:
    """Allocations overlapping their professional's busy intervals (``busy`` by professional id); pure."""
    found = []
    for allocation in allocations:
        for start, end in busy.get(allocation.professional_id, ()):
            if start < allocation.end and allocation.start < end:
                found.append(Collision(allocation, (start, end)))
                break
    return found


def read_busy(
    professionals: Sequence[Professional], window: Interval, api: CalendarApi
) -> tuple[dict[str, list[Interval]], dict[str, str]]:
    """Busy intervals by professional id, and the reason for each professional whose calendar is unreadable."""
    with_email = [p for p in professionals if p.email]
    busy: dict[str, list[Interval]] = {}
    unreadable: dict[str, str] = {}
    for first in range(0, len(with_email), FREEBUSY_MAX_CALENDARS):
        chunk = with_email[first : first + FREEBUSY_MAX_CALENDARS]
        by_email = {p.email.lower(): p.id for p in chunk}
        for answer in api.free_busy([p.email for p in chunk], *window):
            professional_id = by_email[answer.calendar_id.lower()]
            if answer.error is not None:
                unreadable[professional_id] = answer.error
            else:
                busy[professional_id] = list(answer.busy)
    return busy, unreadable


def _conflict(env: str, collision: Collision, now: datetime, tz: ZoneInfo) -> Conflict:
    allocation = collision.allocation
    key = professional_key(allocation.clinic_id, allocation.professional_id)
    eid = event_id(env, allocation.id, key)
    start, end = collision.busy
    return Conflict(
        id=conflict_id(key, eid, KIND),
        kind=KIND,
        calendar_key=key,
        event_id=eid,
        allocation_id=allocation.id,
        suggestion=(
            f"the professional is busy on their own calendar at {when_text(start, end, tz)}, during allocation "
            f"{allocation.id}: move or reassign it"
        ),
        detected_at=now,
        google_start=start,
        google_end=end,
    )


def _open_conflicts(store: PublishStore, calendar_keys: Iterable[str]) -> list[Conflict]:
    found: list[Conflict] = []
    for key in calendar_keys:
        for page in pages(store.list_conflicts, ConflictQuery(key, status="open", page_size=200, kind=KIND)):
            found.extend(page)
    return found


def check_all(*, store: PublishStore, api: CalendarApi, clock: Clock, config: AvailabilityConfig) -> AvailabilityRun:
    """The scheduled check: every clinic that has professional calendars."""
    clinics = sorted({r.clinic_id for r in store.list_calendars() if r.kind == "professional" and r.clinic_id})
    runs = [check_clinic(c, store=store, api=api, clock=clock, config=config) for c in clinics]
    return AvailabilityRun(
        clinics=len(runs),
        collisions=sum(r.collisions for r in runs),
        conflicts_opened=sum(r.conflicts_opened for r in runs),
        conflicts_resolved=sum(r.conflicts_resolved for r in runs),
        not_readable=sum(len(r.not_readable) for r in runs),
    )


def check_clinic(
    clinic_id: str, *, store: PublishStore, api: CalendarApi, clock: Clock, config: AvailabilityConfig
) -> AvailabilityChecked:
    """Read the clinic's professionals' free/busy, open and resolve ``busy_elsewhere`` conflicts."""
    now = clock.now()
    window = (now, now + timedelta(days=config.horizon_days))
    professionals = store.list_professionals(clinic_id)
    busy, unreadable = read_busy(professionals, window, api)
    store.put_free_busy_states(
        [
            FreeBusyState(
                clinic_id=clinic_id,
                professional_id=p.id,
                readable=p.id in busy,
                reason=unreadable.get(p.id) if p.email else "no_email",
                checked_at=now,
            )
            for p in professionals
        ]
    )
    allocations = store.list_allocations(clinic_id, *window)
    started = {a.id for a in allocations if has_started(a.start, now)}
    upcoming = [a for a in allocations if a.status in PUBLISHED and a.id not in started and a.professional_id in busy]
    tz = ZoneInfo(config.time_zone)
    wanted = {c.id: c for c in (_conflict(config.env, x, now, tz) for x in collisions(upcoming, busy))}
    readable_keys = [professional_key(clinic_id, pid) for pid in busy]
    current = {c.id: c for c in _open_conflicts(store, readable_keys)}
    opened = [c for cid, c in wanted.items() if cid not in current]
    resolved = [
        c.model_copy(update={"status": "resolved", "resolved_at": now})
        for cid, c in current.items()
        if cid not in wanted and c.allocation_id not in started
    ]
    store.put_conflicts([*opened, *resolved])
    log.info(
        "availability.checked",
        clinic_id=clinic_id,
        count=len(professionals),
        conflicts_opened=len(opened),
        conflicts_resolved=len(resolved),
        skipped=len(unreadable),
    )
    return AvailabilityChecked(
        clinic_id=clinic_id,
        checked_at=now,
        professionals=len(professionals),
        readable=len(busy),
        not_readable=sorted(unreadable),
        collisions=len(wanted),
        conflicts_opened=len(opened),
        conflicts_resolved=len(resolved),
    )
