"""Pure classification of Google events against the mirror: what to write and which conflicts exist.

The shape follows Cal.com's ``getBookingUpdateActions``: a pure function returns a decision with
reason codes, and the reconciler (``services.reconcile``) performs the I/O around it. Rules:

- ``system``: our tag (``extendedProperties.private.source == "agendador"``) with our environment;
  ``manual``: no tag; another environment's tag: ignored with a warning and never touched.
- For system events Google's version is compared with the snapshot calsync published: our own echo
  (same etag) is nothing; otherwise a change to a field calsync owns (start/end, status, attendees,
  title) becomes a conflict. Fields people own (description, location, reminders, colour,
  attachments, conference data, ...) are theirs to change: no conflict, nothing blocked.
- **Google wins**: the mirror always takes Google's version; a divergence sets ``source_of_truth`` to
  ``google`` and records a conflict whose suggestion tells a person how to adjust the allocation.
- Conflicts have deterministic ids, so re-syncs never duplicate them, and they are resolved when the
  divergence disappears.
- **A series made of ours**: a person who turns one of our events into a series gives its instances
  (ids ``<our id>_<start>``, ``recurringEventId`` = our id) our private tags. The instances are
  mirrored as they are (tagged, never written by calsync) and the series is one divergence: one
  ``series_from_ours`` conflict on our event's id, resolved when that id is listed as a single event
  again (the series collapsed) or deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo
from typing import Literal

from calsync.model import (
    TAG_ALLOCATION,
    TAG_CLINIC,
    TAG_ENV,
    TAG_SOURCE,
    TAG_SOURCE_VALUE,
    ConflictKind,
    EventOrigin,
    EventTime,
    GoogleEvent,
    MirrorEvent,
    PublishedSnapshot,
)

Action = Literal["write", "unchanged", "ignore"]
EVENT_CONFLICT_KINDS: tuple[ConflictKind, ...] = (
    "moved_in_google",
    "deleted_in_google",
    "attendees_changed",
    "title_changed",
)
SERIES_KIND: ConflictKind = "series_from_ours"
ALL_CONFLICT_KINDS: tuple[ConflictKind, ...] = (*EVENT_CONFLICT_KINDS, "overlap_manual", SERIES_KIND)


def conflict_id(calendar_key: str, event_id: str, kind: ConflictKind) -> str:
    """The deterministic id of the conflict of ``kind`` on one event of one calendar."""
    digest = hashlib.sha256(f"{calendar_key}\x1f{event_id}\x1f{kind}".encode()).hexdigest()
    return f"{kind}-{digest[:32]}"


@dataclass(frozen=True)
class ConflictAction:
    """A divergence to record as an open conflict (the store decides whether it is new)."""

    kind: ConflictKind
    event_id: str
    allocation_id: str | None
    suggestion: str
    google_start: datetime | None = None
    google_end: datetime | None = None


@dataclass(frozen=True)
class EventDecision:
    """What to do with one event of a page, and why (``reasons`` are stable codes, safe to log)."""

    event_id: str
    action: Action
    reasons: tuple[str, ...]
    mirror: MirrorEvent | None = None
    open: tuple[ConflictAction, ...] = ()
    resolve: tuple[ConflictKind, ...] = field(default=())


def _emails(event: GoogleEvent) -> list[str]:
    return sorted({(a.email or "").lower() for a in event.attendees or [] if a.email})


def when_text(start: datetime | None, end: datetime | None, tz: tzinfo) -> str:
    if start is None or end is None:
        return "the time shown in Google"
    name = getattr(tz, "key", None) or "UTC"
    start, end = start.astimezone(tz), end.astimezone(tz)
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} {name}"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {name}"


def suggestion(
    kind: ConflictKind,
    allocation_id: str | None,
    start: datetime | None,
    end: datetime | None,
    tz: tzinfo = UTC,
) -> str:
    """A human-readable way to settle a conflict, times in ``tz`` (no personal data: times and ids only)."""
    allocation = allocation_id or "(unknown)"
    if kind == "moved_in_google":
        return f"move allocation {allocation} to {when_text(start, end, tz)} as in Google"
    if kind == "deleted_in_google":
        return f"allocation {allocation} was deleted in Google: re-publish or cancel it"
    if kind == "title_changed":
        return f"the title of allocation {allocation} was changed in Google: update the allocation or re-publish it"
    if kind == "series_from_ours":
        return (
            f"the event of allocation {allocation} was made a recurring series in Google: calsync leaves the"
            " series alone; schedule the repeats as allocations and end the series, or keep it as it is"
        )
    if kind == "attendees_changed":
        return f"attendees of allocation {allocation} were changed in Google: update the allocation or re-publish it"
    return f"a manual Google event at {when_text(start, end, tz)} overlaps allocation {allocation}: move one of them"


def _origin(event: GoogleEvent, current: MirrorEvent | None) -> tuple[EventOrigin, str | None, str | None]:
    """Origin, environment tag and allocation id; a bare tombstone inherits them from the mirror."""
    tags = event.private_tags
    if tags.get(TAG_SOURCE) == TAG_SOURCE_VALUE:
        return "system", tags.get(TAG_ENV), tags.get(TAG_ALLOCATION)
    if event.cancelled and current is not None and not tags:
        # Deleted events are only guaranteed to carry their id: the tags are gone with them.
        return current.origin, current.env, current.allocation_id
    return "manual", None, None


def series_of(event: GoogleEvent) -> str | None:
    """The series id of an instance (its ``recurringEventId``) or of a master (its own id), else None."""
    if event.recurring_event_id:
        return event.recurring_event_id
    return event.id if event.recurrence else None


def _unchanged(event: GoogleEvent, current: MirrorEvent | None) -> bool:
    if current is None:
        return False
    status = event.status or "confirmed"
    if event.etag is None:
        return event.cancelled and current.status == "cancelled"
    return (
        current.etag == event.etag
        and current.status == status
        and (event.updated is None or current.updated == event.updated)
    )


def _mirror_from(
    event: GoogleEvent,
    current: MirrorEvent | None,
    *,
    calendar_key: str,
    google_calendar_id: str,
    origin: EventOrigin,
    env: str | None,
    allocation_id: str | None,
    now: datetime,
    tz: tzinfo = UTC,
) -> MirrorEvent:
    """Google's version as a mirror record (a tombstone keeps the last known times and content).

    An all-day event's dates are whole days of the calendar's zone (``tz``), end exclusive, stored as
    the instants they begin and end, so busy time compares with timed events as is. Of people's own
    events only busy time is kept: no title, no guests.
    """
    published = current.published if current is not None else None
    if event.cancelled and current is not None:
        return current.model_copy(
            update={
                "etag": event.etag or current.etag,
                "updated": event.updated or current.updated,
                "status": "cancelled",
                "last_synced_at": now,
            }
        )
    all_day = bool(event.start and event.start.date is not None and event.start.date_time is None)
    start, end = _bounds(event.start, tz), _bounds(event.end, tz)
    ours = origin == "system"
    return MirrorEvent(
        calendar_key=calendar_key,
        external_id=event.id,
        google_calendar_id=google_calendar_id,
        etag=event.etag,
        updated=event.updated,
        status=event.status or "confirmed",
        start=start,
        end=end,
        all_day=all_day,
        summary=event.summary if ours else None,
        attendees=_emails(event) if ours else [],
        transparency=event.transparency,
        event_type=event.event_type,
        recurring_event_id=event.recurring_event_id,
        origin=origin,
        source_of_truth="backend" if origin == "system" else "google",
        allocation_id=allocation_id,
        env=env,
        clinic_id=event.private_tags.get(TAG_CLINIC) if origin == "system" else None,
        last_synced_at=now,
        published=published,
    )


def _divergences(
    event: GoogleEvent, mirror: MirrorEvent, published: PublishedSnapshot, tz: tzinfo
) -> tuple[list[ConflictAction], list[str]]:
    """Conflicts between Google's version (already in ``mirror``) and what calsync published."""
    opened: list[ConflictAction] = []
    reasons: list[str] = []
    allocation = mirror.allocation_id

    def add(kind: ConflictKind) -> None:
        reasons.append(kind)
        opened.append(
            ConflictAction(
                kind=kind,
                event_id=event.id,
                allocation_id=allocation,
                suggestion=suggestion(kind, allocation, mirror.start, mirror.end, tz),
                google_start=mirror.start,
                google_end=mirror.end,
            )
        )

    if event.cancelled:
        if published.status != "cancelled":
            add("deleted_in_google")
        return opened, reasons
    if (mirror.start, mirror.end) != (published.start, published.end):
        add("moved_in_google")
    if sorted(a.lower() for a in published.attendees) != mirror.attendees:
        add("attendees_changed")
    if title_changed(published, mirror.summary):
        add("title_changed")
    return opened, reasons


