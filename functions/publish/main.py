"""Cloud Function ``publish``: calsync's admin API (bearer token), extended by the publish issue.

Thin entry point: a werkzeug URL map dispatches to small handlers; each validates its input with
pydantic, calls one service function and returns JSON. Errors are always
``{"error": {"code", "message", "details"}}``. Routes so far:

- ``POST /calendars``            register an existing Google calendar
- ``GET  /calendars/<key>``      its sync state (and the channel's expiration)
- ``GET  /events``               the mirror (``calendar_id``, ``time_min``, ``time_max``, paging)
- ``GET  /conflicts``            conflicts (``calendar_id``, ``status``, paging)
- ``POST /sync``                 enqueue a forced sync (reason ``admin``)
- ``POST /calendars/<key>/watch`` open a push channel (``services.channels.open_channel``)

Publish issue (``ROUTES`` is the table; ``GET /openapi.json`` is generated from it and its models):
``PUT /clinics/<id>/professionals|rooms``, ``POST /provision``, ``PUT /allocations``,
``POST /publish/plan``, ``POST /publish/apply``, ``GET /publish/<plan_id>``, the task target
``POST /publish/tasks/apply``, ``POST /events``, ``PATCH|DELETE /events/<id>``,
``POST /conflicts/<id>/resolve``, ``GET /health``, and ``POST /sync`` with ``event_id``.

Auth: ``Authorization: Bearer <token>``. The configured admin token (local stack, dev) is accepted in
constant time; otherwise the token must be a Google ID token for this function's URL whose verified
e-mail is in ``admin_emails`` (401 missing/invalid, 403 not an admin). The task route accepts Cloud
Tasks' OIDC token for the invoker service account; locally (dev with the tasks emulator, which sends
no OIDC token) a request carrying ``X-CloudTasks-TaskName`` is trusted — Cloud Tasks sets that header
itself, and the dev function is bound to 127.0.0.1. Every mutating call writes one audit line:
``actor`` (a short sha256 of the caller's e-mail, never the e-mail), ``action`` and counts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import flask
import functions_framework
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from calsync import errors
from calsync.adapters import id_tokens
from calsync.bootstrap import Container, get_container
from calsync.config import Settings
from calsync.logs import get_logger, invocation, request_context
from calsync.model import Allocation, Professional, Room
from calsync.ports import PublishStore
from calsync.services import admin, directory, health, plan, provision
from calsync.services import allocations as allocations_service
from calsync.services import apply as apply_service
from calsync.services import conflicts as conflicts_service
from calsync.services import events as events_service
from calsync.services.channels import channel_config, open_channel
from calsync.services.sync import SyncConfig

log = get_logger("calsync.publish")
M = TypeVar("M", bound=BaseModel)

Handler = Callable[[Container, flask.Request, dict[str, Any]], tuple[dict[str, Any], int]]


# Ids become Firestore document ids (alone or in ``{clinic}__{id}``), which must not contain "/",
# be "." or "..", match ``__.*__`` or exceed 1,500 bytes. Refused here as 400: deeper down the store
# would fail them as a retryable 503 (found by schemathesis).
FIRESTORE_ID_MAX_BYTES = 1500
_RESERVED_ID = re.compile(r"__.*__", re.DOTALL)


def _storable_id(value: str) -> str:
    if value in (".", "..") or _RESERVED_ID.fullmatch(value) or len(value.encode()) > FIRESTORE_ID_MAX_BYTES:
        raise ValueError("not a valid identifier")
    return value


ID_PATTERN = r"^[^/]+$"
Id = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=ID_PATTERN, description="An identifier: no '/', not '__x__'."),
    AfterValidator(_storable_id),
]
GoogleId = Annotated[
    str,
    Field(min_length=1, max_length=1024, pattern=ID_PATTERN, description="A Google id: no '/', not '__x__'."),
    AfterValidator(_storable_id),
]
# Calendar keys and clinic ids also name tasks and appear in logs: a conservative alphabet.
SafeId = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$"), AfterValidator(_storable_id)
]
PATH_ID = TypeAdapter(Id)

# Times far from now overflow the store's window arithmetic (a query widened by the longest event
# span) into a 500 (found by probing the running function); no schedule lives outside these years.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    # A naive value is compared as UTC; handlers that need an offset refuse naive values themselves.
    if not EARLIEST <= (value if value.tzinfo else value.replace(tzinfo=UTC)) < LATEST:
        raise ValueError("out of range")
    return value


Instant = Annotated[datetime, Field(description="From 1900 to 2999."), AfterValidator(_in_range)]


class Strict(BaseModel):
    """Base of request bodies and queries: unknown fields refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterBody(Strict):
    """``POST /calendars``."""

    key: SafeId
    google_calendar_id: str = Field(min_length=1, max_length=1024)
    kind: Literal["professional", "room", "control"]
    clinic_id: Id | None = None
    owner_id: Id | None = None


