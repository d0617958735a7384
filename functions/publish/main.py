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
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from calsync import errors
from calsync.bootstrap import Container, get_container
from calsync.logs import get_logger, invocation, request_context
from calsync.services import admin
from calsync.services.channels import channel_config, open_channel
from calsync.services.sync import SyncConfig

log = get_logger("calsync.publish")
M = TypeVar("M", bound=BaseModel)

Handler = Callable[[Container, flask.Request, dict[str, Any]], tuple[dict[str, Any], int]]


class Strict(BaseModel):
    """Base of request bodies and queries: unknown fields refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterBody(Strict):
    """``POST /calendars``."""

    key: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    google_calendar_id: str = Field(min_length=1, max_length=1024)
    kind: Literal["professional", "room", "control"]
    clinic_id: str | None = None
    owner_id: str | None = None


class Paging(Strict):
    """Paging of list routes."""

    page_size: int = Field(default=100, ge=1, le=admin.MAX_PAGE_SIZE)
    page_token: str | None = None


class EventsQuery(Paging):
    """``GET /events``."""

    calendar_id: str
    time_min: datetime | None = None
    time_max: datetime | None = None


class ConflictsQuery(Paging):
    """``GET /conflicts``."""

    calendar_id: str | None = None
    status: Literal["open", "resolved"] | None = None


class SyncBody(Strict):
    """``POST /sync``."""

    calendar_id: str = Field(min_length=1)


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
    return SyncConfig(env=settings.environment, sync_queue=settings.sync_queue, sync_url=settings.sync_url)


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


URLS = Map(
    [
        Rule("/calendars", methods=["POST"], endpoint="register_calendar"),
        Rule("/calendars/<key>", methods=["GET"], endpoint="get_calendar"),
        Rule("/events", methods=["GET"], endpoint="list_events"),
        Rule("/conflicts", methods=["GET"], endpoint="list_conflicts"),
        Rule("/sync", methods=["POST"], endpoint="force_sync"),
        Rule("/calendars/<key>/watch", methods=["POST"], endpoint="open_watch"),
    ]
)
HANDLERS: dict[str, Handler] = {
    "register_calendar": register_calendar,
    "get_calendar": get_calendar,
    "list_events": list_events,
    "list_conflicts": list_conflicts,
    "force_sync": force_sync,
    "open_watch": open_watch,
}
HTTP_STATUS = {
    errors.InvalidRequest: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.UnknownResource: 404,
    errors.NotFound: 404,
    errors.StaleState: 409,
    errors.Forbidden: 403,
}


def _error(code: str, message: str, status: int, details: dict[str, Any] | None = None) -> flask.Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return flask.make_response(flask.jsonify(body), status)


def _authenticate(container: Container, request: flask.Request) -> None:
    """Require ``Authorization: Bearer <admin token>`` (constant-time comparison)."""
    settings = container.settings
    secret = settings.admin_token or container.secrets.get(settings.secret_admin_token)
    expected = secret.get_secret_value()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise errors.Unauthenticated("a valid admin bearer token is required")


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Dispatch one admin request."""
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
        summary.update(route=str(endpoint), method=request.method)
        try:
            _authenticate(container, request)
            body, status = HANDLERS[str(endpoint)](container, request, dict(args))
        except errors.CalsyncError as exc:
            status = next((s for t, s in HTTP_STATUS.items() if isinstance(exc, t)), 503 if exc.retryable else 500)
            summary.update(status="rejected" if status < 500 else "error", http_status=status, error_code=exc.code)
            return _error(exc.code, exc.message, status, exc.details)
        summary.update(http_status=status)
        return flask.make_response(flask.jsonify(body), status)