def title_changed(published: PublishedSnapshot, summary: str | None) -> bool:
    """True when Google's title differs from the one calsync published (unknown for old snapshots)."""
    return published.summary is not None and (summary or "") != published.summary


def diverging_kinds(event: GoogleEvent, published: PublishedSnapshot) -> set[ConflictKind]:
    """The event-conflict kinds between Google's ``event`` and a published snapshot (none for our echo)."""
    start = event.start.as_utc() if event.start else None
    end = event.end.as_utc() if event.end else None
    return _kinds(
        event.etag,
        status=event.status or "confirmed",
        start=start,
        end=end,
        attendees=_emails(event),
        summary=event.summary,
        published=published,
    )


def mirror_diverging_kinds(mirror: MirrorEvent) -> set[ConflictKind]:
    """The event-conflict kinds between a mirror document's Google content and its own snapshot."""
    if mirror.published is None:
        return set()
    return _kinds(
        mirror.etag,
        status=mirror.status,
        start=mirror.start,
        end=mirror.end,
        attendees=mirror.attendees,
        summary=mirror.summary,
        published=mirror.published,
    )


def _kinds(
    etag: str | None,
    *,
    status: str,
    start: datetime | None,
    end: datetime | None,
    attendees: Sequence[str],
    summary: str | None,
    published: PublishedSnapshot,
) -> set[ConflictKind]:
    if published.etag is not None and published.etag == etag:
        return set()
    if status == "cancelled":
        return {"deleted_in_google"} if published.status != "cancelled" else set()
    kinds: set[ConflictKind] = set()
    if (start, end) != (published.start, published.end):
        kinds.add("moved_in_google")
    if sorted(a.lower() for a in published.attendees) != sorted(a.lower() for a in attendees):
        kinds.add("attendees_changed")
    if title_changed(published, summary):
        kinds.add("title_changed")
    return kinds


