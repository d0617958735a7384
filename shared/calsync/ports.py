"""Ports: the interfaces services depend on (cosmicpython's adapters pattern).

Services receive these as arguments; ``adapters/`` implements them on Google's clients and
``tests/fakes`` implements them in memory. Nothing here imports google.*, flask or requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import SecretStr

from calsync.errors import CalendarApiError
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
    WatchChannel,
)


class Clock(Protocol):
    """Where services get the time from (tests freeze or advance it)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


# --- Google Calendar -----------------------------------------------------------------------------

BatchKind = Literal["insert", "update", "delete", "get"]
# sendUpdates: "none" for mirror maintenance (no e-mail storms on resyncs or republishes), "all" when a
# person should be told (an ad-hoc event with guests). Chosen by the caller, never left to a default.
SendUpdates = Literal["all", "externalOnly", "none"]


@dataclass(frozen=True)
class BatchOp:
    """One call inside a batch request."""

    kind: BatchKind
    calendar_id: str
    event_id: str | None = None
    body: Mapping[str, Any] | None = None
    if_match: str | None = None
    conference: bool = False
    send_updates: SendUpdates = "none"


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one ``BatchOp``: an event (or None for a delete) or a classified error."""

    op: BatchOp
    event: GoogleEvent | None = None
    error: CalendarApiError | None = None

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.error is None


class CalendarApi(Protocol):
    """The Calendar API v3 calls calsync makes; every failure raises an ``errors`` type."""

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
        """One page of events.list (``SyncTokenGone`` on 410 fullSyncRequired)."""
        ...

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        """events.get (cancelled events are returned too)."""
        ...

    def insert_event(
        self,
        calendar_id: str,
        body: Mapping[str, Any],
        *,
        conference: bool = False,
        send_updates: SendUpdates = "none",
    ) -> GoogleEvent:
        """events.insert (``Duplicate`` on 409; ``conference`` asks for a Meet link)."""
        ...

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        body: Mapping[str, Any],
        *,
        if_match: str | None = None,
        send_updates: SendUpdates = "none",
    ) -> GoogleEvent:
        """events.update (full replace), guarded by ``If-Match`` when given."""
        ...

    def delete_event(
        self,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        send_updates: SendUpdates = "none",
    ) -> None:
        """events.delete, guarded by ``If-Match`` when given (``ResourceGone`` if already deleted)."""
        ...

    def watch_events(self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl_s: int) -> WatchChannel:
        """events.watch: open a push channel on a calendar."""
        ...

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """channels.stop."""
        ...

    def insert_calendar(self, summary: str, *, time_zone: str) -> str:
        """calendars.insert; returns the new calendar's id."""
        ...

    def get_calendar(self, calendar_id: str) -> Mapping[str, Any]:
        """calendars.get."""
        ...

    def insert_acl(self, calendar_id: str, *, email: str, role: str) -> None:
        """acl.insert: share a calendar with a person."""
        ...

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """Run up to the configured number of calls in batch requests; results in ``ops`` order."""
        ...


# --- State store (Firestore) ---------------------------------------------------------------------


class CalendarStore(Protocol):
    """Calendars calsync manages and their sync state."""

    def get_calendar(self, key: str) -> CalendarRecord | None:
        """The calendar with this key, or None."""
        ...

    def put_calendar(self, record: CalendarRecord) -> None:
        """Create or replace a calendar record."""
        ...

    def update_calendar(self, key: str, fields: Mapping[str, Any]) -> None:
        """Set some fields of an existing calendar record."""
        ...

    def list_calendars(self) -> list[CalendarRecord]:
        """Every calendar record (admin listing, health)."""
        ...


class LockStore(Protocol):
    """Per-calendar leases, taken with atomic conditional writes (no transaction on the hot document)."""

    def acquire_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Take the lease (or a stale one); if another holder has it, mark it pending and return False."""
        ...

    def release_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Release the lease, unless it is pending: then clear pending, keep it and return True."""
        ...


