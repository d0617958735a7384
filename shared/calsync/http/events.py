"""Admin routes on events: the mirror, ad-hoc events (optionally with Meet), changes and cancels (If-Match)."""

from __future__ import annotations

from typing import Any

from flask_openapi3.blueprint import APIBlueprint

from calsync.bootstrap import get_container
from calsync.copying import copy_into
from calsync.http.auth import operation
from calsync.http.configs import publish_ports
from calsync.http.docs import blueprint_options, error
from calsync.http.schemas import EventPatchBody, EventPath, EventQuery, EventsQuery, IfMatchHeader, NewEventBody
from calsync.results import EventAnswer, EventCancelled, EventsPage
from calsync.services import calendars as calendars_service
from calsync.services import events as events_service

api = APIBlueprint("events", __name__, **blueprint_options("events"))
CHANGED: dict[str | int, Any] = {412: error("the event changed (If-Match)")}


@api.get("/events", responses={200: EventsPage}, summary="The mirror of one calendar")
@operation(audit=True)  # people's appointments: every read is audited
def list_events(query: EventsQuery) -> tuple[EventsPage, int]:
    """The mirror of one calendar (cancelled events excluded; no Google call)."""
    return calendars_service.list_events(query.spec(), store=get_container().store), 200


@api.post("/events", responses={201: EventAnswer}, summary="Create an ad-hoc event (optional Meet link)")
@operation(audit=True)
def post_event(body: NewEventBody) -> tuple[EventAnswer, int]:
    """Create an ad-hoc event (optionally with Meet); a retried ``request_id`` creates nothing new."""
    c = get_container()
    command = copy_into(events_service.NewEvent, body, calendar_key=body.calendar_id, attendees=tuple(body.attendees))
    created = events_service.create_event(command, **publish_ports(c))
    return created, 201


@api.patch("/events/<event_id>", responses={200: EventAnswer, **CHANGED}, summary="Change one of our events (If-Match)")
@operation(audit=True)
def patch_event(
    path: EventPath, query: EventQuery, body: EventPatchBody, header: IfMatchHeader
) -> tuple[EventAnswer, int]:
    """Change one of our events (If-Match)."""
    c = get_container()
    change = copy_into(
        events_service.EventChange,
        body,
        calendar_key=query.calendar_id,
        event_id=path.event_id,
        attendees=tuple(body.attendees) if body.attendees is not None else None,
        if_match=header.if_match,
    )
    changed = events_service.patch_event(change, **publish_ports(c))
    return changed, 200


@api.delete(
    "/events/<event_id>", responses={200: EventCancelled, **CHANGED}, summary="Cancel one of our events (If-Match)"
)
@operation(audit=True)
def delete_event(path: EventPath, query: EventQuery, header: IfMatchHeader) -> tuple[EventCancelled, int]:
    """Cancel one of our events (If-Match)."""
    c = get_container()
    cancelled = events_service.cancel_event(
        query.calendar_id,
        path.event_id,
        if_match=header.if_match,
        **publish_ports(c),
    )
    return cancelled, 200