def classify_event(
    event: GoogleEvent,
    current: MirrorEvent | None,
    *,
    calendar_key: str,
    google_calendar_id: str,
    env: str,
    now: datetime,
    tz: tzinfo = UTC,
    day_tz: tzinfo | None = None,
) -> EventDecision:
    """Decide how one listed event changes the mirror and which event conflicts open or resolve.

    ``tz``: the zone of suggestions' times; ``day_tz``: the calendar's, whose days all-day dates are
    (default ``tz``)."""
    origin, event_env, allocation_id = _origin(event, current)
    if origin == "system" and event_env != env:
        return EventDecision(event.id, "ignore", ("foreign_env",))
    if _unchanged(event, current):
        return EventDecision(event.id, "unchanged", ("unchanged",))
    if event.cancelled and current is None:
        # A tombstone of something we never mirrored: nothing to keep, nothing to compare.
        return EventDecision(event.id, "unchanged", ("unknown_tombstone",))

    mirror = _mirror_from(
        event,
        current,
        calendar_key=calendar_key,
        google_calendar_id=google_calendar_id,
        origin=origin,
        env=event_env,
        allocation_id=allocation_id,
        now=now,
        tz=day_tz or tz,
    )
    if origin == "manual":
        reason = "manual_deleted" if event.cancelled else ("manual_new" if current is None else "manual_changed")
        return EventDecision(event.id, "write", (reason,), mirror=mirror)

    # A deleted master is our event deleted (its instances are tombstoned with it): not a series any more.
    series = None if event.cancelled and not event.recurring_event_id else series_of(event)
    if series is not None:
        return _series_decision(event, mirror, series, tz)

    published = mirror.published
    if published is None:
        return EventDecision(event.id, "write", ("system_no_snapshot",), mirror=mirror)
    if published.etag is not None and published.etag == event.etag:
        # Our own write coming back through the sync token: nothing diverges.
        resolve = (*EVENT_CONFLICT_KINDS, SERIES_KIND)
        return EventDecision(event.id, "write", ("own_echo",), mirror=mirror, resolve=resolve)

    opened, reasons = _divergences(event, mirror, published, tz)
    open_kinds = {c.kind for c in opened}
    # Our id listed on its own again: not (or no longer) a series.
    resolved = (*(k for k in EVENT_CONFLICT_KINDS if k not in open_kinds), SERIES_KIND)
    if opened:
        mirror = mirror.model_copy(update={"source_of_truth": "google"})
    return EventDecision(
        event.id,
        "write",
        tuple(reasons) or ("system_changed",),
        mirror=mirror,
        open=tuple(opened),
        resolve=resolved,
    )


