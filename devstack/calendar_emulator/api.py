"""Routing of Calendar API v3 requests (single or batch parts) through identity, quota, limits and faults.

Every request, whether sent alone or as a batch part, goes through ``Emulator.call``: it is counted in
the stats under its path template, identified, charged against the quotas, refused when it is a write
of an account locked by its usage limits (``usage.py``), offered to the injected faults and then
answered by the ``Store``, whose writes are counted against those limits just before they commit.
Responses carry Google's JSON bodies and error shapes.
"""

from __future__ import annotations

import asyncio
import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devstack.calendar_emulator import fields, freebusy
from devstack.calendar_emulator.auth import DEFAULT_SERVICE_ACCOUNT, Tokens
from devstack.calendar_emulator.errors import ApiError
from devstack.calendar_emulator.governor import Faults, Quota, Stats, fault_error
from devstack.calendar_emulator.push import PushDispatcher, now_ms
from devstack.calendar_emulator.store import Caller, NotModified, Query, Store
from devstack.calendar_emulator.usage import WRITE_METHODS, UsageLimits, UsageLimitsSpec

API_PREFIX = "/calendar/v3"
# events.patch costs three quota units (events.patch reference).
QUOTA_COST = {"calendar.events.patch": 3}
JSON_TYPE = "application/json; charset=UTF-8"


@dataclass
class ApiRequest:
    """A Calendar API request, from the wire or from a batch part."""

    method: str
    target: str  # path with the query string, percent-encoded as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str


@dataclass
class ApiResponse:
    """What to answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Context:
    """What a handler needs: the caller, path parameters, query and JSON body."""

    caller: Caller
    params: dict[str, str]
    query: Query
    headers: dict[str, str]
    body: dict[str, Any]
    base_url: str


Handler = Callable[["Emulator", Context], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Route:
    """One API method: HTTP method, path template and Google method id."""

    method: str
    template: str
    method_id: str
    handler: Handler
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> ApiResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return ApiResponse(status, {"Content-Type": JSON_TYPE, **(headers or {})}, body)


def error_response(error: ApiError) -> ApiResponse:
    """Google's error body with the error's status and headers."""
    return _json(error.body(), error.status, error.headers)


class Emulator:
    """The API surface: store, identities, quotas, usage limits, faults, stats and push, wired together."""

    def __init__(
        self, default_user: str = DEFAULT_SERVICE_ACCOUNT, usage_limits: UsageLimitsSpec | None = None
    ) -> None:
        self.store = Store()
        self.tokens = Tokens(default_user=default_user)
        self.quota = Quota()
        self.faults = Faults()
        self.stats = Stats()
        self.startup_usage_limits = usage_limits or UsageLimitsSpec()
        self.usage = self._new_usage()
        self.push = PushDispatcher(self.store, self.stats)
        self.on_change: Callable[[], None] = lambda: None

    def _new_usage(self) -> UsageLimits:
        usage = UsageLimits(self.startup_usage_limits, on_reject=lambda: self.stats.count("usage_limit_rejections"))
        self.store.meter = lambda caller, amounts: usage.charge(caller.email, amounts)
        return usage

    async def reset(self) -> None:
        """Wipe all state, faults, quota settings, usage counters and lockouts, tokens, stats and pushes.

        Usage limits go back to the ones the emulator was started with (none unless ``--usage-limits``).
        """
        await self.push.reset()
        self.store.calendars.clear()
        self.store.channels.clear()
        self.tokens.access.clear()
        self.tokens.revoked.clear()
        self.tokens.issued.clear()
        self.tokens.consent.codes.clear()
        self.quota = Quota()
        self.usage = self._new_usage()
        self.faults.queue.clear()
        self.stats.reset()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for ``method`` and a percent-encoded ``path``, with decoded path parameters."""
        for route in ROUTES:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    async def call(self, request: ApiRequest) -> ApiResponse:
        """Answer one API request (never raises)."""
        split = urlsplit(request.target)
        path = split.path
        found = self.match(request.method, path)
        if found is None:
            self.stats.request(f"{request.method} (unmatched)", None)
            return error_response(ApiError(404, "notFound", "Not Found"))
        route, params = found
        self.stats.request(f"{route.method} {route.template}", route.method_id)
        try:
            caller = self.tokens.caller(request.headers.get("authorization"), request.headers.get("x-emulator-user"))
            try:
                self.quota.admit(caller.email, QUOTA_COST.get(route.method_id, 1))
            except ApiError:
                self.stats.count("quota_rejections")
                raise
            if route.method_id in WRITE_METHODS:
                self.usage.admit_write(caller.email)
            if fault := self.faults.take(request.method, path):
                self.stats.count("faults_injected")
                if fault.delay_ms:
                    await asyncio.sleep(fault.delay_ms / 1000)
                raise fault_error(fault)
            query: Query = {}
            for key, value in parse_qsl(split.query, keep_blank_values=True):
                query.setdefault(key, []).append(value)
            body: dict[str, Any] = {}
            if request.body.strip():
                try:
                    parsed = json.loads(request.body)
                except ValueError as exc:
                    raise ApiError(400, "parseError", "Parse Error") from exc
                if not isinstance(parsed, dict):
                    raise ApiError(400, "parseError", "Parse Error")
                body = parsed
            selector = fields.parse(query["fields"][-1]) if query.get("fields") else None
            context = Context(caller, params, query, request.headers, body, request.base_url)
            result = route.handler(self, context)
        except NotModified:
            return ApiResponse(304)
        except ApiError as error:
            return error_response(error)
        except Exception:  # an emulator bug must still answer in Google's shape
            traceback.print_exc()
            return error_response(ApiError(500, "backendError", "Backend Error"))
        if route.method != "GET":
            self.on_change()
        if result is None:
            return ApiResponse(204)
        headers = {"ETag": str(result["etag"])} if isinstance(result.get("etag"), str) else {}
        return _json(fields.apply(result, selector), headers=headers)


