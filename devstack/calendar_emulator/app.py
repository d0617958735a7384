"""The Starlette application: the Calendar API, the batch endpoint, ``/token`` and ``/_emulator/*``.

All state lives on the server's event loop (handlers are synchronous and short), so API calls,
control calls and push deliveries never race. With a state file, calendars, events, change logs and
channels are written (debounced) after every change and at shutdown, and read back at startup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from devstack.calendar_emulator import batch
from devstack.calendar_emulator.api import ApiRequest, ApiResponse, Emulator, error_response
from devstack.calendar_emulator.auth import DEFAULT_OAUTH_USER, DEFAULT_SERVICE_ACCOUNT, TokenError, caller_for
from devstack.calendar_emulator.consent import ConsentError
from devstack.calendar_emulator.errors import ApiError
from devstack.calendar_emulator.governor import FaultSpec, PushSpec, QuotaSpec, fault_error
from devstack.calendar_emulator.iam import SIGN_BLOB_SUFFIX
from devstack.calendar_emulator.usage import UsageLimitsSpec

BATCH_PATH = "/batch/calendar/v3"
M = TypeVar("M", bound=BaseModel)
SAVE_DEBOUNCE_S = 0.2


def _to_response(resp: ApiResponse) -> Response:
    return Response(resp.body, status_code=resp.status, headers=resp.headers)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _target(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    target = raw.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "parseError", "Parse Error") from exc


def _validated(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid", exc.errors(include_url=False)[0]["msg"]) from exc


def create_app(
    state_file: Path | None = None,
    *,
    default_user: str = DEFAULT_SERVICE_ACCOUNT,
    usage_limits: UsageLimitsSpec | None = None,
) -> Starlette:
    """Build the emulator's ASGI app (optionally persisted to ``state_file``).

    ``default_user`` is the principal of requests without credentials: Google's service account by
    default; the local stack passes the Workspace user calsync impersonates through domain-wide
    delegation, so unauthenticated calls may add attendees and Meet links as that user could.
    ``usage_limits`` are the per-account limits in force at start and after each reset (none by default).
    """
    emu = Emulator(default_user=default_user, usage_limits=usage_limits)
    pending: dict[str, asyncio.TimerHandle] = {}

    def save() -> None:
        pending.pop("save", None)
        if state_file is None:
            return
        tmp = state_file.with_suffix(state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(emu.store.dump()))
        os.replace(tmp, state_file)

    def schedule_save() -> None:
        if state_file is not None and "save" not in pending:
            pending["save"] = asyncio.get_running_loop().call_later(SAVE_DEBOUNCE_S, save)

    emu.on_change = schedule_save

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if state_file is not None and state_file.exists():
            emu.store.load(json.loads(state_file.read_text()))
        try:
            yield
        finally:
            if handle := pending.pop("save", None):
                handle.cancel()
            save()
            await emu.push.close()

    async def api(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        call = ApiRequest(request.method, _target(request), headers, body, _base_url(request))
        return _to_response(await emu.call(call))

    async def batch_endpoint(request: Request) -> Response:
        emu.stats.count("batch_requests")
        try:
            if fault := emu.faults.take("POST", BATCH_PATH):
                emu.stats.count("faults_injected")
                raise fault_error(fault)
            headers = {k.lower(): v for k, v in request.headers.items()}
            parts = batch.parse(headers.get("content-type", ""), await request.body(), headers)
        except ApiError as error:
            return _to_response(error_response(error))
        emu.stats.count("batch_parts", len(parts))
        answers = []
        for part in parts:
            resp = await emu.call(ApiRequest(part.method, part.target, part.headers, part.body, _base_url(request)))
            answers.append(batch.PartResponse(part.content_id, resp.status, resp.headers, resp.body))
        content_type, payload = batch.render(answers)
        return Response(payload, headers={"Content-Type": content_type})

    def stats() -> dict[str, object]:
        iam = {
            "token_grants": dict(emu.tokens.grants),
            "iam_signed": emu.tokens.iam.signed,
            "consents": emu.tokens.consent.granted,
        }
        return {**emu.stats.snapshot(), "usage": emu.usage.snapshot(), **iam}

    async def sign_blob(request: Request) -> Response:
        name = request.path_params["name"]
        if not name.endswith(SIGN_BLOB_SUFFIX):
            return _to_response(error_response(ApiError(404, "notFound", "Not Found")))
        try:
            caller = emu.tokens.caller(request.headers.get("authorization"), request.headers.get("x-emulator-user"))
            data = await _json_body(request)
            payload = data.get("payload") if isinstance(data, dict) else None
            if not isinstance(payload, str):
                raise ApiError(400, "badRequest", "Invalid value at 'payload'")
            return JSONResponse(emu.tokens.iam.sign_blob(name.removesuffix(SIGN_BLOB_SUFFIX), caller.email, payload))
        except ApiError as error:
            return _to_response(error_response(error))

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        try:
            return JSONResponse(emu.tokens.issue(form))
        except TokenError as error:
            return JSONResponse(error.body(), status_code=error.status)

    async def authorize(request: Request) -> Response:
        try:
            target = emu.tokens.consent.authorize(dict(request.query_params), DEFAULT_OAUTH_USER)
        except ConsentError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return RedirectResponse(target, status_code=302)

    async def revoke(request: Request) -> Response:
        # https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        given = form.get("token") or request.query_params.get("token", "")
        if not given:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        grant = emu.tokens.access.get(given)
        refresh = grant.refresh_token if grant is not None else given
        if refresh is None or not refresh.startswith("rt:"):
            emu.tokens.access.pop(given, None)
            return JSONResponse({}, status_code=200 if grant is not None else 400)
        emu.tokens.revoke(refresh)
        return JSONResponse({})

    async def control(request: Request) -> Response:
        try:
            return await _control(request)
        except ApiError as error:
            return _to_response(error_response(error))

    async def _control(request: Request) -> Response:
        name = request.path_params["name"]
        method = request.method
        if name == "reset" and method == "POST":
            await emu.reset()
            schedule_save()
            return JSONResponse({"reset": True})
        if name == "faults":
            if method == "POST":
                data = await _json_body(request)
                specs = [_validated(FaultSpec, d) for d in (data if isinstance(data, list) else [data])]
                emu.faults.queue.extend(specs)
            elif method == "DELETE":
                emu.faults.queue.clear()
            return JSONResponse({"faults": [f.model_dump() for f in emu.faults.queue]})
        if name == "sync-tokens/expire" and method == "POST":
            data = await _json_body(request)
            count = emu.store.expire_sync_tokens(data.get("calendarId") if isinstance(data, dict) else None)
            schedule_save()
            return JSONResponse({"expired_calendars": count})
        if name == "quota":
            if method == "POST":
                emu.quota.configure(_validated(QuotaSpec, await _json_body(request)))
            return JSONResponse(emu.quota.spec.model_dump())
        if name == "usage-limits":
            if method == "POST":
                emu.usage.configure(await _json_body(request))
            return JSONResponse(emu.usage.spec.model_dump())
        if name == "push":
            if method == "POST":
                emu.push.spec = _validated(PushSpec, await _json_body(request))
            return JSONResponse(emu.push.spec.model_dump())
        if name == "stats" and method == "GET":
            return JSONResponse(stats())
        if name == "stats/reset" and method == "POST":
            emu.stats.reset()  # counters only: usage windows and lockouts are state, not statistics
            emu.tokens.grants.clear()
            return JSONResponse(stats())
        if name == "iam":
            if method == "POST":
                data = await _json_body(request)
                creators = data.get("token_creators") if isinstance(data, dict) else None
                emu.tokens.iam.token_creators = (
                    None if creators is None else {str(a): {str(c) for c in who} for a, who in creators.items()}
                )
            creators_now = emu.tokens.iam.token_creators
            listed = None if creators_now is None else {a: sorted(c) for a, c in creators_now.items()}
            return JSONResponse({"token_creators": listed})
        if name == "revoke" and method == "POST":
            data = await _json_body(request)
            refresh = data.get("refresh_token") if isinstance(data, dict) else None
            if not refresh:
                raise ApiError(400, "required", "refresh_token is required")
            return JSONResponse({"revoked": True, "access_tokens_dropped": emu.tokens.revoke(str(refresh))})
        if name == "grants" and method == "GET":
            return JSONResponse({"refresh_tokens": list(emu.tokens.issued)})
        if name == "seed" and method == "POST":
            data = await _json_body(request)
            if not isinstance(data, dict) or not isinstance(data.get("events"), list):
                raise ApiError(400, "required", "seed needs {calendarId, user, events: [...]}")
            who = caller_for(str(data.get("user") or DEFAULT_SERVICE_ACCOUNT))
            cal_id = str(data.get("calendarId") or "primary")
            with emu.store.unmetered():
                ids = [emu.store.insert_event(who, cal_id, dict(ev), {})["id"] for ev in data["events"]]
            schedule_save()
            return JSONResponse({"ids": ids})
        if name == "channels" and method == "GET":
            channels = [{**c.__dict__, "active": emu.push.active(c)} for c in emu.store.channels.values()]
            return JSONResponse({"channels": channels})
        raise ApiError(404, "notFound", f"Unknown control endpoint {method} /_emulator/{name}")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    routes = [
        Route("/token", token, methods=["POST"]),
        Route("/o/oauth2/v2/auth", authorize, methods=["GET"]),
        Route("/revoke", revoke, methods=["POST"]),
        Route("/v1/projects/-/serviceAccounts/{name}", sign_blob, methods=["POST"]),
        Route(BATCH_PATH, batch_endpoint, methods=["POST"]),
        Route("/_emulator/{name:path}", control, methods=methods),
        Route("/calendar/v3/{rest:path}", api, methods=methods),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.emulator = emu
    return app
