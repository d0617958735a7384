"""Calendars as admins see them: register one, read its state, list its mirror and conflicts, force a sync.

These read calsync's own state (no Google call) except ``register_calendar``, which checks that the
Google calendar exists and is reachable before recording it.
"""

from __future__ import annotations

from dataclasses import replace

from calsync import errors
from calsync.copying import copy_into
from calsync.model import CalendarRecord, Conflict, MirrorEvent
from calsync.ports import CalendarApi, Clock, StateStore, TaskQueue
from calsync.ports.queries import ConflictQuery, MirrorQuery
from calsync.results import CalendarState, ConflictItem, ConflictsPage, EventItem, EventsPage, SyncEnqueued
from calsync.services.sync import SyncConfig
from calsync.services.tasks import admin_sync_task_name, sync_task

MAX_PAGE_SIZE = 500


def register_calendar(new: CalendarRecord, *, api: CalendarApi, store: StateStore, clock: Clock) -> CalendarRecord:
    """Record an existing Google calendar under ``new``'s key, kind, clinic and owner (idempotent for the
    same Google id; ``StaleState`` if the key is taken)."""
    existing = store.get_calendar(new.key)
    if existing is not None:
        if existing.google_calendar_id != new.google_calendar_id:
            raise errors.StaleState(
                f"calendar key {new.key} is registered with another Google calendar", details={"key": new.key}
            )
        return existing
    api.get_calendar(new.google_calendar_id)  # NotFound / Forbidden: not ours to manage
    record = new.model_copy(update={"created_at": clock.now()})
    store.put_calendar(record)
    return record


def calendar_state(calendar_key: str, *, store: StateStore) -> CalendarState:
    """The admin view of one calendar (``UnknownResource`` if not registered)."""
    record = store.get_calendar(calendar_key)
    if record is None:
        raise errors.UnknownResource(f"unknown calendar {calendar_key}", details={"key": calendar_key})
    channel = store.active_channel(calendar_key)
    return copy_into(
        CalendarState,
        record,
        has_sync_token=record.sync_token is not None,
        channel_expires_at=channel.expiration if channel is not None else None,
        writer=record.writer,
    )


def event_item(event: MirrorEvent) -> EventItem:
    """A mirror event as the admin API shows it."""
    return copy_into(EventItem, event, id=event.external_id, calendar_id=event.calendar_key)


def conflict_item(conflict: Conflict) -> ConflictItem:
    """A conflict as the admin API shows it."""
    return copy_into(ConflictItem, conflict, calendar_id=conflict.calendar_key)


def _require_calendar(store: StateStore, calendar_key: str) -> None:
    if store.get_calendar(calendar_key) is None:
        raise errors.UnknownResource(f"unknown calendar {calendar_key}", details={"calendar_id": calendar_key})


def list_events(spec: MirrorQuery, *, store: StateStore) -> EventsPage:
    """One page of the mirror (cancelled excluded; no Google call)."""
    _require_calendar(store, spec.calendar_key)
    if spec.time_min is not None and spec.time_max is not None and spec.time_max <= spec.time_min:
        raise errors.InvalidRequest("time_max must be after time_min")
    items, token = store.list_mirror_events(replace(spec, page_size=min(spec.page_size, MAX_PAGE_SIZE)))
    return EventsPage(items=[event_item(e) for e in items], next_page_token=token)


def list_conflicts(spec: ConflictQuery, *, store: StateStore) -> ConflictsPage:
    """One page of conflicts (optionally of one calendar and status)."""
    if spec.calendar_key is not None:
        _require_calendar(store, spec.calendar_key)
    items, token = store.list_conflicts(replace(spec, page_size=min(spec.page_size, MAX_PAGE_SIZE)))
    return ConflictsPage(items=[conflict_item(c) for c in items], next_page_token=token)


def force_sync(
    calendar_key: str, *, store: StateStore, queue: TaskQueue, clock: Clock, config: SyncConfig
) -> SyncEnqueued:
    """Enqueue a sync with reason ``admin`` (requests within the same 10 s share one task name)."""
    _require_calendar(store, calendar_key)
    now = clock.now()
    name = admin_sync_task_name(config.env, calendar_key, now)
    created = queue.enqueue(sync_task(config.sync_queue, config.sync_url, calendar_key, "admin", now, name=name))
    return SyncEnqueued(calendar_id=calendar_key, enqueued=created, task_name=name)
