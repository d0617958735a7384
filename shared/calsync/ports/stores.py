"""The state store's ports: one narrow port per aggregate, and the composites services take.

Each aggregate has one port (``CalendarStore``, ``MirrorStore``, ``ConflictStore``, ``ChannelStore``,
``PlanStore``, ``DirectoryStore``), one Firestore adapter module (``adapters/firestore/``), one
in-memory fake (``calsync.testing.memory``) and one contract suite (``tests/contract/``) that runs
against both. ``StateStore``, ``PushStore`` and ``PublishStore`` are composed of the narrow ports, so a
service typed with a composite accepts the composite adapter and the fake alike, without casts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from calsync.model import (
    Allocation,
    CalendarRecord,
    ChannelRecord,
    Conflict,
    FreeBusyState,
    MirrorEvent,
    Plan,
    PlanChunkProgress,
    Professional,
    Room,
    SyncCursor,
    UnknownChannel,
)
from calsync.ports.queries import ConflictQuery, MirrorQuery, SyncCommit, UnknownChannelSeen
from calsync.ports.writers import WriterStore

# --- calendars and their leases ------------------------------------------------------------------


class LockStore(Protocol):
    """Per-calendar leases, taken with atomic conditional writes (no transaction on the hot document)."""

    def acquire_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Take the lease (or a stale one); if another holder has it, mark it pending and return False."""
        ...

    def release_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Release the lease, unless it is pending: then clear pending, keep it and return True."""
        ...


class LeaseStore(Protocol):
    """What a sync holding a calendar's lease does with it: renew it, and write its progress only while
    it still holds it (a run that lost its lease must not move the calendar's token or cursor)."""

    def renew_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Extend our live lease to ``now + lease_s`` (``pending`` kept); False, writing nothing, when the
        lease is gone, expired at ``now`` or held by another holder."""
        ...

    def lock_expires_at(self, calendar_key: str) -> datetime | None:
        """When the calendar's current lease ends (None: no lease)."""
        ...

    def commit_sync_state(self, commit: SyncCommit) -> bool:
        """In one transaction, only if ``holder`` holds a lease live at ``now``: update the calendar's
        ``calendar_fields``, then replace the sync cursor with ``cursor`` or (``clear_cursor``) delete it.
        False, writing nothing, otherwise."""
        ...


class DueCalendarQueries(Protocol):
    """Indexed queries of the scheduled jobs: reads proportional to the calendars that are due.

    Pages are ordered and resumed after the last record of the previous page (a cursor), so a job
    reads each due calendar once per run however many pages it takes.
    """

    def list_calendars_synced_before(
        self, cutoff: datetime, *, limit: int, after: CalendarRecord | None = None
    ) -> list[CalendarRecord]:
        """Up to ``limit`` calendars never synced or last synced before ``cutoff``: never synced first (by
        key), then by (``last_synced_at``, key); the page after ``after`` (a record of the previous page)."""
        ...

    def list_calendars_by_status(
        self, status: str, *, limit: int, after_key: str | None = None
    ) -> list[CalendarRecord]:
        """Up to ``limit`` calendars with this status, by key, after ``after_key``."""
        ...


class CalendarStore(LockStore, DueCalendarQueries, Protocol):
    """Calendars calsync manages, their sync state and their leases."""

    def get_calendar(self, key: str) -> CalendarRecord | None:
        """The calendar with this key, or None."""
        ...

    def put_calendar(self, record: CalendarRecord) -> None:
        """Create or replace a calendar record."""
        ...

    def update_calendar(self, key: str, fields: Mapping[str, Any]) -> None:
        """Set some fields of an existing calendar record (``UnknownResource`` if it does not exist)."""
        ...

    def list_calendars(self) -> list[CalendarRecord]:
        """Every calendar record, by key (admin listing, health)."""
        ...


# --- the mirror ----------------------------------------------------------------------------------


class MirrorRetention(Protocol):
    """The daily cleanup's part of the mirror (Firestore only, never Google)."""

    def delete_mirror_events_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` mirror events (any calendar) whose end is before ``cutoff``; the count."""
        ...

    def scrub_people_content(self, limit: int) -> int:
        """Drop title, description, location and guests from up to ``limit`` people's mirror events; the count."""
        ...


class MirrorStore(MirrorRetention, Protocol):
    """calsync's copy of the events of each calendar, and each calendar's unfinished sync pass."""

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

    def series_instances(self, calendar_key: str, series_id: str) -> list[MirrorEvent]:
        """Non-cancelled mirror events that are instances of the series ``series_id``."""
        ...

    def list_mirror_events(self, spec: MirrorQuery) -> tuple[list[MirrorEvent], str | None]:
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


# --- conflicts -----------------------------------------------------------------------------------


class ConflictRetention(Protocol):
    """The daily cleanup's part of the conflicts."""

    def delete_resolved_conflicts_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` resolved conflicts resolved before ``cutoff``; the count."""
        ...


class ConflictStore(ConflictRetention, Protocol):
    """Recorded divergences between Google and the backend."""

    def get_conflicts(self, conflict_ids: Sequence[str]) -> dict[str, Conflict]:
        """The conflicts with these ids."""
        ...

    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Create or replace conflicts."""
        ...

    def list_conflicts(self, spec: ConflictQuery) -> tuple[list[Conflict], str | None]:
        """One page of conflicts (optionally of one calendar/status/kind), and the next page token."""
        ...


ExpiringKind = Literal["plans", "allocations", "channels", "free_busy", "unknown_channels"]


class RetentionStore(Protocol):
    """Records past their ``expire_at`` (the field Firestore's TTL policies read; see ``model``)."""

    def delete_expired(self, kind: ExpiringKind, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` records of ``kind`` whose ``expire_at`` is before ``now`` (a plan with its
        progress); the count."""
        ...


class CleanupStore(MirrorRetention, ConflictRetention, RetentionStore, Protocol):
    """Retention deletes of the daily cleanup."""


# --- push channels -------------------------------------------------------------------------------


class ChannelQueries(Protocol):
    """Channel lookups and notification bookkeeping of the push path (webhook, renewal)."""

    def list_channels_for_calendar(self, calendar_key: str) -> list[ChannelRecord]:
        """Every channel record of a calendar, any status."""
        ...

    def list_active_channels(self) -> list[ChannelRecord]:
        """Every channel whose status is ``active`` (the daily watch audit)."""
        ...

    def list_active_channels_expiring_before(
        self, cutoff: datetime, *, limit: int, after: ChannelRecord | None = None
    ) -> list[ChannelRecord]:
        """Up to ``limit`` active channels whose expiration is before ``cutoff`` (none without one), by
        (expiration, channel id); the page after ``after`` (a record of the previous page)."""
        ...

    def record_notification(
        self, channel_id: str, message_number: int, at: datetime, *, enqueued_bucket: int | None = None
    ) -> bool:
        """In one transaction: if ``message_number`` is above the stored one, store it, ``last_webhook_at``
        and (when given) ``last_enqueued_bucket``, and return True; else change nothing and return False."""
        ...

    def record_unknown_channel(self, note: UnknownChannelSeen) -> bool:
        """Note a channel id that is not ours; at most one write per id per ``min_interval_s`` (True: written).

        The record carries ``expire_at`` (deleted after it); the store keeps at most ``max_records``
        of them, newer ids displacing older ones, whatever callers send.
        """
        ...

    def list_unknown_channels(self) -> list[UnknownChannel]:
        """The unknown-channel records kept (at most ``max_records``)."""
        ...


class ChannelStore(ChannelQueries, Protocol):
    """Push channels, what their notifications told us, and channel ids that are not ours."""

    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """The channel with this id, or None."""
        ...

    def put_channel(self, record: ChannelRecord) -> None:
        """Create or replace a channel record."""
        ...

    def active_channel(self, calendar_key: str) -> ChannelRecord | None:
        """The active channel of a calendar (latest expiration), or None."""
        ...


# --- publish: directory, allocations, plans ------------------------------------------------------


class AllocationStore(Protocol):
    """Allocations received from agendador."""

    def get_allocations(self, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        """The allocations with these ids (batched read)."""
        ...

    def put_allocations(self, items: Sequence[Allocation]) -> None:
        """Create or replace allocations (in batches)."""
        ...

    def list_allocations(self, clinic_id: str, time_min: datetime, time_max: datetime) -> list[Allocation]:
        """The clinic's allocations overlapping ``[time_min, time_max)``, any status, by id."""
        ...


class DirectoryStore(AllocationStore, Protocol):
    """Professionals and rooms of each clinic (``PUT /clinics/{id}/professionals|rooms``) and allocations."""

    def replace_professionals(self, clinic_id: str, items: Sequence[Professional]) -> None:
        """Make ``items`` the clinic's professionals (others of the clinic are removed)."""
        ...

    def list_professionals(self, clinic_id: str) -> list[Professional]:
        """The clinic's professionals, by id."""
        ...

    def replace_rooms(self, clinic_id: str, items: Sequence[Room]) -> None:
        """Make ``items`` the clinic's rooms (others of the clinic are removed)."""
        ...

    def put_free_busy_states(self, items: Sequence[FreeBusyState]) -> None:
        """Record whether each professional's free/busy was readable (kept apart from the directory)."""
        ...

    def list_free_busy_states(self, clinic_id: str | None = None) -> list[FreeBusyState]:
        """Free/busy states of one clinic (None: every clinic), by clinic and professional id."""
        ...

    def list_rooms(self, clinic_id: str) -> list[Room]:
        """The clinic's rooms, by id."""
        ...


class QuotaStore(Protocol):
    """A shared pacing timeline, so concurrent publishes together stay under one quota."""

    def reserve_quota(self, name: str, seconds: float, now: datetime) -> datetime:
        """Reserve ``seconds`` on timeline ``name`` (transactionally); the start of the reserved window."""
        ...


class PlanStore(QuotaStore, Protocol):
    """Stored publish plans, the per-chunk progress of their apply tasks and the pacing timeline."""

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


# --- composites ----------------------------------------------------------------------------------


class StateStore(CalendarStore, LeaseStore, MirrorStore, ConflictStore, ChannelStore, Protocol):
    """The sync side of the state: calendars and leases, the mirror, conflicts and channels."""


class PushStore(StateStore, CleanupStore, Protocol):
    """The state store as the push path (webhook, renew, poll, cleanup) uses it."""


class PublishStore(PushStore, DirectoryStore, PlanStore, WriterStore, Protocol):
    """Everything calsync keeps in Firestore, as the publish function uses it."""
