"""``ports.MirrorStore`` in memory: mirror events by (calendar, id) and each calendar's sync cursor."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from calsync import errors
from calsync.model import MirrorEvent, SyncCursor, merge_published
from calsync.ports.queries import MirrorQuery

# As the Firestore store: the admin listing looks this far before ``time_min`` for events that overlap it.
MAX_EVENT_SPAN = timedelta(days=31)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _by_start(event: MirrorEvent) -> tuple[bool, datetime, str]:
    """Firestore's order for ``order_by("start").order_by("__name__")`` (nulls first)."""
    return (event.start is not None, event.start or _EARLIEST, event.external_id)


def _overlaps(event: MirrorEvent, time_min: datetime, time_max: datetime) -> bool:
    return event.start is not None and event.end is not None and event.start < time_max and event.end > time_min


class InMemoryMirrorStore:
    """The mirror and sync cursors in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[tuple[str, str], MirrorEvent] = {}
        self.cursors: dict[str, SyncCursor] = {}
        self._mirror_guard = threading.Lock()

    def get_events(self, calendar_key: str, event_ids: Sequence[str]) -> dict[str, MirrorEvent]:
        """The mirror documents of these ids."""
        found = {i: self.events.get((calendar_key, i)) for i in event_ids}
        return {i: e.model_copy(deep=True) for i, e in found.items() if e is not None}

    def put_events(self, events: Sequence[MirrorEvent]) -> None:
        """Write mirror documents."""
        for event in events:
            self.events[(event.calendar_key, event.external_id)] = event.model_copy(deep=True)

    def merge_observed_events(self, events: Sequence[MirrorEvent]) -> None:
        """Write what a sync observed, keeping each stored ``published`` snapshot."""
        with self._mirror_guard:
            for event in events:
                key = (event.calendar_key, event.external_id)
                stored = self.events.get(key)
                published = stored.published if stored is not None else event.published
                self.events[key] = event.model_copy(update={"published": published}, deep=True)

    def record_published(self, events: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Record what calsync just wrote (``merge_published`` per document, atomically)."""
        with self._mirror_guard:
            stored: dict[str, MirrorEvent] = {}
            for event in events:
                key = (event.calendar_key, event.external_id)
                merged = merge_published(self.events.get(key), event).model_copy(deep=True)
                self.events[key] = merged
                stored[event.external_id] = merged.model_copy(deep=True)
            return stored

    def _of(self, calendar_key: str) -> list[MirrorEvent]:
        return [e for (k, _), e in self.events.items() if k == calendar_key]

    def _live(self, calendar_key: str) -> list[MirrorEvent]:
        return [e for e in self._of(calendar_key) if e.status != "cancelled"]

    def window_event_ids(self, calendar_key: str, time_min: datetime, time_max: datetime) -> set[str]:
        """Ids of non-cancelled mirror events overlapping the window."""
        return {e.external_id for e in self._live(calendar_key) if _overlaps(e, time_min, time_max)}

    def system_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled system mirror events overlapping the window."""
        return self._overlapping(calendar_key, "system", time_min, time_max)

    def manual_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled manual mirror events overlapping the window."""
        return self._overlapping(calendar_key, "manual", time_min, time_max)

    def series_instances(self, calendar_key: str, series_id: str) -> list[MirrorEvent]:
        """Non-cancelled mirror events that are instances of ``series_id``."""
        found = [
            e
            for (key, _), e in sorted(self.events.items())
            if key == calendar_key and e.recurring_event_id == series_id and e.status != "cancelled"
        ]
        return [e.model_copy(deep=True) for e in found]

    def _overlapping(self, calendar_key: str, origin: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        return [
            e.model_copy(deep=True)
            for e in sorted(self._live(calendar_key), key=lambda e: (e.end or _EARLIEST, e.external_id))
            if e.origin == origin and _overlaps(e, time_min, time_max)
        ]

    def list_mirror_events(self, spec: MirrorQuery) -> tuple[list[MirrorEvent], str | None]:
        """One page of non-cancelled mirror events by start, paged like Firestore (pages may be short;
        the token is the last id read; an unknown token is ``InvalidRequest``)."""
        rows = sorted(
            (
                e
                for e in self._of(spec.calendar_key)
                if (spec.time_max is None or (e.start is not None and e.start < spec.time_max))
                and (spec.time_min is None or (e.start is not None and e.start >= spec.time_min - MAX_EVENT_SPAN))
            ),
            key=_by_start,
        )
        if spec.page_token:
            last = self.events.get((spec.calendar_key, spec.page_token))
            if last is None:
                raise errors.InvalidRequest("page_token is no longer valid", details={"page_token": "unknown"})
            rows = [e for e in rows if _by_start(e) > _by_start(last)]
        chunk = rows[: spec.page_size]
        items = [
            e.model_copy(deep=True)
            for e in chunk
            if e.status != "cancelled" and (spec.time_min is None or (e.end is not None and e.end > spec.time_min))
        ]
        return items, (chunk[-1].external_id if len(chunk) == spec.page_size else None)

    def get_sync_cursor(self, calendar_key: str) -> SyncCursor | None:
        """The unfinished pass of this calendar, or None."""
        cursor = self.cursors.get(calendar_key)
        return cursor.model_copy(deep=True) if cursor else None

    def put_sync_cursor(self, cursor: SyncCursor) -> None:
        """Save where a pass stopped."""
        self.cursors[cursor.calendar_key] = cursor.model_copy(deep=True)

    def delete_sync_cursor(self, calendar_key: str) -> None:
        """Forget the unfinished pass."""
        self.cursors.pop(calendar_key, None)

    def _registered(self, calendar_key: str) -> bool:
        """Whether a calendar's events are subject to retention (the composite store asks its calendars)."""
        return True

    def scrub_people_content(self, limit: int) -> int:
        """Drop title and guests from up to ``limit`` people's mirror events (the record keeps no other content)."""
        held = sorted(k for k, e in self.events.items() if e.origin == "manual" and (e.summary or e.attendees))
        held = [k for k in held if self._registered(k[0])][:limit]
        for key in held:
            self.events[key] = self.events[key].model_copy(update={"summary": None, "attendees": []})
        return len(held)

    def delete_mirror_events_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` mirror events that ended before ``cutoff``, calendar by calendar and by end
        (as the Firestore store, which walks the registered calendars)."""
        ended = [e for e in self.events.values() if e.end is not None and e.end < cutoff]
        ended = [e for e in ended if self._registered(e.calendar_key)]
        old = sorted(ended, key=lambda e: (e.calendar_key, e.end or _EARLIEST, e.external_id))[:limit]
        for event in old:
            del self.events[(event.calendar_key, event.external_id)]
        return len(old)
