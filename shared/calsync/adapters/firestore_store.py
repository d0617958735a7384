"""``ports.StateStore`` on Cloud Firestore (google-cloud-firestore), namespaced per environment.

Layout (``{env}`` is ``dev|stg|prod``, so environments sharing a database never see each other):

- ``{env}_meta/schema``: ``{"version": SCHEMA_VERSION}``, created on first use and checked after.
- ``{env}_calendars/{key}``: ``CalendarRecord``.
- ``{env}_calendars/{key}/events/{event_id}``: the mirror, one subcollection per calendar. A
  subcollection (rather than a flat ``{key}__{event_id}`` collection) keeps every mirror query scoped
  to one calendar by its path, so a range on one field (``end``/``start``) needs only Firestore's
  automatic single-field indexes, and reads of a page's ids are direct ``get_all`` lookups.
- ``{env}_calendars/{key}/sync/cursor`` and ``.../sync/seen_{n}``: an unfinished pass (continuation)
  and the ids a full listing has returned so far, in chunks well under the 1 MiB document limit.
- ``{env}_locks/{key}``: the per-calendar lease (holder, expires_at, pending), kept apart from the
  calendar document so the lock's conditional writes contend with nothing else.
- ``{env}_conflicts/{id}``, ``{env}_channels/{channel_id}``: flat collections.

Writes go in batches of at most ``BATCH_LIMIT`` (Firestore's 500). Every Firestore failure surfaces
as ``errors.StoreUnavailable``. Composite index needed in production: events ``(origin, end)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random

from calsync import errors
from calsync.model import (
    Allocation,
    CalendarRecord,
    ChannelRecord,
    Conflict,
    MirrorEvent,
    Plan,
    PlanChunkProgress,
    Professional,
    Room,
    SyncCursor,
    UnknownChannel,
    merge_published,
)

SCHEMA_VERSION = 1
BATCH_LIMIT = 500
GET_ALL_CHUNK = 1000
SEEN_CHUNK = 5000
# The admin listing bounds its `start` range by this much before `time_min` (longer events that started
# earlier are not listed; clinic events last hours).
MAX_EVENT_SPAN = timedelta(days=31)
# The lease's compare-and-set steps: attempts per call, and the jitter between them (spreads racers apart).
LOCK_ATTEMPTS = 10
LOCK_RETRY_JITTER_S = 0.05

P = ParamSpec("P")
R = TypeVar("R")


# google-cloud-firestore raises a plain ValueError("Failed to commit transaction in N attempts.") when
# contention exhausts a transaction's attempts (firestore_v1.base_transaction._EXCEED_ATTEMPTS_TEMPLATE).
TRANSACTION_CONTENTION = "Failed to commit transaction"


def _classified(fn: Callable[P, R]) -> Callable[P, R]:
    """Classify Firestore failures once, here: bad input is ``InvalidRequest``, the rest ``StoreUnavailable``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except errors.CalsyncError:
            raise
        except ValueError as exc:
            if str(exc).startswith(TRANSACTION_CONTENTION):
                # Contention outlasted the transaction's attempts: transient, the caller retries later.
                raise errors.StoreUnavailable(
                    f"firestore {fn.__name__}: transaction contention", details={"operation": fn.__name__}
                ) from exc
            # A bad document path or value: retrying cannot help, so it is final (a 4xx, not a 503).
            raise errors.InvalidRequest(
                f"firestore {fn.__name__} refused its input: {type(exc).__name__}", details={"operation": fn.__name__}
            ) from exc
        except gexc.InvalidArgument as exc:
            raise errors.InvalidRequest(
                f"firestore {fn.__name__} refused its input: {type(exc).__name__}", details={"operation": fn.__name__}
            ) from exc
        except gexc.GoogleAPIError as exc:
            raise errors.StoreUnavailable(
                f"firestore {fn.__name__} failed: {type(exc).__name__}", details={"operation": fn.__name__}
            ) from exc

    return wrapper


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class FirestoreStateStore:
    """calsync's state in Firestore (see the module docstring for the layout)."""

    def __init__(self, client: firestore.Client, *, environment: str) -> None:
        self.client = client
        self.env = environment
        self._schema_checked = False

    # --- layout ----------------------------------------------------------------------------------

    def _col(self, name: str) -> Any:
        return self.client.collection(f"{self.env}_{name}")

    def _calendar_ref(self, key: str) -> Any:
        return self._col("calendars").document(key)

    def _events(self, key: str) -> Any:
        return self._calendar_ref(key).collection("events")

    def _sync(self, key: str) -> Any:
        return self._calendar_ref(key).collection("sync")

    def _schema(self) -> None:
        """Create the schema marker on first use; refuse a database written by another schema."""
        if self._schema_checked:
            return
        ref = self._col("meta").document("schema")
        snap = ref.get()
        if not snap.exists:
            try:
                ref.create({"version": SCHEMA_VERSION})
            except gexc.AlreadyExists:
                snap = ref.get()
            else:
                self._schema_checked = True
                return
        version = (snap.to_dict() or {}).get("version")
        if version != SCHEMA_VERSION:
            raise errors.StoreUnavailable(
                f"state store schema {version} does not match this code's {SCHEMA_VERSION}",
                details={"schema_version": version},
            )
        self._schema_checked = True

    def _commit(self, writes: Sequence[tuple[Any, Mapping[str, Any] | None]]) -> None:
        """Set (or delete, for None) documents in batches of at most ``BATCH_LIMIT``."""
        for chunk in _chunks(writes, BATCH_LIMIT):
            batch = self.client.batch()
            for ref, data in chunk:
                if data is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, dict(data))
            batch.commit()

    # --- calendars -------------------------------------------------------------------------------

    @_classified
    def get_calendar(self, key: str) -> CalendarRecord | None:
        """The calendar with this key, or None."""
        self._schema()
        snap = self._calendar_ref(key).get()
        return CalendarRecord.model_validate(snap.to_dict()) if snap.exists else None

    @_classified
    def put_calendar(self, record: CalendarRecord) -> None:
        """Create or replace a calendar record."""
        self._schema()
        self._calendar_ref(record.key).set(record.model_dump())

    @_classified
    def update_calendar(self, key: str, fields: Mapping[str, Any]) -> None:
        """Set some fields of an existing calendar record (``UnknownResource`` if it does not exist)."""
        self._schema()
        try:
            self._calendar_ref(key).update(dict(fields))
        except gexc.NotFound as exc:
            raise errors.UnknownResource(f"unknown calendar {key}") from exc

    @_classified
    def list_calendars(self) -> list[CalendarRecord]:
        """Every calendar record, by key."""
        self._schema()
        return [CalendarRecord.model_validate(s.to_dict()) for s in self._col("calendars").order_by("key").stream()]

    # --- locks -----------------------------------------------------------------------------------
    # No transactions here: Firestore's pessimistic transactions livelock on one hot document (on the
    # emulator every caller failed with 3 concurrent syncs of a calendar). Each step is one read and one
    # single-document write preconditioned on that read (create, or the read's update_time); a caller
    # that lost a race re-reads and decides again, so every write is a compare-and-set.

    @staticmethod
    def _lock_retrying() -> Retrying:
        """Re-run a read-then-preconditioned-write step when another caller wrote in between."""
        return Retrying(
            retry=retry_if_exception_type((gexc.AlreadyExists, gexc.FailedPrecondition, gexc.NotFound)),
            stop=stop_after_attempt(LOCK_ATTEMPTS),
            wait=wait_random(0, LOCK_RETRY_JITTER_S),
            reraise=True,  # a race lost LOCK_ATTEMPTS times surfaces as StoreUnavailable (retryable)
        )

    @_classified
    def acquire_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Take the lease (or a stale one, or our own) by compare-and-set; if another holds it, mark pending."""
        self._schema()
        ref = self._col("locks").document(calendar_key)
        lease = {"holder": holder, "expires_at": now + timedelta(seconds=lease_s), "pending": False}

        def attempt() -> bool:
            snap = ref.get()
            if not snap.exists:
                ref.create(lease)  # AlreadyExists: another caller created it after our read
                return True
            lock = snap.to_dict() or {}
            if lock["expires_at"] <= now or lock["holder"] == holder:
                ref.update(lease, option=self.client.write_option(last_update_time=snap.update_time))
                return True
            if not lock.get("pending"):
                # Unconditional but for existence (update's own precondition): a second mark is harmless,
                # and NotFound (released since the read) retries, so this caller takes the free lease.
                ref.update({"pending": True})
            return False

        result: bool = self._lock_retrying()(attempt)
        return result

    @_classified
    def release_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Release unless pending (compare-and-set on the read): then keep, extend, clear it, return True."""
        self._schema()
        ref = self._col("locks").document(calendar_key)

        def attempt() -> bool:
            snap = ref.get()
            lock = snap.to_dict() if snap.exists else None
            if lock is None or lock["holder"] != holder:
                return False
            unchanged = self.client.write_option(last_update_time=snap.update_time)
            if lock.get("pending"):
                ref.update({"pending": False, "expires_at": now + timedelta(seconds=lease_s)}, option=unchanged)
                return True
            # FailedPrecondition: a trigger marked pending after our read; the re-read sees it.
            ref.delete(option=unchanged)
            return False

        result: bool = self._lock_retrying()(attempt)
        return result

    # --- mirror ----------------------------------------------------------------------------------

    @_classified
    def get_events(self, calendar_key: str, event_ids: Sequence[str]) -> dict[str, MirrorEvent]:
        """The mirror documents of these ids, read with batched ``get_all`` (never a scan)."""
        self._schema()
        events = self._events(calendar_key)
        found: dict[str, MirrorEvent] = {}
        for chunk in _chunks(list(dict.fromkeys(event_ids)), GET_ALL_CHUNK):
            for snap in self.client.get_all([events.document(i) for i in chunk]):
                if snap.exists:
                    found[snap.id] = MirrorEvent.model_validate(snap.to_dict())
        return found

    @_classified
    def put_events(self, events: Sequence[MirrorEvent]) -> None:
        """Write mirror documents in batches of at most 500."""
        self._schema()
        self._commit([(self._events(e.calendar_key).document(e.external_id), e.model_dump()) for e in events])

    @_classified
    def merge_observed_events(self, events: Sequence[MirrorEvent]) -> None:
        """Merge-write what a sync observed, never ``published``: that snapshot is the publisher's.

        A sync that read a document before an apply recorded its snapshot must not put the old one back
        (the sync never changes a snapshot, it only carries it along).
        """
        self._schema()
        for chunk in _chunks(list(events), BATCH_LIMIT):
            batch = self.client.batch()
            for e in chunk:
                ref = self._events(e.calendar_key).document(e.external_id)
                batch.set(ref, e.model_dump(exclude={"published"}), merge=True)
            batch.commit()

    @_classified
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

    @_classified
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

    @_classified
    def system_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled system mirror events overlapping the window (index: origin, end)."""
        return self._overlapping(calendar_key, "system", time_min, time_max)

    @_classified
    def manual_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled manual mirror events overlapping the window (index: origin, end)."""
        return self._overlapping(calendar_key, "manual", time_min, time_max)

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

    @_classified
    def list_mirror_events(
        self,
        calendar_key: str,
        *,
        time_min: datetime | None,
        time_max: datetime | None,
        page_size: int,
        page_token: str | None,
    ) -> tuple[list[MirrorEvent], str | None]:
        """One page of non-cancelled mirror events by start (pages may be short; the token is an id)."""
        self._schema()
        events = self._events(calendar_key)
        query = events.order_by("start").order_by("__name__")
        if time_max is not None:
            query = query.where(filter=FieldFilter("start", "<", time_max))
        if time_min is not None:
            query = query.where(filter=FieldFilter("start", ">=", time_min - MAX_EVENT_SPAN))
        if page_token:
            last = events.document(page_token).get()
            if not last.exists:
                raise errors.InvalidRequest("page_token is no longer valid", details={"page_token": "unknown"})
            query = query.start_after(last)
        snaps = list(query.limit(page_size).stream())
        items = []
        for snap in snaps:
            event = MirrorEvent.model_validate(snap.to_dict())
            if event.status == "cancelled":
                continue
            if time_min is not None and (event.end is None or event.end <= time_min):
                continue
            items.append(event)
        token = snaps[-1].id if len(snaps) == page_size else None
        return items, token

    # --- cursors ---------------------------------------------------------------------------------

    @_classified
    def get_sync_cursor(self, calendar_key: str) -> SyncCursor | None:
        """The unfinished pass of this calendar (with its seen ids), or None."""
        self._schema()
        sync = self._sync(calendar_key)
        snap = sync.document("cursor").get()
        if not snap.exists:
            return None
        data = snap.to_dict() or {}
        chunks = int(data.pop("seen_chunks", 0))
        seen: list[str] = []
        refs = [sync.document(f"seen_{n}") for n in range(chunks)]
        for part in self.client.get_all(refs) if refs else []:
            seen.extend((part.to_dict() or {}).get("ids", []))
        return SyncCursor.model_validate({**data, "seen_ids": seen})

    @_classified
    def put_sync_cursor(self, cursor: SyncCursor) -> None:
        """Save where a pass stopped: the cursor and its seen-id chunks in one batch."""
        self._schema()
        sync = self._sync(cursor.calendar_key)
        chunks = list(_chunks(cursor.seen_ids, SEEN_CHUNK))
        writes: list[tuple[Any, Mapping[str, Any] | None]] = [
            (sync.document(f"seen_{n}"), {"ids": list(ids)}) for n, ids in enumerate(chunks)
        ]
        writes.append(
            (sync.document("cursor"), {**cursor.model_dump(exclude={"seen_ids"}), "seen_chunks": len(chunks)})
        )
        self._commit(writes)

    @_classified
    def delete_sync_cursor(self, calendar_key: str) -> None:
        """Forget the unfinished pass (cursor first, so a half-done delete leaves no cursor)."""
        self._schema()
        sync = self._sync(calendar_key)
        refs = [snap.reference for snap in sync.select([]).stream()]
        refs.sort(key=lambda ref: ref.id != "cursor")
        self._commit([(ref, None) for ref in refs])

    # --- conflicts -------------------------------------------------------------------------------

    @_classified
    def get_conflicts(self, conflict_ids: Sequence[str]) -> dict[str, Conflict]:
        """The conflicts with these ids (batched ``get_all``)."""
        self._schema()
        col = self._col("conflicts")
        found: dict[str, Conflict] = {}
        for chunk in _chunks(list(dict.fromkeys(conflict_ids)), GET_ALL_CHUNK):
            for snap in self.client.get_all([col.document(i) for i in chunk]):
                if snap.exists:
                    found[snap.id] = Conflict.model_validate(snap.to_dict())
        return found

    @_classified
    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Create or replace conflicts in batches."""
        self._schema()
        col = self._col("conflicts")
        self._commit([(col.document(c.id), c.model_dump()) for c in conflicts])

    @_classified
    def list_conflicts(
        self,
        calendar_key: str | None,
        *,
        status: str | None,
        page_size: int,
        page_token: str | None,
        kind: str | None = None,
    ) -> tuple[list[Conflict], str | None]:
        """One page of conflicts by id (equality filters only: served by single-field indexes)."""
        self._schema()
        col = self._col("conflicts")
        query = col.order_by("__name__")
        for name, value in (("calendar_key", calendar_key), ("status", status), ("kind", kind)):
            if value is not None:
                query = query.where(filter=FieldFilter(name, "==", value))
        if page_token:
            query = query.start_after({"__name__": col.document(page_token)})
        snaps = list(query.limit(page_size).stream())
        token = snaps[-1].id if len(snaps) == page_size else None
        return [Conflict.model_validate(s.to_dict()) for s in snaps], token

    # --- channels --------------------------------------------------------------------------------

    @_classified
    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """The channel with this id, or None."""
        self._schema()
        snap = self._col("channels").document(channel_id).get()
        return ChannelRecord.model_validate(snap.to_dict()) if snap.exists else None

    @_classified
    def put_channel(self, record: ChannelRecord) -> None:
        """Create or replace a channel record."""
        self._schema()
        self._col("channels").document(record.channel_id).set(record.model_dump())

    @_classified
    def active_channel(self, calendar_key: str) -> ChannelRecord | None:
        """The active channel of a calendar with the latest expiration, or None."""
        self._schema()
        query = self._col("channels").where(filter=FieldFilter("calendar_key", "==", calendar_key))
        query = query.where(filter=FieldFilter("status", "==", "active"))
        active = [ChannelRecord.model_validate(s.to_dict()) for s in query.stream()]
        if not active:
            return None
        return max(active, key=lambda c: (c.expiration is not None, c.expiration or c.created_at))

    # --- push path: channels, polling, cleanup ---
    # Indexes: channels (calendar_key), (status) single-field; conflicts (status, resolved_at) composite;
    # mirror events (end) single-field per calendar subcollection. Unknown channels: {env}_unknown_channels.

    @_classified
    def list_channels_for_calendar(self, calendar_key: str) -> list[ChannelRecord]:
        """Every channel record of a calendar, any status."""
        self._schema()
        query = self._col("channels").where(filter=FieldFilter("calendar_key", "==", calendar_key))
        return [ChannelRecord.model_validate(s.to_dict()) for s in query.stream()]

    @_classified
    def list_active_channels(self) -> list[ChannelRecord]:
        """Every channel whose status is ``active``."""
        self._schema()
        query = self._col("channels").where(filter=FieldFilter("status", "==", "active"))
        return [ChannelRecord.model_validate(s.to_dict()) for s in query.stream()]

    @_classified
    def record_notification(
        self, channel_id: str, message_number: int, at: datetime, *, enqueued_bucket: int | None = None
    ) -> bool:
        """Compare-and-set the highest message number in a transaction (False: not higher, a duplicate)."""
        self._schema()
        ref = self._col("channels").document(channel_id)

        @firestore.transactional
        def record(transaction: Any) -> bool:
            snap = ref.get(transaction=transaction)
            if not snap.exists:
                return False
            data = snap.to_dict() or {}
            if message_number <= int(data.get("last_message_number") or 0):
                return False
            update: dict[str, Any] = {"last_message_number": message_number, "last_webhook_at": at}
            if enqueued_bucket is not None:
                update["last_enqueued_bucket"] = max(enqueued_bucket, int(data.get("last_enqueued_bucket") or 0))
            transaction.update(ref, update)
            return True

        result: bool = record(self.client.transaction())
        return result

    @_classified
    def record_unknown_channel(
        self, channel_id: str, resource_id: str | None, at: datetime, *, min_interval_s: float
    ) -> bool:
        """Note a channel id that is not ours, at most once per ``min_interval_s`` per id."""
        self._schema()
        ref = self._col("unknown_channels").document(channel_id)
        snap = ref.get()
        if snap.exists:
            seen = UnknownChannel.model_validate(snap.to_dict())
            if (at - seen.last_seen_at).total_seconds() < min_interval_s:
                return False
            # Not transactional on purpose: a lost increment of this diagnostic count is harmless.
            ref.update({"last_seen_at": at, "count": seen.count + 1, "resource_id": resource_id or seen.resource_id})
            return True
        record = UnknownChannel(channel_id=channel_id, resource_id=resource_id, first_seen_at=at, last_seen_at=at)
        ref.set(record.model_dump())
        return True

    @_classified
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

    @_classified
    def delete_resolved_conflicts_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` resolved conflicts resolved before ``cutoff``."""
        self._schema()
        query = self._col("conflicts").where(filter=FieldFilter("status", "==", "resolved"))
        query = query.where(filter=FieldFilter("resolved_at", "<", cutoff)).limit(limit)
        refs = [snap.reference for snap in query.select([]).stream()]
        self._commit([(ref, None) for ref in refs])
        return len(refs)

    # --- publish: directory, allocations, plans ---
    # Collections: {env}_professionals/{clinic}__{id}, {env}_rooms/{clinic}__{id}, {env}_allocations/{id},
    # {env}_plans/{id} and {env}_plans/{id}/progress/{calendar}__{chunk}. Index: allocations (clinic_id, start).

    def _replace_directory(self, name: str, clinic_id: str, items: Sequence[Any]) -> None:
        col = self._col(name)
        keep = {f"{clinic_id}__{item.id}": item.model_dump() for item in items}
        old = col.where(filter=FieldFilter("clinic_id", "==", clinic_id)).select([]).stream()
        writes: list[tuple[Any, Mapping[str, Any] | None]] = [(s.reference, None) for s in old if s.id not in keep]
        writes.extend((col.document(doc_id), data) for doc_id, data in keep.items())
        self._commit(writes)

    def _list_directory(self, name: str, clinic_id: str) -> list[dict[str, Any]]:
        query = self._col(name).where(filter=FieldFilter("clinic_id", "==", clinic_id))
        return sorted((s.to_dict() or {} for s in query.stream()), key=lambda d: str(d.get("id")))

    @_classified
    def replace_professionals(self, clinic_id: str, items: Sequence[Professional]) -> None:
        """Make ``items`` the clinic's professionals (others of the clinic are removed)."""
        self._schema()
        self._replace_directory("professionals", clinic_id, items)

    @_classified
    def list_professionals(self, clinic_id: str) -> list[Professional]:
        """The clinic's professionals, by id."""
        self._schema()
        return [Professional.model_validate(d) for d in self._list_directory("professionals", clinic_id)]

    @_classified
    def replace_rooms(self, clinic_id: str, items: Sequence[Room]) -> None:
        """Make ``items`` the clinic's rooms (others of the clinic are removed)."""
        self._schema()
        self._replace_directory("rooms", clinic_id, items)

    @_classified
    def list_rooms(self, clinic_id: str) -> list[Room]:
        """The clinic's rooms, by id."""
        self._schema()
        return [Room.model_validate(d) for d in self._list_directory("rooms", clinic_id)]

    @_classified
    def get_allocations(self, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        """The allocations with these ids (batched ``get_all``)."""
        self._schema()
        col = self._col("allocations")
        found: dict[str, Allocation] = {}
        for chunk in _chunks(list(dict.fromkeys(allocation_ids)), GET_ALL_CHUNK):
            for snap in self.client.get_all([col.document(i) for i in chunk]):
                if snap.exists:
                    found[snap.id] = Allocation.model_validate(snap.to_dict())
        return found

    @_classified
    def put_allocations(self, items: Sequence[Allocation]) -> None:
        """Create or replace allocations in batches of at most 500."""
        self._schema()
        col = self._col("allocations")
        self._commit([(col.document(a.id), a.model_dump()) for a in items])

    @_classified
    def list_allocations(self, clinic_id: str, time_min: datetime, time_max: datetime) -> list[Allocation]:
        """The clinic's allocations overlapping the window (range on ``start``, ``end`` checked here)."""
        self._schema()
        query = self._col("allocations").where(filter=FieldFilter("clinic_id", "==", clinic_id))
        query = query.where(filter=FieldFilter("start", "<", time_max))
        # Allocations last hours: bounding `start` from below keeps the scan to the window.
        query = query.where(filter=FieldFilter("start", ">=", time_min - MAX_EVENT_SPAN))
        found = [Allocation.model_validate(s.to_dict()) for s in query.stream()]
        return sorted((a for a in found if a.end > time_min), key=lambda a: a.id)

    @_classified
    def put_plan(self, plan: Plan) -> None:
        """Create or replace a plan."""
        self._schema()
        self._col("plans").document(plan.id).set(plan.model_dump())

    @_classified
    def get_plan(self, plan_id: str) -> Plan | None:
        """The plan with this id, or None."""
        self._schema()
        snap = self._col("plans").document(plan_id).get()
        return Plan.model_validate(snap.to_dict()) if snap.exists else None

    @_classified
    def transition_plan(self, plan_id: str, expected: str, fields: Mapping[str, Any]) -> bool:
        """Compare-and-set the plan's status in a transaction (two applies: one wins)."""
        self._schema()
        ref = self._col("plans").document(plan_id)

        @firestore.transactional
        def transition(transaction: Any) -> bool:
            snap = ref.get(transaction=transaction)
            if not snap.exists or (snap.to_dict() or {}).get("status") != expected:
                return False
            transaction.update(ref, dict(fields))
            return True

        result: bool = transition(self.client.transaction())
        return result

    @_classified
    def reserve_quota(self, name: str, seconds: float, now: datetime) -> datetime:
        """Reserve ``seconds`` after the timeline's end (or ``now``) in a transaction; the window's start."""
        self._schema()
        ref = self._col("quota").document(name)

        @firestore.transactional
        def reserve(transaction: Any) -> datetime:
            snap = ref.get(transaction=transaction)
            free_at = (snap.to_dict() or {}).get("next_free_at") if snap.exists else None
            start = max(now, free_at) if free_at is not None else now
            transaction.set(ref, {"next_free_at": start + timedelta(seconds=seconds), "updated_at": now})
            return start

        result: datetime = reserve(self.client.transaction())
        return result

    @_classified
    def put_plan_progress(self, progress: PlanChunkProgress) -> None:
        """Create or replace one chunk's progress (one document per chunk: no hot document)."""
        self._schema()
        doc_id = f"{progress.calendar_key}__{progress.chunk}"
        self._col("plans").document(progress.plan_id).collection("progress").document(doc_id).set(progress.model_dump())

    @_classified
    def list_plan_progress(self, plan_id: str) -> list[PlanChunkProgress]:
        """The progress documents of a plan's chunks."""
        self._schema()
        col = self._col("plans").document(plan_id).collection("progress")
        return [PlanChunkProgress.model_validate(s.to_dict()) for s in col.stream()]

    @_classified
    def get_plan_progress(self, plan_id: str, calendar_key: str, chunk: int) -> PlanChunkProgress | None:
        """The progress document of one chunk, or None."""
        self._schema()
        col = self._col("plans").document(plan_id).collection("progress")
        snap = col.document(f"{calendar_key}__{chunk}").get()
        return PlanChunkProgress.model_validate(snap.to_dict()) if snap.exists else None
