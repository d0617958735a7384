"""In-memory fakes of calsync's ports (cosmicpython style: fakes implement the real ports).

- ``InMemoryStateStore``: ``ports.StateStore`` with the same semantics as the Firestore adapter
  (leases with pending, cursors, conflict pages).
- ``FakeCalendarApi``: ``ports.CalendarApi`` honouring the rules the real API has for what it models:
  ``nextSyncToken`` only on the last page, 410 on an expired token, 400 for a sync token combined with
  filters, cancelled events only in incremental results, 409 on a reused id, 412 on a stale If-Match,
  410 on a second delete.
- ``FrozenClock``, ``RecordingTaskQueue`` and ``CountingStore`` (counts reads/writes of any store).
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from calsync import errors
from calsync.model import (
    Allocation,
    CalendarRecord,
    ChannelRecord,
    Conflict,
    EventsPage,
    GoogleEvent,
    MirrorEvent,
    Plan,
    PlanChunkProgress,
    Professional,
    Room,
    SyncCursor,
    UnknownChannel,
    WatchChannel,
    merge_published,
    utc,
)
from calsync.ports import BatchOp, BatchResult, SendUpdates, StateStore, TaskRequest

# --- clock and queue -----------------------------------------------------------------------------


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start or datetime(2026, 3, 2, 12, 0, tzinfo=UTC))

    def now(self) -> datetime:
        """The frozen instant."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += timedelta(seconds=seconds)


class RecordingTaskQueue:
    """A ``TaskQueue`` that records tasks and dedups by name like Cloud Tasks does."""

    def __init__(self) -> None:
        self.tasks: list[TaskRequest] = []
        self._names: set[str] = set()

    def enqueue(self, task: TaskRequest) -> bool:
        """Record the task; False when a task with this name was already queued."""
        if task.name is not None:
            if task.name in self._names:
                return False
            self._names.add(task.name)
        self.tasks.append(task)
        return True

    def pop_all(self) -> list[TaskRequest]:
        """Take the recorded tasks (the names stay remembered)."""
        tasks, self.tasks = self.tasks, []
        return tasks


# --- state store ---------------------------------------------------------------------------------


def _page(items: list[Any], page_size: int, page_token: str | None) -> tuple[list[Any], str | None]:
    start = int(page_token or 0)
    chunk = items[start : start + page_size]
    more = start + page_size < len(items)
    return chunk, (str(start + page_size) if more else None)


