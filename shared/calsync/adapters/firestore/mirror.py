"""``ports.MirrorStore`` on Firestore: calsync's copy of each calendar's events and its sync cursor.

- ``{env}_calendars/{key}/events/{event_id}``: the mirror, one subcollection per calendar. A
  subcollection (rather than a flat ``{key}__{event_id}`` collection) keeps every mirror query scoped
  to one calendar by its path, so a range on one field (``end``/``start``) needs only Firestore's
  automatic single-field indexes, and reads of a page's ids are direct ``get_all`` lookups.
- ``{env}_calendars/{key}/sync/cursor`` and ``.../sync/seen_{n}``: an unfinished pass (continuation)
  and the ids a full listing has returned so far, in chunks well under the 1 MiB document limit.

Composite index needed in production: events ``(origin, end)``; single-field: events ``end``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from calsync import errors
from calsync.adapters.firestore.base import BATCH_LIMIT, MAX_EVENT_SPAN, FirestoreBase, chunks, classified
from calsync.model import MirrorEvent, SyncCursor, merge_published
from calsync.ports.queries import MirrorQuery

SEEN_CHUNK = 5000
# What people's events held before calsync kept their busy time only (``scrub_people_content``).
PEOPLE_CONTENT = ("summary", "description", "location", "attendees")
SCRUBBED: Mapping[str, Any] = {
    "summary": None,
    "attendees": [],
    "description": firestore.DELETE_FIELD,
    "location": firestore.DELETE_FIELD,
}


def cursor_documents(sync: Any, cursor: SyncCursor) -> list[tuple[Any, Mapping[str, Any] | None]]:
    """The documents of a saved pass under the calendar's ``sync`` subcollection: seen-id chunks, then
    the cursor (which counts them)."""
    parts = list(chunks(cursor.seen_ids, SEEN_CHUNK))
    writes: list[tuple[Any, Mapping[str, Any] | None]] = [
        (sync.document(f"seen_{n}"), {"ids": list(ids)}) for n, ids in enumerate(parts)
    ]
    writes.append((sync.document("cursor"), {**cursor.model_dump(exclude={"seen_ids"}), "seen_chunks": len(parts)}))
    return writes


class FirestoreMirrorStore(FirestoreBase):
    """The mirror and sync cursors in Firestore (see the module docstring for the layout)."""

    def _events(self, key: str) -> Any:
        return self._calendar_ref(key).collection("events")

    def _sync(self, key: str) -> Any:
        return self._calendar_ref(key).collection("sync")

    @classified
    def get_events(self, calendar_key: str, event_ids: Sequence[str]) -> dict[str, MirrorEvent]:
        """The mirror documents of these ids, read with batched ``get_all`` (never a scan)."""
        self._schema()
        return self._get_all(self._events(calendar_key), event_ids, MirrorEvent)

    @classified
    def put_events(self, events: Sequence[MirrorEvent]) -> None:
        """Write mirror documents in batches of at most 500."""
        self._schema()
        self._commit([(self._events(e.calendar_key).document(e.external_id), e.model_dump()) for e in events])

    @classified
    def merge_observed_events(self, events: Sequence[MirrorEvent]) -> None:
        """Merge-write what a sync observed, never ``published``: that snapshot is the publisher's.

        A sync that read a document before an apply recorded its snapshot must not put the old one back
        (the sync never changes a snapshot, it only carries it along).
        """
        self._schema()
        for chunk in chunks(list(events), BATCH_LIMIT):
            batch = self.client.batch()
            for e in chunk:
                ref = self._events(e.calendar_key).document(e.external_id)
                batch.set(ref, e.model_dump(exclude={"published"}), merge=True)
            batch.commit()

    @classified
    def record_published(self, events: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Record what calsync just wrote (one transaction, ``merge_published`` per document)."""
        self._schema()
        if not events:
            return {}
        refs = {e.external_id: self._events(e.calendar_key).document(e.external_id) for e in events}

        @firestore.transactional
        def record(transaction: Any) -> dict[str, MirrorEvent]:
            current = {
                snap.id: MirrorEvent.model_validate(snap.to_dict())
                for snap in transaction.get_all(list(refs.values()))
                if snap.exists
            }
            stored: dict[str, MirrorEvent] = {}
            for e in events:
                merged = merge_published(current.get(e.external_id), e)
                transaction.set(refs[e.external_id], merged.model_dump())
                stored[e.external_id] = merged
            return stored

        result: dict[str, MirrorEvent] = record(self.client.transaction())
        return result

    @classified
    def window_event_ids(self, calendar_key: str, time_min: datetime, time_max: datetime) -> set[str]:
        """Ids of non-cancelled mirror events overlapping the window (reads only three fields)."""
        self._schema()
        query = self._events(calendar_key).where(filter=FieldFilter("end", ">", time_min))
        ids: set[str] = set()
        for snap in query.select(["start", "status"]).stream():
            data = snap.to_dict() or {}
            start = data.get("start")
            if data.get("status") != "cancelled" and start is not None and start < time_max:
                ids.add(snap.id)
        return ids

    @classified
    def system_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled system mirror events overlapping the window (index: origin, end)."""
        return self._overlapping(calendar_key, "system", time_min, time_max)

    @classified
    def manual_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled manual mirror events overlapping the window (index: origin, end)."""
        return self._overlapping(calendar_key, "manual", time_min, time_max)

    @classified
    def series_instances(self, calendar_key: str, series_id: str) -> list[MirrorEvent]:
        """Non-cancelled mirror events that are instances of ``series_id`` (single-field index)."""
        self._schema()
        query = self._events(calendar_key).where(filter=FieldFilter("recurring_event_id", "==", series_id))
        found = (MirrorEvent.model_validate(snap.to_dict()) for snap in query.stream())
        return [e for e in found if e.status != "cancelled"]

    def _overlapping(self, calendar_key: str, origin: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        self._schema()
        query = self._events(calendar_key).where(filter=FieldFilter("origin", "==", origin))
        query = query.where(filter=FieldFilter("end", ">", time_min))
        result = []
        for snap in query.stream():
            event = MirrorEvent.model_validate(snap.to_dict())
            if event.status != "cancelled" and event.start is not None and event.start < time_max:
                result.append(event)
        return result

    @classified
    def list_mirror_events(self, spec: MirrorQuery) -> tuple[list[MirrorEvent], str | None]:
        """One page of non-cancelled mirror events by start (pages may be short; the token is an id)."""
        self._schema()
        events = self._events(spec.calendar_key)
        query = events.order_by("start").order_by("__name__")
        if spec.time_max is not None:
            query = query.where(filter=FieldFilter("start", "<", spec.time_max))
        if spec.time_min is not None:
            query = query.where(filter=FieldFilter("start", ">=", spec.time_min - MAX_EVENT_SPAN))
        if spec.page_token:
            last = events.document(spec.page_token).get()
            if not last.exists:
                raise errors.InvalidRequest("page_token is no longer valid", details={"page_token": "unknown"})
            query = query.start_after(last)
        snaps = list(query.limit(spec.page_size).stream())
        items = []
        for snap in snaps:
            event = MirrorEvent.model_validate(snap.to_dict())
            if event.status == "cancelled":
                continue
            if spec.time_min is not None and (event.end is None or event.end <= spec.time_min):
                continue
            items.append(event)
        token = snaps[-1].id if len(snaps) == spec.page_size else None
        return items, token

    @classified
    def get_sync_cursor(self, calendar_key: str) -> SyncCursor | None:
        """The unfinished pass of this calendar (with its seen ids), or None."""
        self._schema()
        sync = self._sync(calendar_key)
        snap = sync.document("cursor").get()
        if not snap.exists:
            return None
        data = snap.to_dict() or {}
        parts = int(data.pop("seen_chunks", 0))
        seen: list[str] = []
        refs = [sync.document(f"seen_{n}") for n in range(parts)]
        for part in self.client.get_all(refs) if refs else []:
            seen.extend((part.to_dict() or {}).get("ids", []))
        return SyncCursor.model_validate({**data, "seen_ids": seen})

    @classified
    def put_sync_cursor(self, cursor: SyncCursor) -> None:
        """Save where a pass stopped: the cursor and its seen-id chunks in one batch."""
        self._schema()
        self._commit(cursor_documents(self._sync(cursor.calendar_key), cursor))

    @classified
    def delete_sync_cursor(self, calendar_key: str) -> None:
        """Forget the unfinished pass (cursor first, so a half-done delete leaves no cursor)."""
        self._schema()
        sync = self._sync(calendar_key)
        refs = [snap.reference for snap in sync.select([]).stream()]
        refs.sort(key=lambda ref: ref.id != "cursor")
        self._commit([(ref, None) for ref in refs])

    @classified
    def delete_mirror_events_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` mirror events (calendar by calendar) whose end is before ``cutoff``."""
        self._schema()
        deleted = 0
        for calendar in self._col("calendars").select(["key"]).stream():
            remaining = limit - deleted
            if remaining <= 0:
                break
            query = self._events(calendar.id).where(filter=FieldFilter("end", "<", cutoff)).limit(remaining)
            refs = [snap.reference for snap in query.select([]).stream()]
            self._commit([(ref, None) for ref in refs])
            deleted += len(refs)
        return deleted

    @classified
    def scrub_people_content(self, limit: int) -> int:
        """Drop content from up to ``limit`` people's mirror events (calendar by calendar); the count.

        Documents written before calsync kept busy time only may hold a person's title, description,
        location or guests; a sync's merge-write never removes a field, so they are deleted here.
        """
        self._schema()
        scrubbed = 0
        for calendar in self._col("calendars").select(["key"]).stream():
            query = self._events(calendar.id).where(filter=FieldFilter("origin", "==", "manual"))
            snaps = query.select(list(PEOPLE_CONTENT)).stream()
            held = [s.reference for s in snaps if any((s.to_dict() or {}).get(f) for f in PEOPLE_CONTENT)]
            held = held[: limit - scrubbed]
            self._commit_updates([(ref, SCRUBBED) for ref in held])
            scrubbed += len(held)
            if scrubbed >= limit:
                break
        return scrubbed

    def _commit_updates(self, updates: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
        for chunk in chunks(list(updates), BATCH_LIMIT):
            batch = self.client.batch()
            for ref, fields in chunk:
                batch.update(ref, dict(fields))
            batch.commit()