class Paging(Strict):
    """Paging of list routes."""

    page_size: int = Field(default=100, ge=1, le=admin.MAX_PAGE_SIZE)
    page_token: GoogleId | None = None


class EventsQuery(Paging):
    """``GET /events``."""

    calendar_id: Id
    time_min: Instant | None = None
    time_max: Instant | None = None


class ConflictsQuery(Paging):
    """``GET /conflicts``."""

    calendar_id: Id | None = None
    status: Literal["open", "resolved"] | None = None


class SyncBody(Strict):
    """``POST /sync``: a calendar, or with ``event_id`` one event of it (read from Google, reprocessed)."""

    calendar_id: Id
    event_id: GoogleId | None = None


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        raise errors.InvalidRequest("invalid request", details={"fields": fields}) from None


def _body(request: flask.Request) -> Any:
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise errors.InvalidRequest("the body must be a JSON object")
    return data


def _sync_config(container: Container) -> SyncConfig:
    settings = container.settings
    return SyncConfig(
        env=settings.environment,
        sync_queue=settings.sync_queue,
        sync_url=settings.sync_url,
        past_days=settings.sync_past_days,
        future_days=settings.sync_future_days,
        lock_lease_s=settings.lock_lease_s,
        run_budget_s=settings.sync_run_budget_s,
        time_zone=settings.display_time_zone,
    )