class InMemoryStateStore:
    """``ports.StateStore`` in memory (records are copied in and out, like a real database)."""

    def __init__(self) -> None:
        self.calendars: dict[str, CalendarRecord] = {}
        self.events: dict[tuple[str, str], MirrorEvent] = {}
        self.conflicts: dict[str, Conflict] = {}
        self.channels: dict[str, ChannelRecord] = {}
        self.cursors: dict[str, SyncCursor] = {}
        self.locks: dict[str, dict[str, Any]] = {}

    # calendars
    def get_calendar(self, key: str) -> CalendarRecord | None:
        """The calendar with this key, or None."""
        record = self.calendars.get(key)
        return record.model_copy(deep=True) if record else None

    def put_calendar(self, record: CalendarRecord) -> None:
        """Create or replace a calendar record."""
        self.calendars[record.key] = record.model_copy(deep=True)

    def update_calendar(self, key: str, fields: Mapping[str, Any]) -> None:
        """Set some fields of an existing calendar record."""
        record = self.calendars.get(key)
        if record is None:
            raise errors.UnknownResource(f"unknown calendar {key}")
        self.calendars[key] = CalendarRecord.model_validate({**record.model_dump(), **dict(fields)})

    def list_calendars(self) -> list[CalendarRecord]:
        """Every calendar record."""
        return [r.model_copy(deep=True) for _, r in sorted(self.calendars.items())]

    # locks
    def acquire_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Take the lease (or a stale one); if another holder has it, mark it pending."""
        lock = self.locks.get(calendar_key)
        if lock is None or lock["expires_at"] <= now or lock["holder"] == holder:
            self.locks[calendar_key] = {
                "holder": holder,
                "expires_at": now + timedelta(seconds=lease_s),
                "pending": False,
            }
            return True
        lock["pending"] = True
        return False

    def release_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Release, unless pending: then clear pending, extend the lease and return True."""
        lock = self.locks.get(calendar_key)
        if lock is None or lock["holder"] != holder:
            return False
        if lock["pending"]:
            lock["pending"] = False
            lock["expires_at"] = now + timedelta(seconds=lease_s)
            return True
        del self.locks[calendar_key]
        return False

    # mirror
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
        for event in events:
            key = (event.calendar_key, event.external_id)
            stored = self.events.get(key)
            published = stored.published if stored is not None else event.published
            self.events[key] = event.model_copy(update={"published": published}, deep=True)

    def record_published(self, events: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Record what calsync just wrote (``merge_published`` per document)."""
        stored: dict[str, MirrorEvent] = {}
        for event in events:
            key = (event.calendar_key, event.external_id)
            merged = merge_published(self.events.get(key), event).model_copy(deep=True)
            self.events[key] = merged
            stored[event.external_id] = merged
        return stored

    def _live(self, calendar_key: str) -> list[MirrorEvent]:
        return [e for (k, _), e in self.events.items() if k == calendar_key and e.status != "cancelled"]

    def window_event_ids(self, calendar_key: str, time_min: datetime, time_max: datetime) -> set[str]:
        """Ids of non-cancelled mirror events overlapping the window."""
        return {
            e.external_id
            for e in self._live(calendar_key)
            if e.start is not None and e.end is not None and e.start < time_max and e.end > time_min
        }

    def system_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled system mirror events overlapping the window."""
        return [
            e.model_copy(deep=True)
            for e in self._live(calendar_key)
            if e.origin == "system" and e.start and e.end and e.start < time_max and e.end > time_min
        ]

    def manual_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled manual mirror events overlapping the window."""
        return [
            e.model_copy(deep=True)
            for e in self._live(calendar_key)
            if e.origin == "manual" and e.start and e.end and e.start < time_max and e.end > time_min
        ]

    def list_mirror_events(
        self,
        calendar_key: str,
        *,
        time_min: datetime | None,
        time_max: datetime | None,
        page_size: int,
        page_token: str | None,
    ) -> tuple[list[MirrorEvent], str | None]:
        """One page of non-cancelled mirror events by start time."""
        items = sorted(
            (
                e
                for e in self._live(calendar_key)
                if (time_max is None or (e.start is not None and e.start < time_max))
                and (time_min is None or (e.end is not None and e.end > time_min))
            ),
            key=lambda e: (e.start or datetime.min.replace(tzinfo=UTC), e.external_id),
        )
        chunk, token = _page(items, page_size, page_token)
        return [e.model_copy(deep=True) for e in chunk], token

    # cursors
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

    # conflicts
    def get_conflicts(self, conflict_ids: Sequence[str]) -> dict[str, Conflict]:
        """The conflicts with these ids."""
        return {i: self.conflicts[i].model_copy(deep=True) for i in conflict_ids if i in self.conflicts}

    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Create or replace conflicts."""
        for conflict in conflicts:
            self.conflicts[conflict.id] = conflict.model_copy(deep=True)

    def list_conflicts(
        self,
        calendar_key: str | None,
        *,
        status: str | None,
        page_size: int,
        page_token: str | None,
        kind: str | None = None,
    ) -> tuple[list[Conflict], str | None]:
        """One page of conflicts, ordered by id."""
        items = [
            c
            for _, c in sorted(self.conflicts.items())
            if (calendar_key is None or c.calendar_key == calendar_key)
            and (status is None or c.status == status)
            and (kind is None or c.kind == kind)
        ]
        chunk, token = _page(items, page_size, page_token)
        return [c.model_copy(deep=True) for c in chunk], token

    # channels
    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """The channel with this id, or None."""
        record = self.channels.get(channel_id)
        return record.model_copy(deep=True) if record else None

    def put_channel(self, record: ChannelRecord) -> None:
        """Create or replace a channel record."""
        self.channels[record.channel_id] = record.model_copy(deep=True)

    def active_channel(self, calendar_key: str) -> ChannelRecord | None:
        """The active channel of a calendar with the latest expiration."""
        active = [c for c in self.channels.values() if c.calendar_key == calendar_key and c.status == "active"]
        if not active:
            return None
        best = max(active, key=lambda c: c.expiration or datetime.min.replace(tzinfo=UTC))
        return best.model_copy(deep=True)

    # --- push path: channels, polling, cleanup ---
    @property
    def unknown_channels(self) -> dict[str, UnknownChannel]:
        """Channel ids that pushed to us but are not ours (created on first use)."""
        return self.__dict__.setdefault("_unknown_channels", {})  # type: ignore[no-any-return]

    def list_channels_for_calendar(self, calendar_key: str) -> list[ChannelRecord]:
        """Every channel of a calendar, any status."""
        return [c.model_copy(deep=True) for c in self.channels.values() if c.calendar_key == calendar_key]

    def list_active_channels(self) -> list[ChannelRecord]:
        """Every active channel."""
        return [c.model_copy(deep=True) for c in self.channels.values() if c.status == "active"]

    def record_notification(
        self, channel_id: str, message_number: int, at: datetime, *, enqueued_bucket: int | None = None
    ) -> bool:
        """Store a higher message number (and bucket); False for a lower or equal one."""
        record = self.channels.get(channel_id)
        if record is None or message_number <= record.last_message_number:
            return False
        update: dict[str, Any] = {"last_message_number": message_number, "last_webhook_at": at}
        if enqueued_bucket is not None:
            update["last_enqueued_bucket"] = max(enqueued_bucket, record.last_enqueued_bucket or enqueued_bucket)
        self.channels[channel_id] = record.model_copy(update=update)
        return True

    def record_unknown_channel(
        self, channel_id: str, resource_id: str | None, at: datetime, *, min_interval_s: float
    ) -> bool:
        """Note an unknown channel id, at most once per ``min_interval_s``."""
        seen = self.unknown_channels.get(channel_id)
        if seen is None:
            self.unknown_channels[channel_id] = UnknownChannel(
                channel_id=channel_id, resource_id=resource_id, first_seen_at=at, last_seen_at=at
            )
            return True
        if (at - seen.last_seen_at).total_seconds() < min_interval_s:
            return False
        self.unknown_channels[channel_id] = seen.model_copy(
            update={"last_seen_at": at, "count": seen.count + 1, "resource_id": resource_id or seen.resource_id}
        )
        return True

    def delete_mirror_events_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` mirror events that ended before ``cutoff``."""
        old = [k for k, e in self.events.items() if e.end is not None and e.end < cutoff][:limit]
        for key in old:
            del self.events[key]
        return len(old)

    def delete_resolved_conflicts_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` conflicts resolved before ``cutoff``."""
        old = [
            k
            for k, c in self.conflicts.items()
            if c.status == "resolved" and c.resolved_at is not None and c.resolved_at < cutoff
        ][:limit]
        for key in old:
            del self.conflicts[key]
        return len(old)

    # --- publish: directory, allocations, plans ---
    def _publish(self) -> dict[str, dict[Any, Any]]:
        return self.__dict__.setdefault(  # type: ignore[no-any-return]
            "_publish_state", {"professionals": {}, "rooms": {}, "allocations": {}, "plans": {}, "progress": {}}
        )

    def replace_professionals(self, clinic_id: str, items: Sequence[Professional]) -> None:
        """Make ``items`` the clinic's professionals."""
        table = self._publish()["professionals"]
        for key in [k for k in table if k[0] == clinic_id]:
            del table[key]
        for item in items:
            table[(clinic_id, item.id)] = item.model_copy(deep=True)

    def list_professionals(self, clinic_id: str) -> list[Professional]:
        """The clinic's professionals, by id."""
        table = self._publish()["professionals"]
        return [v.model_copy(deep=True) for k, v in sorted(table.items()) if k[0] == clinic_id]

    def replace_rooms(self, clinic_id: str, items: Sequence[Room]) -> None:
        """Make ``items`` the clinic's rooms."""
        table = self._publish()["rooms"]
        for key in [k for k in table if k[0] == clinic_id]:
            del table[key]
        for item in items:
            table[(clinic_id, item.id)] = item.model_copy(deep=True)

    def list_rooms(self, clinic_id: str) -> list[Room]:
        """The clinic's rooms, by id."""
        table = self._publish()["rooms"]
        return [v.model_copy(deep=True) for k, v in sorted(table.items()) if k[0] == clinic_id]

    def get_allocations(self, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        """The allocations with these ids."""
        table = self._publish()["allocations"]
        return {i: table[i].model_copy(deep=True) for i in allocation_ids if i in table}

    def put_allocations(self, items: Sequence[Allocation]) -> None:
        """Create or replace allocations."""
        table = self._publish()["allocations"]
        for item in items:
            table[item.id] = item.model_copy(deep=True)

    def list_allocations(self, clinic_id: str, time_min: datetime, time_max: datetime) -> list[Allocation]:
        """The clinic's allocations overlapping the window."""
        table = self._publish()["allocations"]
        return [
            a.model_copy(deep=True)
            for _, a in sorted(table.items())
            if a.clinic_id == clinic_id and a.start < time_max and a.end > time_min
        ]

    def put_plan(self, plan: Plan) -> None:
        """Create or replace a plan."""
        self._publish()["plans"][plan.id] = plan.model_copy(deep=True)

    def get_plan(self, plan_id: str) -> Plan | None:
        """The plan with this id, or None."""
        plan = self._publish()["plans"].get(plan_id)
        return plan.model_copy(deep=True) if plan else None

    def transition_plan(self, plan_id: str, expected: str, fields: Mapping[str, Any]) -> bool:
        """Compare-and-set the plan's status."""
        plans = self._publish()["plans"]
        plan = plans.get(plan_id)
        if plan is None or plan.status != expected:
            return False
        plans[plan_id] = Plan.model_validate({**plan.model_dump(), **dict(fields)})
        return True

    def reserve_quota(self, name: str, seconds: float, now: datetime) -> datetime:
        """Reserve ``seconds`` after the timeline's end (or ``now``); the window's start."""
        timelines: dict[str, datetime] = self._publish().setdefault("quota", {})
        start = max(now, timelines.get(name, now))
        timelines[name] = start + timedelta(seconds=seconds)
        return start

    def put_plan_progress(self, progress: PlanChunkProgress) -> None:
        """Create or replace one chunk's progress."""
        key = (progress.plan_id, progress.calendar_key, progress.chunk)
        self._publish()["progress"][key] = progress.model_copy(deep=True)

    def list_plan_progress(self, plan_id: str) -> list[PlanChunkProgress]:
        """The progress documents of a plan."""
        table = self._publish()["progress"]
        return [v.model_copy(deep=True) for k, v in sorted(table.items()) if k[0] == plan_id]

    def get_plan_progress(self, plan_id: str, calendar_key: str, chunk: int) -> PlanChunkProgress | None:
        """One chunk's progress, or None."""
        found = self._publish()["progress"].get((plan_id, calendar_key, chunk))
        return found.model_copy(deep=True) if found else None


class CountingStore:
    """Wraps any ``StateStore`` and counts mirror reads/writes (the acceptance figures)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()
        self.read_ids: list[str] = []

    def reset(self) -> None:
        """Zero the counters."""
        self.counts.clear()
        self.read_ids.clear()

    def get_events(self, calendar_key: str, event_ids: Sequence[str]) -> dict[str, MirrorEvent]:
        """Counted ``get_events``."""
        self.counts["mirror_read_calls"] += 1
        self.counts["mirror_reads"] += len(event_ids)
        self.read_ids.extend(event_ids)
        return self.inner.get_events(calendar_key, event_ids)

    def put_events(self, events: Sequence[MirrorEvent]) -> None:
        """Counted ``put_events``."""
        self.counts["mirror_writes"] += len(events)
        self.inner.put_events(events)

    def merge_observed_events(self, events: Sequence[MirrorEvent]) -> None:
        """Counted ``merge_observed_events`` (mirror writes)."""
        self.counts["mirror_writes"] += len(events)
        self.inner.merge_observed_events(events)

    def record_published(self, events: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Counted ``record_published`` (mirror writes)."""
        self.counts["mirror_writes"] += len(events)
        return self.inner.record_published(events)

    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Counted ``put_conflicts``."""
        self.counts["conflict_writes"] += len(conflicts)
        self.inner.put_conflicts(conflicts)

    def window_event_ids(self, calendar_key: str, time_min: datetime, time_max: datetime) -> set[str]:
        """Counted window query."""
        self.counts["window_queries"] += 1
        return self.inner.window_event_ids(calendar_key, time_min, time_max)

    def system_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Counted overlap query."""
        self.counts["overlap_queries"] += 1
        return self.inner.system_events_overlapping(calendar_key, time_min, time_max)

    def manual_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Counted overlap query."""
        self.counts["overlap_queries"] += 1
        return self.inner.manual_events_overlapping(calendar_key, time_min, time_max)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# --- Calendar API --------------------------------------------------------------------------------


def _rfc3339(dt: datetime) -> str:
    return utc(dt).isoformat().replace("+00:00", "Z")


def _event_bounds(body: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    event = GoogleEvent.model_validate(body)
    start = event.start.as_utc() if event.start else None
    end = event.end.as_utc() if event.end else None
    return start, end


class FakeCalendarApi:
    """``ports.CalendarApi`` in memory, with Google's paging, sync-token and error rules."""

    def __init__(self, clock: FrozenClock | None = None, *, page_size: int = 2500) -> None:
        self.clock = clock or FrozenClock()
        self.page_size = page_size
        self.calendars: dict[str, dict[str, dict[str, Any]]] = {}
        self.changed_at: dict[tuple[str, str], int] = {}
        self._seq = itertools.count(1)
        self.seq = 0
        self.min_valid_token: dict[str, int] = {}
        self.calls: Counter[str] = Counter()
        self.faults: list[tuple[str, Exception]] = []
        self.on_list: Callable[[str, int], None] | None = None
        self.channels: dict[str, str] = {}

    # --- test controls ---
    def fail_next(self, method: str, error: Exception, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``."""
        self.faults.extend([(method, error)] * times)

    def _fault(self, method: str) -> None:
        self.calls[method] += 1
        for i, (name, error) in enumerate(self.faults):
            if name == method:
                del self.faults[i]
                raise error

    def expire_sync_tokens(self, calendar_id: str) -> None:
        """Invalidate every sync token issued so far for a calendar (next use: 410)."""
        self.min_valid_token[calendar_id] = self.seq + 1

    def _touch(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        self.seq = next(self._seq)
        event["etag"] = f'"{self.seq}"'
        event["updated"] = _rfc3339(self.clock.now()).replace("Z", f".{self.seq % 1000:03d}Z")
        self.calendars.setdefault(calendar_id, {})[event["id"]] = event
        self.changed_at[(calendar_id, event["id"])] = self.seq
        return copy.deepcopy(event)

    def add_calendar(self, calendar_id: str) -> None:
        """Create an empty calendar."""
        self.calendars.setdefault(calendar_id, {})

    def person_edit(self, calendar_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
        """A person changes an event in Google's UI (new etag and updated)."""
        event = copy.deepcopy(self.calendars[calendar_id][event_id])
        event.update(fields)
        return self._touch(calendar_id, event)

    def person_delete(self, calendar_id: str, event_id: str) -> None:
        """A person deletes an event (it becomes a cancelled tombstone)."""
        self.person_edit(calendar_id, event_id, status="cancelled")

    # --- CalendarApi ---
    def list_events(
        self,
        calendar_id: str,
        *,
        sync_token: str | None = None,
        page_token: str | None = None,
        time_min: datetime | None = None,
        time_max: datetime | None = None,
        single_events: bool = True,
        show_deleted: bool | None = None,
        private_filters: Sequence[str] = (),
    ) -> EventsPage:
        """events.list with Google's paging and sync-token rules."""
        self._fault("list_events")
        if self.on_list is not None:
            self.on_list(calendar_id, self.calls["list_events"])
        if calendar_id not in self.calendars:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        if sync_token is not None and (time_min or time_max or private_filters or show_deleted is False):
            raise errors.BadRequest(
                "Sync token cannot be used with other request restrictions.",
                status=400,
                reason="syncTokenWithRequestRestrictions",
            )
        last: tuple[int, str] | None = None
        if page_token:
            # Keyset paging (like Google's opaque tokens): an event changing mid-listing shifts nothing.
            last_changed, last_id, snapshot_s, base_s = page_token.split("|")
            last, snapshot, base = (int(last_changed), last_id), int(snapshot_s), int(base_s)
        else:
            snapshot, base = self.seq, -1
        if sync_token is not None:
            base = int(sync_token.removeprefix("st-"))
            if base < self.min_valid_token.get(calendar_id, 0):
                raise errors.SyncTokenGone(
                    "Sync token is no longer valid, a full sync is required.", status=410, reason="fullSyncRequired"
                )
        rows = self._select(calendar_id, sync_token is not None, base, snapshot, time_min, time_max, show_deleted)
        if last is not None:
            rows = [r for r in rows if (r[0], r[1]["id"]) > last]
        chunk = rows[: self.page_size]
        items = [GoogleEvent.model_validate(e) for _, e in chunk]
        if len(rows) > self.page_size:
            key, event = chunk[-1]
            return EventsPage(items=items, next_page_token=f"{key}|{event['id']}|{snapshot}|{base}")
        return EventsPage(items=items, next_sync_token=f"st-{snapshot}")

    def _select(
        self,
        calendar_id: str,
        incremental: bool,
        base: int,
        snapshot: int,
        time_min: datetime | None,
        time_max: datetime | None,
        show_deleted: bool | None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """(sort key, wire event) rows: changes since ``base`` (incremental) or the window (full)."""
        rows: list[tuple[int, dict[str, Any]]] = []
        for event_id, event in self.calendars[calendar_id].items():
            changed = self.changed_at[(calendar_id, event_id)]
            if changed > snapshot:
                continue  # after the listing's snapshot: reported by the next incremental sync
            if incremental:
                if changed > base:
                    rows.append((changed, event))
                continue
            if event.get("status") == "cancelled" and not show_deleted:
                continue
            start, end = _event_bounds(event)
            if time_min is not None and (end is None or end <= time_min):
                continue
            if time_max is not None and (start is None or start >= time_max):
                continue
            rows.append((0, event))
        rows.sort(key=lambda r: (r[0], r[1]["id"]))
        # Deleted events are only guaranteed to carry their id.
        return [
            (key, {"id": e["id"], "status": "cancelled", "etag": e["etag"]})
            if e.get("status") == "cancelled"
            else (key, copy.deepcopy(e))
            for key, e in rows
        ]

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        """events.get (cancelled events too)."""
        self._fault("get_event")
        event = self.calendars.get(calendar_id, {}).get(event_id)
        if event is None:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        return GoogleEvent.model_validate(copy.deepcopy(event))

    def insert_event(
        self,
        calendar_id: str,
        body: Mapping[str, Any],
        *,
        conference: bool = False,
        send_updates: SendUpdates = "none",
    ) -> GoogleEvent:
        """events.insert (409 duplicate when the id exists, live or cancelled)."""
        self._fault("insert_event")
        if calendar_id not in self.calendars:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        event = copy.deepcopy(dict(body))
        event.setdefault("id", f"fake{next(self._seq):08d}")
        event.setdefault("status", "confirmed")
        if event["id"] in self.calendars[calendar_id]:
            raise errors.Duplicate("The requested identifier already exists.", status=409, reason="duplicate")
        return GoogleEvent.model_validate(self._touch(calendar_id, event))

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        body: Mapping[str, Any],
        *,
        if_match: str | None = None,
        send_updates: SendUpdates = "none",
    ) -> GoogleEvent:
        """events.update (412 on a stale If-Match)."""
        self._fault("update_event")
        current = self.calendars.get(calendar_id, {}).get(event_id)
        if current is None:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        if if_match is not None and if_match != current["etag"]:
            raise errors.PreconditionFailed("Precondition Failed", status=412, reason="conditionNotMet")
        event = {**copy.deepcopy(dict(body)), "id": event_id}
        event.setdefault("status", "confirmed")
        return GoogleEvent.model_validate(self._touch(calendar_id, event))

    def delete_event(
        self,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        send_updates: SendUpdates = "none",
    ) -> None:
        """events.delete (410 deleted when already deleted)."""
        self._fault("delete_event")
        current = self.calendars.get(calendar_id, {}).get(event_id)
        if current is None:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        if current.get("status") == "cancelled":
            raise errors.ResourceGone("Resource has been deleted", status=410, reason="deleted")
        if if_match is not None and if_match != current["etag"]:
            raise errors.PreconditionFailed("Precondition Failed", status=412, reason="conditionNotMet")
        self._touch(calendar_id, {**current, "status": "cancelled"})

    def watch_events(self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl_s: int) -> WatchChannel:
        """events.watch."""
        self._fault("watch_events")
        if channel_id in self.channels:
            raise errors.BadRequest("Channel id not unique", status=400, reason="channelIdNotUnique")
        self.channels[channel_id] = calendar_id
        return WatchChannel(
            id=channel_id,
            resource_id=f"res-{calendar_id}",
            token=token,
            expiration=self.clock.now() + timedelta(seconds=ttl_s),
        )

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """channels.stop."""
        self._fault("stop_channel")
        if self.channels.pop(channel_id, None) is None:
            raise errors.NotFound("Channel not found", status=404, reason="notFound")

    def insert_calendar(self, summary: str, *, time_zone: str) -> str:
        """calendars.insert."""
        self._fault("insert_calendar")
        calendar_id = f"cal{next(self._seq):06d}@group.calendar.google.com"
        self.calendars[calendar_id] = {}
        return calendar_id

    def get_calendar(self, calendar_id: str) -> Mapping[str, Any]:
        """calendars.get."""
        self._fault("get_calendar")
        if calendar_id not in self.calendars:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        return {"id": calendar_id, "summary": calendar_id, "timeZone": "UTC"}

    def insert_acl(self, calendar_id: str, *, email: str, role: str) -> None:
        """acl.insert."""
        self._fault("insert_acl")

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """Run each op in order, capturing classified errors per op."""
        results: list[BatchResult] = []
        for op in ops:
            try:
                event: GoogleEvent | None
                if op.kind == "insert":
                    event = self.insert_event(op.calendar_id, op.body or {}, conference=op.conference)
                elif op.kind == "update":
                    event = self.update_event(op.calendar_id, op.event_id or "", op.body or {}, if_match=op.if_match)
                elif op.kind == "delete":
                    self.delete_event(op.calendar_id, op.event_id or "", if_match=op.if_match)
                    event = None
                else:
                    event = self.get_event(op.calendar_id, op.event_id or "")
                results.append(BatchResult(op=op, event=event))
            except errors.CalendarApiError as exc:
                results.append(BatchResult(op=op, error=exc))
        return results