def _series_decision(event: GoogleEvent, mirror: MirrorEvent, series: str, tz: tzinfo) -> EventDecision:
    """A tagged instance (or master) of a series a person made of our event: mirrored, one conflict.

    The conflict is on the series id (our deterministic event id), so every instance names the same
    one; it carries no times (they differ per instance). A cancelled instance only updates the mirror.
    """
    mirror = mirror.model_copy(update={"source_of_truth": "google", "recurring_event_id": series})
    if event.cancelled:
        return EventDecision(event.id, "write", ("series_instance_cancelled",), mirror=mirror)
    action = ConflictAction(
        kind=SERIES_KIND,
        event_id=series,
        allocation_id=mirror.allocation_id,
        suggestion=suggestion(SERIES_KIND, mirror.allocation_id, None, None, tz),
    )
    return EventDecision(event.id, "write", (SERIES_KIND,), mirror=mirror, open=(action,))


def _bounds(when: EventTime | None, tz: tzinfo) -> datetime | None:
    """An event time as an instant: all-day dates begin at midnight of ``tz``."""
    if when is None:
        return None
    if when.date_time is None and when.date is not None:
        return datetime.combine(when.date, time.min, tzinfo=tz).astimezone(UTC)
    return when.as_utc()


def busy(event: MirrorEvent) -> bool:
    """Whether a person's event blocks time: live, opaque ("show as busy"), not a working location."""
    return (
        event.status != "cancelled"
        and event.start is not None
        and event.end is not None
        and event.transparency != "transparent"
        and event.event_type != "workingLocation"
    )


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """True when two half-open intervals share time."""
    return a_start < b_end and b_start < a_end


def overlap_conflict(manual: MirrorEvent, systems: Iterable[MirrorEvent], tz: tzinfo = UTC) -> ConflictAction | None:
    """The ``overlap_manual`` conflict of a live manual event against the system events, if any."""
    if not busy(manual) or manual.start is None or manual.end is None:
        return None
    hits: Sequence[MirrorEvent] = sorted(
        (
            s
            for s in systems
            if s.status != "cancelled"
            and s.start is not None
            and s.end is not None
            and s.external_id != manual.external_id
            and overlaps(manual.start, manual.end, s.start, s.end)
        ),
        key=lambda s: (s.start, s.external_id),
    )
    if not hits:
        return None
    first = hits[0]
    return ConflictAction(
        kind="overlap_manual",
        event_id=manual.external_id,
        allocation_id=first.allocation_id,
        suggestion=suggestion("overlap_manual", first.allocation_id, manual.start, manual.end, tz),
        google_start=manual.start,
        google_end=manual.end,
    )