# --- handlers ----------------------------------------------------------------------------------------


def _if_match(ctx: Context) -> str | None:
    return ctx.headers.get("if-match")


def _calendars_insert(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.insert_calendar(ctx.caller, ctx.body)


def _calendars_get(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.get_calendar(ctx.caller, ctx.params["calendarId"])


def _calendars_delete(emu: Emulator, ctx: Context) -> None:
    emu.store.delete_calendar(ctx.caller, ctx.params["calendarId"])


def _calendar_list(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.calendar_list(ctx.caller, ctx.query)


def _calendar_list_get(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.calendar_list_entry(ctx.caller, ctx.params["calendarId"])


def _acl_insert(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.insert_acl(ctx.caller, ctx.params["calendarId"], ctx.body)


def _acl_list(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.list_acl(ctx.caller, ctx.params["calendarId"], ctx.query)


def _acl_get(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.get_acl(ctx.caller, ctx.params["calendarId"], ctx.params["ruleId"])


def _acl_delete(emu: Emulator, ctx: Context) -> None:
    emu.store.delete_acl(ctx.caller, ctx.params["calendarId"], ctx.params["ruleId"])


def _events_list(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.list_events(ctx.caller, ctx.params["calendarId"], ctx.query)


def _events_insert(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.insert_event(ctx.caller, ctx.params["calendarId"], ctx.body, ctx.query)


def _events_get(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.get_event(
        ctx.caller, ctx.params["calendarId"], ctx.params["eventId"], ctx.headers.get("if-none-match")
    )


def _events_update(emu: Emulator, ctx: Context) -> dict[str, Any]:
    p = ctx.params
    return emu.store.update_event(ctx.caller, p["calendarId"], p["eventId"], ctx.body, ctx.query, _if_match(ctx))


def _events_patch(emu: Emulator, ctx: Context) -> dict[str, Any]:
    p = ctx.params
    return emu.store.patch_event(ctx.caller, p["calendarId"], p["eventId"], ctx.body, ctx.query, _if_match(ctx))


def _events_delete(emu: Emulator, ctx: Context) -> None:
    emu.store.delete_event(ctx.caller, ctx.params["calendarId"], ctx.params["eventId"], _if_match(ctx))


def _events_instances(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return emu.store.instances(ctx.caller, ctx.params["calendarId"], ctx.params["eventId"], ctx.query)


def _freebusy_query(emu: Emulator, ctx: Context) -> dict[str, Any]:
    return freebusy.query(emu.store, ctx.caller, ctx.body)


def _events_watch(emu: Emulator, ctx: Context) -> dict[str, Any]:
    # events.watch takes events.list's parameters; validate them the same way (a 400 is a 400).
    emu.store.list_events(ctx.caller, ctx.params["calendarId"], {**ctx.query, "maxResults": ["1"]})
    channel = emu.store.watch(ctx.caller, ctx.params["calendarId"], ctx.body, ctx.base_url, now_ms())
    emu.push.sync(channel)
    out: dict[str, Any] = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": str(channel.expiration_ms),
    }
    if channel.token is not None:
        out["token"] = channel.token
    return out


def _channels_stop(emu: Emulator, ctx: Context) -> None:
    emu.store.stop_channel(ctx.body)


_C = API_PREFIX + "/calendars/{calendarId}"
ROUTES: list[Route] = [
    Route("POST", API_PREFIX + "/calendars", "calendar.calendars.insert", _calendars_insert),
    Route("GET", _C, "calendar.calendars.get", _calendars_get),
    Route("DELETE", _C, "calendar.calendars.delete", _calendars_delete),
    Route("GET", API_PREFIX + "/users/me/calendarList", "calendar.calendarList.list", _calendar_list),
    Route("GET", API_PREFIX + "/users/me/calendarList/{calendarId}", "calendar.calendarList.get", _calendar_list_get),
    Route("POST", _C + "/acl", "calendar.acl.insert", _acl_insert),
    Route("GET", _C + "/acl", "calendar.acl.list", _acl_list),
    Route("GET", _C + "/acl/{ruleId}", "calendar.acl.get", _acl_get),
    Route("DELETE", _C + "/acl/{ruleId}", "calendar.acl.delete", _acl_delete),
    Route("GET", _C + "/events", "calendar.events.list", _events_list),
    Route("POST", _C + "/events", "calendar.events.insert", _events_insert),
    Route("POST", _C + "/events/watch", "calendar.events.watch", _events_watch),
    Route("GET", _C + "/events/{eventId}", "calendar.events.get", _events_get),
    Route("GET", _C + "/events/{eventId}/instances", "calendar.events.instances", _events_instances),
    Route("PUT", _C + "/events/{eventId}", "calendar.events.update", _events_update),
    Route("PATCH", _C + "/events/{eventId}", "calendar.events.patch", _events_patch),
    Route("DELETE", _C + "/events/{eventId}", "calendar.events.delete", _events_delete),
    Route("POST", API_PREFIX + "/freeBusy", "calendar.freebusy.query", _freebusy_query),
    Route("POST", API_PREFIX + "/channels/stop", "calendar.channels.stop", _channels_stop),
]