class MirrorStore(Protocol):
    """calsync's copy of the events of each calendar."""

    def get_events(self, calendar_key: str, event_ids: Sequence[str]) -> dict[str, MirrorEvent]:
        """The mirror documents of these ids (one batched read), keyed by event id."""
        ...

    def put_events(self, events: Sequence[MirrorEvent]) -> None:
        """Write mirror documents in batches."""
        ...

    def merge_observed_events(self, events: Sequence[MirrorEvent]) -> None:
        """Write what a sync observed in Google, leaving each document's ``published`` snapshot as stored."""
        ...

    def record_published(self, events: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Record events calsync just wrote, in one transaction, by ``model.merge_published``; the results."""
        ...

    def window_event_ids(self, calendar_key: str, time_min: datetime, time_max: datetime) -> set[str]:
        """Ids of non-cancelled mirror events overlapping ``[time_min, time_max)`` (tombstone diff)."""
        ...

    def system_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled system (tagged) mirror events overlapping ``[time_min, time_max)``."""
        ...

    def manual_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Non-cancelled manual (untagged) mirror events overlapping ``[time_min, time_max)``."""
        ...

    def list_mirror_events(
        self,
        calendar_key: str,
        *,
        time_min: datetime | None,
        time_max: datetime | None,
        page_size: int,
        page_token: str | None,
    ) -> tuple[list[MirrorEvent], str | None]:
        """One page of non-cancelled mirror events by start time, and the next page token (or None)."""
        ...

    def get_sync_cursor(self, calendar_key: str) -> SyncCursor | None:
        """The unfinished pass of this calendar (continuation), or None."""
        ...

    def put_sync_cursor(self, cursor: SyncCursor) -> None:
        """Save where a pass stopped (replaces any previous cursor of the calendar)."""
        ...

    def delete_sync_cursor(self, calendar_key: str) -> None:
        """Forget the unfinished pass of this calendar (no-op when there is none)."""
        ...


class ConflictStore(Protocol):
    """Recorded divergences between Google and the backend."""

    def get_conflicts(self, conflict_ids: Sequence[str]) -> dict[str, Conflict]:
        """The conflicts with these ids."""
        ...

    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Create or replace conflicts."""
        ...

    def list_conflicts(
        self,
        calendar_key: str | None,
        *,
        status: str | None,
        page_size: int,
        page_token: str | None,
        kind: str | None = None,
    ) -> tuple[list[Conflict], str | None]:
        """One page of conflicts (optionally of one calendar/status/kind), and the next page token."""
        ...


class ChannelStore(Protocol):
    """Push channels and what their notifications told us."""

    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """The channel with this id, or None."""
        ...

    def put_channel(self, record: ChannelRecord) -> None:
        """Create or replace a channel record."""
        ...

    def active_channel(self, calendar_key: str) -> ChannelRecord | None:
        """The active channel of a calendar (latest expiration), or None."""
        ...


class StateStore(CalendarStore, LockStore, MirrorStore, ConflictStore, ChannelStore, Protocol):
    """Everything calsync keeps in Firestore."""


# --- push path: channels, polling, cleanup -------------------------------------------------------


class ChannelQueries(Protocol):
    """Channel lookups and notification bookkeeping of the push path (webhook, renewal)."""

    def list_channels_for_calendar(self, calendar_key: str) -> list[ChannelRecord]:
        """Every channel record of a calendar, any status."""
        ...

    def list_active_channels(self) -> list[ChannelRecord]:
        """Every channel whose status is ``active`` (renewal and polling plan from these)."""
        ...

    def record_notification(
        self, channel_id: str, message_number: int, at: datetime, *, enqueued_bucket: int | None = None
    ) -> bool:
        """In one transaction: if ``message_number`` is above the stored one, store it, ``last_webhook_at``
        and (when given) ``last_enqueued_bucket``, and return True; else change nothing and return False."""
        ...

    def record_unknown_channel(
        self, channel_id: str, resource_id: str | None, at: datetime, *, min_interval_s: float
    ) -> bool:
        """Note a channel id that is not ours; at most one write per id per ``min_interval_s`` (True: written)."""
        ...


class CleanupStore(Protocol):
    """Retention deletes of the daily cleanup (Firestore only, never Google)."""

    def delete_mirror_events_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` mirror events (any calendar) whose end is before ``cutoff``; the count."""
        ...

    def delete_resolved_conflicts_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` resolved conflicts resolved before ``cutoff``; the count."""
        ...


class PushStore(StateStore, ChannelQueries, CleanupStore, Protocol):
    """The state store as the push path (webhook, renew, poll, cleanup) uses it."""


# --- publish: directory, allocations, plans -------------------------------------------------------


class DirectoryStore(Protocol):
    """Professionals and rooms of each clinic (``PUT /clinics/{id}/professionals|rooms``)."""

    def replace_professionals(self, clinic_id: str, items: Sequence[Professional]) -> None:
        """Make ``items`` the clinic's professionals (others of the clinic are removed)."""
        ...

    def list_professionals(self, clinic_id: str) -> list[Professional]:
        """The clinic's professionals, by id."""
        ...

    def replace_rooms(self, clinic_id: str, items: Sequence[Room]) -> None:
        """Make ``items`` the clinic's rooms (others of the clinic are removed)."""
        ...

    def list_rooms(self, clinic_id: str) -> list[Room]:
        """The clinic's rooms, by id."""
        ...


class AllocationStore(Protocol):
    """Allocations received from agendador."""

    def get_allocations(self, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        """The allocations with these ids (batched read)."""
        ...

    def put_allocations(self, items: Sequence[Allocation]) -> None:
        """Create or replace allocations (in batches)."""
        ...

    def list_allocations(self, clinic_id: str, time_min: datetime, time_max: datetime) -> list[Allocation]:
        """The clinic's allocations overlapping ``[time_min, time_max)``, any status."""
        ...


class PlanStore(Protocol):
    """Stored publish plans and the per-chunk progress of their apply tasks."""

    def put_plan(self, plan: Plan) -> None:
        """Create or replace a plan."""
        ...

    def get_plan(self, plan_id: str) -> Plan | None:
        """The plan with this id, or None."""
        ...

    def transition_plan(self, plan_id: str, expected: str, fields: Mapping[str, Any]) -> bool:
        """In one transaction: if the plan's status is ``expected``, set ``fields`` and return True."""
        ...

    def put_plan_progress(self, progress: PlanChunkProgress) -> None:
        """Create or replace the progress of one chunk (a retried task overwrites, never adds)."""
        ...

    def list_plan_progress(self, plan_id: str) -> list[PlanChunkProgress]:
        """The progress documents of a plan's chunks."""
        ...

    def get_plan_progress(self, plan_id: str, calendar_key: str, chunk: int) -> PlanChunkProgress | None:
        """The progress document of one chunk, or None."""
        ...


class QuotaStore(Protocol):
    """A shared pacing timeline, so concurrent publishes together stay under one quota."""

    def reserve_quota(self, name: str, seconds: float, now: datetime) -> datetime:
        """Reserve ``seconds`` on timeline ``name`` (transactionally); the start of the reserved window."""
        ...


class PublishStore(PushStore, DirectoryStore, AllocationStore, PlanStore, QuotaStore, Protocol):
    """The state store as the publish function uses it."""


# --- Cloud Tasks, secrets ------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRequest:
    """An HTTP task: POST ``payload`` as JSON to ``url`` (with an OIDC token in production)."""

    queue: str
    url: str
    payload: Mapping[str, Any]
    name: str | None = None
    schedule_time: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class TaskQueue(Protocol):
    """Cloud Tasks: at-least-once delivery of HTTP tasks."""

    def enqueue(self, task: TaskRequest) -> bool:
        """Create the task; False when a task with the same name already exists (already queued)."""
        ...


class Secrets(Protocol):
    """Where credentials come from (Secret Manager in the cloud, ``.env`` in dev)."""

    def get(self, name: str) -> SecretStr:
        """The latest version of secret ``name`` (``SecretUnavailable`` if missing)."""
        ...