def register_calendar(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Register an existing Google calendar."""
    body = _parse(RegisterBody, _body(request))
    admin.register_calendar(
        admin.RegisterCalendar(**body.model_dump()),
        api=container.calendar_api,
        store=container.store,
        clock=container.clock,
    )
    return admin.calendar_state(body.key, store=container.store), 201


def get_calendar(container: Container, _: flask.Request, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A calendar's state."""
    return admin.calendar_state(args["key"], store=container.store), 200


def list_events(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The mirror of one calendar."""
    query = _parse(EventsQuery, request.args.to_dict())
    return admin.list_events(
        query.calendar_id,
        store=container.store,
        time_min=query.time_min,
        time_max=query.time_max,
        page_size=query.page_size,
        page_token=query.page_token,
    ), 200


def list_conflicts(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Conflicts, optionally of one calendar and status."""
    query = _parse(ConflictsQuery, request.args.to_dict())
    return admin.list_conflicts(
        query.calendar_id,
        store=container.store,
        status=query.status,
        page_size=query.page_size,
        page_token=query.page_token,
    ), 200


def force_sync(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Enqueue a sync with reason ``admin``."""
    body = _parse(SyncBody, _body(request))
    if body.event_id is not None:
        return events_service.resync_event(
            body.calendar_id,
            body.event_id,
            api=container.calendar_api,
            store=_store(container),
            queue=container.queue,
            clock=container.clock,
            config=publish_config(container.settings),
        ), 200
    result = admin.force_sync(
        body.calendar_id,
        store=container.store,
        queue=container.queue,
        clock=container.clock,
        config=_sync_config(container),
    )
    return result, 202


def open_watch(container: Container, _: flask.Request, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Open a push channel on a calendar (events.watch) and enqueue its initial sync."""
    record = open_channel(
        args["key"],
        api=container.calendar_api,
        store=container.store,
        queue=container.queue,
        clock=container.clock,
        config=channel_config(container.settings),
    )
    expiration = record.expiration.isoformat() if record.expiration else None
    body = {"calendar_id": record.calendar_key, "channel_id": record.channel_id, "channel_expires_at": expiration}
    return body, 201


# --- publish issue: settings, models, handlers ------------------------------------------------------


def publish_config(settings: Settings) -> plan.PublishConfig:
    """The publish use cases' settings."""
    return plan.PublishConfig(
        env=settings.environment,
        control_calendar_id=settings.control_calendar_id,
        publish_queue=settings.publish_queue,
        publish_url=settings.publish_url,
        batch_size=settings.batch_size,
        sync_queue=settings.sync_queue,
        sync_url=settings.sync_url,
        time_zone=settings.display_time_zone,
    )


def _store(container: Container) -> PublishStore:
    return container.store


class ProfessionalIn(Strict):
    """One professional of ``PUT /clinics/{clinic_id}/professionals``."""

    id: Id
    name: str = Field(min_length=1, max_length=500)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class RoomIn(Strict):
    """One room of ``PUT /clinics/{clinic_id}/rooms``."""

    id: Id
    name: str = Field(min_length=1, max_length=500)


class ProfessionalsBody(Strict):
    """``PUT /clinics/{clinic_id}/professionals``: the whole list."""

    items: list[ProfessionalIn] = Field(max_length=directory.MAX_DIRECTORY_ITEMS)


class RoomsBody(Strict):
    """``PUT /clinics/{clinic_id}/rooms``: the whole list."""

    items: list[RoomIn] = Field(max_length=directory.MAX_DIRECTORY_ITEMS)


class ProvisionBody(Strict):
    """``POST /provision``."""

    clinic_id: SafeId


class AllocationIn(BaseModel):
    """One allocation of ``PUT /allocations`` (validated item by item: errors are per item)."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    clinic_id: Id
    professional_id: Id
    room_id: Id
    start: Instant
    end: Instant
    status: Literal["draft", "reviewed", "adjusted", "cancelled"]
    title: str = Field(default="", max_length=1000)
    attendees: list[str] = Field(default_factory=list, max_length=100)
    revision: int = Field(default=0, ge=0)


def _allocation_items_schema(schema: dict[str, Any]) -> None:
    """Document the items as ``AllocationIn`` (they are validated one by one, for per-item errors)."""
    schema["items"] = AllocationIn.model_json_schema()


class AllocationsBody(Strict):
    """``PUT /allocations``: up to 5,000 items, all or nothing."""

    items: list[dict[str, Any]] = Field(
        max_length=allocations_service.MAX_ALLOCATIONS, json_schema_extra=_allocation_items_schema
    )


class PlanBody(Strict):
    """``POST /publish/plan``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    clinic_id: Id
    time_min: Instant = Field(alias="from")
    time_max: Instant = Field(alias="to")
    clear_future: bool = False


class ApplyBody(Strict):
    """``POST /publish/apply``."""

    plan_id: Annotated[Id, Field(max_length=64)]
    confirm: str | None = Field(default=None, max_length=200)
    confirm_clear_future: str | None = Field(default=None, max_length=200)


class ApplyTaskBody(Strict):
    """``POST /publish/tasks/apply``: one chunk of a running plan (Cloud Tasks)."""

    plan_id: Annotated[Id, Field(max_length=64)]
    calendar_key: Id
    chunk: int = Field(ge=0)


class NewEventBody(Strict):
    """``POST /events``: an ad-hoc event (optionally with a Meet link)."""

    calendar_id: Id
    summary: str = Field(min_length=1, max_length=1000)
    start: Instant
    end: Instant
    attendees: list[str] = Field(default_factory=list, max_length=100)
    meet: bool = False
    request_id: str | None = Field(default=None, min_length=1, max_length=200)


class EventPatchBody(Strict):
    """``PATCH /events/{event_id}``: fields to change."""

    summary: str | None = Field(default=None, min_length=1, max_length=1000)
    start: Instant | None = None
    end: Instant | None = None
    attendees: list[str] | None = Field(default=None, max_length=100)


class EventQuery(Strict):
    """``calendar_id`` query of ``PATCH|DELETE /events/{event_id}``."""

    calendar_id: Id


class ResolveBody(Strict):
    """``POST /conflicts/{conflict_id}/resolve``."""

    action: Literal["accept_google", "republish"]


class Totals(BaseModel):
    """Counts of a plan."""

    create: int
    update: int
    delete: int
    skip: int


class PlanAnswer(BaseModel):
    """The answer of ``POST /publish/plan``."""

    plan_id: str
    confirm_token: str
    confirm_clear_future_token: str | None = None
    expires_at: datetime
    clear_future: bool
    totals: Totals
    quota: dict[str, float]
    calendars: list[dict[str, Any]]


class ProgressAnswer(BaseModel):
    """The answer of ``GET /publish/{plan_id}`` (and of apply)."""

    plan_id: str
    status: Literal["planned", "running", "done", "failed"]
    done: int
    total: int
    errors: list[dict[str, str]]
    calendars: list[dict[str, Any]]


class HealthCalendar(BaseModel):
    """One calendar of ``GET /health``."""

    key: str
    google_calendar_id: str
    kind: str
    status: Literal["ok", "degraded", "failing"]
    last_synced_at: datetime | None
    channel_expires_at: datetime | None
    open_conflicts: int


class HealthAnswer(BaseModel):
    """The answer of ``GET /health``."""

    status: Literal["ok", "degraded", "failing"]
    calendars: list[HealthCalendar]


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error: dict[str, Any]


def put_professionals(container: Container, request: flask.Request, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Replace a clinic's professionals."""
    body = _parse(ProfessionalsBody, _body(request))
    items = [Professional(clinic_id=args["clinic_id"], **p.model_dump()) for p in body.items]
    return directory.replace_professionals(args["clinic_id"], items, store=_store(container)), 200


def put_rooms(container: Container, request: flask.Request, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Replace a clinic's rooms."""
    body = _parse(RoomsBody, _body(request))
    items = [Room(clinic_id=args["clinic_id"], **r.model_dump()) for r in body.items]
    return directory.replace_rooms(args["clinic_id"], items, store=_store(container)), 200


def post_provision(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Create the clinic's missing calendars, share and watch them."""
    body = _parse(ProvisionBody, _body(request))
    return provision.provision_clinic(
        body.clinic_id,
        api=container.calendar_api,
        store=_store(container),
        queue=container.queue,
        clock=container.clock,
        channels=channel_config(container.settings),
        control_calendar_id=container.settings.control_calendar_id,
    ), 200


def put_allocations(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Bulk upsert of allocations: 422 with per-item errors and nothing written."""
    body = _parse(AllocationsBody, _body(request))
    parsed: list[Allocation] = []
    problems: list[dict[str, Any]] = []
    for index, raw in enumerate(body.items):
        try:
            item = AllocationIn.model_validate(raw)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "item" for e in exc.errors()})
            problems.append({"index": index, "id": raw.get("id"), "errors": [f"invalid {f}" for f in fields]})
            continue
        parsed.append(Allocation(**item.model_dump()))
    if problems:
        raise allocations_service.AllocationsRejected(
            "allocations rejected; nothing was written", details={"errors": problems}
        )
    return allocations_service.upsert_allocations(parsed, store=_store(container), clock=container.clock), 200


def post_plan(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Plan a publish (dry run) and store it."""
    body = _parse(PlanBody, _body(request))
    command = plan.PlanCommand(body.clinic_id, body.time_min, body.time_max, body.clear_future)
    answer = plan.make_plan(
        command, store=_store(container), clock=container.clock, config=publish_config(container.settings)
    )
    return answer, 201


def post_apply(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Confirm a plan and enqueue its paced tasks."""
    body = _parse(ApplyBody, _body(request))
    answer = apply_service.start_apply(
        apply_service.ApplyCommand(body.plan_id, body.confirm, body.confirm_clear_future),
        store=_store(container),
        api=container.calendar_api,
        queue=container.queue,
        clock=container.clock,
        config=publish_config(container.settings),
    )
    return answer, 202


def get_progress(container: Container, _: flask.Request, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Progress of a plan."""
    return apply_service.plan_progress(args["plan_id"], store=_store(container)), 200


def apply_task(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Run one chunk (Cloud Tasks target)."""
    body = _parse(ApplyTaskBody, _body(request))
    return apply_service.run_chunk(
        body.plan_id,
        body.calendar_key,
        body.chunk,
        store=_store(container),
        api=container.calendar_api,
        queue=container.queue,
        clock=container.clock,
        config=publish_config(container.settings),
    ), 200


def post_event(container: Container, request: flask.Request, _: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Create an ad-hoc event (optionally with Meet)."""
    body = _parse(NewEventBody, _body(request))
    command = events_service.NewEvent(
        calendar_key=body.calendar_id,
        summary=body.summary,
        start=body.start,
        end=body.end,
        attendees=tuple(body.attendees),
        meet=body.meet,
        request_id=body.request_id,
    )
    answer = events_service.create_event(
        command,
        api=container.calendar_api,
        store=_store(container),
        clock=container.clock,
        config=publish_config(container.settings),
    )
    return answer, 201


def patch_event(container: Container, request: flask.Request, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Change one of our events (If-Match)."""
    query = _parse(EventQuery, request.args.to_dict())
    body = _parse(EventPatchBody, _body(request))
    change = events_service.EventChange(
        calendar_key=query.calendar_id,
        event_id=args["event_id"],
        summary=body.summary,
        start=body.start,
        end=body.end,
        attendees=tuple(body.attendees) if body.attendees is not None else None,
        if_match=request.headers.get("If-Match"),
    )
    answer = events_service.patch_event(
        change,
        api=container.calendar_api,
        store=_store(container),
        clock=container.clock,
        config=publish_config(container.settings),
    )
    return answer, 200


def delete_event(container: Container, request: flask.Request, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Cancel one of our events (If-Match)."""
    query = _parse(EventQuery, request.args.to_dict())
    return events_service.cancel_event(
        query.calendar_id,
        args["event_id"],
        if_match=request.headers.get("If-Match"),
        api=container.calendar_api,
        store=_store(container),
        clock=container.clock,
        config=publish_config(container.settings),
    ), 200


def resolve_conflict(container: Container, request: flask.Request, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Settle a conflict: keep Google's version or republish ours."""
    body = _parse(ResolveBody, _body(request))
    return conflicts_service.resolve_conflict(
        args["conflict_id"],
        body.action,
        api=container.calendar_api,
        store=_store(container),
        clock=container.clock,
        config=publish_config(container.settings),
    ), 200


def get_health(container: Container, _: flask.Request, __: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Health of every calendar and overall."""
    config = health.HealthConfig(stale_s=container.settings.poll_stale_s)
    return health.health(store=_store(container), clock=container.clock, config=config), 200


def get_openapi(_: Container, __: flask.Request, ___: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The OpenAPI document of this API."""
    return openapi_document(), 200


# --- the route table -------------------------------------------------------------------------------

Auth = Literal["admin", "task", "public"]


@dataclass(frozen=True)
class Route:
    """One route: werkzeug path, method, handler, request/response models, auth, audit."""

    path: str
    method: str
    handler: Handler
    summary: str
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    auth: Auth = "admin"
    mutating: bool = False

    @property
    def endpoint(self) -> str:
        """The werkzeug endpoint name (the handler's)."""
        return f"{self.method.lower()}:{self.path}"


ROUTES: tuple[Route, ...] = (
    Route(
        "/calendars",
        "POST",
        register_calendar,
        "Register an existing Google calendar",
        201,
        RegisterBody,
        mutating=True,
    ),
    Route("/calendars/<key>", "GET", get_calendar, "A calendar's sync state"),
    Route("/calendars/<key>/watch", "POST", open_watch, "Open a push channel on a calendar", 201, mutating=True),
    Route("/events", "GET", list_events, "The mirror of one calendar", query=EventsQuery),
    Route(
        "/events", "POST", post_event, "Create an ad-hoc event (optional Meet link)", 201, NewEventBody, mutating=True
    ),
    Route(
        "/events/<event_id>",
        "PATCH",
        patch_event,
        "Change one of our events (If-Match)",
        200,
        EventPatchBody,
        EventQuery,
        mutating=True,
    ),
    Route(
        "/events/<event_id>",
        "DELETE",
        delete_event,
        "Cancel one of our events (If-Match)",
        200,
        None,
        EventQuery,
        mutating=True,
    ),
    Route("/conflicts", "GET", list_conflicts, "Conflicts", query=ConflictsQuery),
    Route(
        "/conflicts/<conflict_id>/resolve",
        "POST",
        resolve_conflict,
        "Settle a conflict",
        200,
        ResolveBody,
        mutating=True,
    ),
    Route(
        "/sync", "POST", force_sync, "Force a sync of a calendar, or reprocess one event", 202, SyncBody, mutating=True
    ),
    Route("/health", "GET", get_health, "Health of every calendar", response=HealthAnswer),
    Route(
        "/clinics/<clinic_id>/professionals",
        "PUT",
        put_professionals,
        "Replace a clinic's professionals",
        200,
        ProfessionalsBody,
        mutating=True,
    ),
    Route("/clinics/<clinic_id>/rooms", "PUT", put_rooms, "Replace a clinic's rooms", 200, RoomsBody, mutating=True),
    Route(
        "/provision",
        "POST",
        post_provision,
        "Create, share and watch a clinic's calendars",
        200,
        ProvisionBody,
        mutating=True,
    ),
    Route(
        "/allocations",
        "PUT",
        put_allocations,
        "Bulk upsert of allocations (all or nothing)",
        200,
        AllocationsBody,
        mutating=True,
    ),
    Route(
        "/publish/plan",
        "POST",
        post_plan,
        "Plan a publish (dry run)",
        201,
        PlanBody,
        response=PlanAnswer,
        mutating=True,
    ),
    Route(
        "/publish/apply",
        "POST",
        post_apply,
        "Apply a confirmed plan",
        202,
        ApplyBody,
        response=ProgressAnswer,
        mutating=True,
    ),
    Route("/publish/<plan_id>", "GET", get_progress, "Progress of a plan", response=ProgressAnswer),
    Route(
        "/publish/tasks/apply",
        "POST",
        apply_task,
        "Run one chunk of a plan (Cloud Tasks)",
        200,
        ApplyTaskBody,
        auth="task",
        mutating=True,
    ),
    Route("/openapi.json", "GET", get_openapi, "This document", auth="public"),
)
BY_ENDPOINT = {r.endpoint: r for r in ROUTES}
URLS = Map([Rule(r.path, methods=[r.method], endpoint=r.endpoint) for r in ROUTES])
HANDLERS: dict[str, Handler] = {r.endpoint: r.handler for r in ROUTES}
HTTP_STATUS: dict[type[errors.CalsyncError], int] = {
    allocations_service.AllocationsRejected: 422,
    errors.InvalidRequest: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.UnknownResource: 404,
    errors.NotFound: 404,
    errors.StaleState: 409,
    errors.PreconditionFailed: 412,
    errors.Forbidden: 403,
    errors.BadRequest: 400,
    errors.RateLimited: 429,
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, from the route table and the pydantic models."""
    components: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    error = {"content": {"application/json": {"schema": ref(ErrorBody)}}}
    paths: dict[str, Any] = {}
    for route in ROUTES:
        path = route.path.replace("<", "{").replace(">", "}")
        op: dict[str, Any] = {"summary": route.summary, "operationId": route.handler.__name__}
        params = [
            {"name": name, "in": "path", "required": True, "schema": PATH_ID.json_schema()}
            for name in (part[1:-1] for part in route.path.split("/") if part.startswith("<"))
        ]
        if route.query is not None:
            schema = route.query.model_json_schema()
            required = set(schema.get("required", []))
            for name, prop in schema["properties"].items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        if route.method in ("PATCH", "DELETE"):
            params.append({"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}})
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(route.body)}}}
        success: dict[str, Any] = {"description": "OK"}
        success["content"] = {
            "application/json": {"schema": ref(route.response) if route.response else {"type": "object"}}
        }
        op["responses"] = {str(route.status): success}
        for code, what in (("400", "invalid request"), ("404", "not found"), ("409", "stale or conflicting")):
            op["responses"][code] = {"description": what, **error}
        if route.auth != "public":
            op["responses"]["401"] = {"description": "missing or invalid credentials", **error}
            op["responses"]["403"] = {"description": "not an admin", **error}
            op["security"] = [{"bearer": []}]
        if route.path == "/allocations":
            op["responses"]["422"] = {"description": "rejected items; nothing written", **error}
        if route.method in ("PATCH", "DELETE"):
            op["responses"]["412"] = {"description": "the event changed (If-Match)", **error}
        paths.setdefault(path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "calsync admin API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


# --- auth and dispatch -----------------------------------------------------------------------------


def _error(code: str, message: str, status: int, details: dict[str, Any] | None = None) -> flask.Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return flask.make_response(flask.jsonify(body), status)


def actor_of(identity: str) -> str:
    """A pseudonymous actor for audit lines: a short sha256 of the caller's identity."""
    return hashlib.sha256(identity.lower().encode()).hexdigest()[:12]


def _bearer(request: flask.Request) -> str:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise errors.Unauthenticated("a bearer token is required")
    return given.strip()


def _admin_token_matches(container: Container, given: str) -> bool:
    settings = container.settings
    try:
        secret = settings.admin_token or container.secrets.get(settings.secret_admin_token)
    except errors.SecretUnavailable:
        return False
    expected = secret.get_secret_value()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _authenticate(container: Container, request: flask.Request, route: Route) -> str:
    """The caller's identity (an e-mail or ``admin-token``); 401 without valid credentials, 403 if not allowed."""
    settings = container.settings
    if route.auth == "public":
        return "anonymous"
    local_tasks = settings.environment == "dev" and bool(settings.tasks_emulator_host)
    if route.auth == "task" and local_tasks and request.headers.get("X-CloudTasks-TaskName"):
        return "cloud-tasks-emulator"
    given = _bearer(request)
    if _admin_token_matches(container, given):
        return "admin-token"
    if route.auth == "task":
        audience = settings.publish_url.rstrip("/") + apply_service.TASK_ROUTE
        claims = id_tokens.verify_google_id_token(given, audience=audience)
        if str(claims["email"]).lower() != settings.tasks_invoker_service_account.lower():
            raise errors.PermissionDenied("not the Cloud Tasks invoker")
        return str(claims["email"])
    claims = id_tokens.verify_google_id_token(
        given, audience=[settings.publish_url, *settings.admin_id_token_audiences]
    )
    email = str(claims["email"]).lower()
    if email not in {e.lower() for e in settings.admin_emails}:
        raise errors.PermissionDenied("not an admin")
    return email


def _check_path_ids(args: Mapping[str, Any]) -> None:
    """Refuse path ids that cannot name a stored document (400, as for ids in bodies and queries)."""
    bad = []
    for name, value in args.items():
        try:
            PATH_ID.validate_python(value)
        except ValidationError:
            bad.append(name)
    if bad:
        raise errors.InvalidRequest("invalid request", details={"fields": sorted(bad)})


def _counts(body: dict[str, Any]) -> dict[str, Any]:
    """The counts of an answer that may go to the audit line (no content)."""
    keys = ("created", "updated", "deleted", "skipped", "done", "total", "count", "written")
    out: dict[str, Any] = {k: body[k] for k in keys if isinstance(body.get(k), int)}
    if isinstance(body.get("upserted"), int):
        out["count"] = body["upserted"]
    if isinstance(body.get("totals"), dict):
        out.update({k: v for k, v in body["totals"].items() if k in ("created", "deleted", "skipped")})
        out["total"] = sum(int(v) for v in body["totals"].values())
    if isinstance(body.get("plan_id"), str):
        out["plan_id"] = body["plan_id"]
    return out


def _from_tasks(request: flask.Request) -> bool:
    return bool(request.headers.get("X-CloudTasks-TaskName"))


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Dispatch one admin (or publish task) request."""
    container = get_container()
    headers = dict(request.headers.items())
    with (
        request_context(headers, project=container.settings.gcp_project, function="publish"),
        invocation(log, "publish.request") as summary,
    ):
        try:
            endpoint, args = URLS.bind("localhost", path_info=request.path).match(method=request.method)
        except NotFound:
            summary.update(status="rejected", http_status=404)
            return _error("not_found", "no such route", 404)
        except MethodNotAllowed:
            summary.update(status="rejected", http_status=405)
            return _error("method_not_allowed", "method not allowed on this route", 405)
        route = BY_ENDPOINT[str(endpoint)]
        summary.update(route=route.path, method=request.method)
        try:
            identity = _authenticate(container, request, route)
            _check_path_ids(args)
            body, status = route.handler(container, request, dict(args))
        except errors.CalsyncError as exc:
            status = next((s for t, s in HTTP_STATUS.items() if isinstance(exc, t)), 503 if exc.retryable else 500)
            summary.update(status="rejected" if status < 500 else "error", http_status=status, error_code=exc.code)
            if route.auth == "task" and _from_tasks(request) and status < 500 and status not in (401, 403, 429):
                # A permanent error on a task: acknowledge so Cloud Tasks does not retry it forever.
                return flask.make_response(flask.jsonify({"dropped": exc.code}), 200)
            response = _error(exc.code, exc.message, status, exc.details)
            retry_after = getattr(exc, "retry_after_s", None)
            if status in (429, 503):
                response.headers["Retry-After"] = str(max(1, int(retry_after or 30)))
            return response
        if route.mutating:
            log.info("publish.audit", actor=actor_of(identity), action=route.handler.__name__, **_counts(body))
        summary.update(http_status=status)
        return flask.make_response(flask.jsonify(body), status)
