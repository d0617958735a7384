"""Admin routes on calendars: register, state, watch, forced sync, health."""

from __future__ import annotations

from flask_openapi3.blueprint import APIBlueprint

from calsync.bootstrap import channel_config, get_container
from calsync.http.auth import operation
from calsync.http.configs import health_config, io_ports, publish_ports, publish_store, sync_config
from calsync.http.docs import blueprint_options
from calsync.http.schemas import CalendarPath, RegisterBody, SyncBody
from calsync.model import CalendarRecord
from calsync.results import CalendarState, EventResynced, HealthAnswer, SyncEnqueued, Watched
from calsync.services import calendars as calendars_service
from calsync.services import events as events_service
from calsync.services import health
from calsync.services.channels import open_channel

api = APIBlueprint("calendars", __name__, **blueprint_options("calendars"))


@api.post("/calendars", responses={201: CalendarState}, summary="Register an existing Google calendar")
@operation(audit=True)
def register_calendar(body: RegisterBody) -> tuple[CalendarState, int]:
    """Register an existing Google calendar."""
    c = get_container()
    calendars_service.register_calendar(CalendarRecord(**body.model_dump()), **io_ports(c))
    return calendars_service.calendar_state(body.key, store=c.store), 201


@api.get("/calendars/<key>", responses={200: CalendarState}, summary="A calendar's sync state")
@operation()
def get_calendar(path: CalendarPath) -> tuple[CalendarState, int]:
    """A calendar's state."""
    return calendars_service.calendar_state(path.key, store=get_container().store), 200


@api.post("/calendars/<key>/watch", responses={201: Watched}, summary="Open a push channel on a calendar")
@operation(audit=True)
def open_watch(path: CalendarPath) -> tuple[Watched, int]:
    """Open a push channel on a calendar (events.watch) and enqueue its initial sync."""
    c = get_container()
    record = open_channel(path.key, **io_ports(c), queue=c.queue, config=channel_config(c.settings))
    return Watched(
        calendar_id=record.calendar_key, channel_id=record.channel_id, channel_expires_at=record.expiration
    ), 201


@api.post(
    "/sync",
    responses={202: SyncEnqueued, 200: EventResynced},
    summary="Force a sync of a calendar, or reprocess one event",
)
@operation(audit=True)
def force_sync(body: SyncBody) -> tuple[SyncEnqueued | EventResynced, int]:
    """Enqueue a sync with reason ``admin`` (202), or with ``event_id`` reprocess that event now (200)."""
    c = get_container()
    if body.event_id is not None:
        done = events_service.resync_event(body.calendar_id, body.event_id, **publish_ports(c), queue=c.queue)
        return done, 200
    enqueued = calendars_service.force_sync(
        body.calendar_id, store=c.store, queue=c.queue, clock=c.clock, config=sync_config(c.settings)
    )
    return enqueued, 202


@api.get("/health", responses={200: HealthAnswer}, summary="Health of every calendar")
@operation()
def get_health() -> tuple[HealthAnswer, int]:
    """Health of every calendar and overall."""
    c = get_container()
    store = publish_store(c)
    answer = health.health(store=store, clock=c.clock, config=health_config(c.settings), directory=store, writers=store)
    return answer, 200
