"""A small typed HTTP client of calsync's admin API (the ``publish`` function), for the CLI.

Every call has a timeout; idempotent reads are retried by urllib3 on connection errors and 502/503/504
(a poll during a long apply should not die on one blip); writes are never retried here because the
server's own idempotency (deterministic ids, confirm tokens) is what makes a repeat safe, and the
operator decides. Every failure becomes a :class:`CliError` with a readable message and an exit code:
the API's error shape ``{"error": {"code", "message", "details"}}`` is unpacked, and a refused
connection, a timeout or a malformed URL are named as such — never a traceback.

Each route method returns the typed answer of its route, the :mod:`calsync.results` model the API
itself declares and builds, validated from the JSON with ``extra="ignore"`` (pydantic's per-call
override, applied at every nesting level). The models keep ``extra="forbid"``: on the server an unknown
key is a bug — mypy's pydantic plugin (``init_forbid_extra``) catches it in keyword constructors, but
not in those fed a spread dict — and the published OpenAPI says ``additionalProperties: false``. The
CLI reads leniently instead, so it stays useful when the API grows an optional field: the fields it
knows are rendered, a newer API's extra ones are left out (of the tables and of ``--json``). An answer
that does not fit — a required field missing, a type or an enum value this CLI does not know — is a
version mismatch, reported as such (``UNREACHABLE``, like a non-JSON answer) with the fields that did
not fit, never their values.

Where the API is (first match wins, each value on its own):

- URL: ``--url``, else ``CALSYNC_ADMIN_URL``, else ``functions.publish`` of the local stack's
  ``endpoints.json``;
- token: ``--token``, else ``CALSYNC_ADMIN_TOKEN``, else ``admin_token`` of ``endpoints.json`` — the
  latter only when the URL is the local stack's too, so a local token is never sent elsewhere.

``endpoints.json`` is read from ``CALSYNC_DEVSTACK_DIR`` when set, else from the first ``.devstack/``
found in the current directory or one of its parents (what ``python -m devstack up`` writes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from calsync.results import (
    ConflictItem,
    ConflictsPage,
    EventResynced,
    HealthAnswer,
    PlanAnswer,
    ProgressAnswer,
    Provisioned,
    Result,
    SyncEnqueued,
)
from calsync.results_connections import ClinicDisconnected, ConnectionStarted

DEFAULT_TIMEOUT_S = 30.0
READ_RETRIES = 2
RETRY_BACKOFF_S = 0.3
ENV_URL = "CALSYNC_ADMIN_URL"
ENV_TOKEN = "CALSYNC_ADMIN_TOKEN"  # noqa: S105  # the variable's name, not a secret
ENV_DEVSTACK_DIR = "CALSYNC_DEVSTACK_DIR"
ENDPOINTS_FILE = "endpoints.json"
MAX_SHOWN_MISFITS = 3

AnswerT = TypeVar("AnswerT", bound=Result)


class ExitCode(IntEnum):
    """The CLI's exit codes (stable: scripts branch on them)."""

    OK = 0
    API_ERROR = 1  # the API refused the request (4xx not listed below) or failed (5xx)
    USAGE = 2  # bad command line (typer/click's own code)
    UNREACHABLE = 3  # no URL configured, malformed URL, connection refused, timeout, not calsync's answer
    AUTH = 4  # 401 / 403: missing, wrong or insufficient credentials
    NOT_FOUND = 5  # 404: unknown plan, calendar, conflict or route
    CONFLICT = 6  # 409: e.g. the plan is stale, plan again
    PUBLISH_FAILED = 7  # the apply ran and ended in status ``failed``
    ABORTED = 8  # a confirmation was declined, or no confirm token was available
    STILL_RUNNING = 9  # ``apply`` stopped waiting (``--wait-timeout``); the publish goes on


class CliError(Exception):
    """An expected failure: printed as ``message`` (and ``hint``), then the CLI exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: ExitCode, *, hint: str | None = None) -> None:
        """Carry what to print and how to exit."""
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint


class ApiError(CliError):
    """The API answered with an error status; ``code`` and ``details`` come from its error body."""

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, Any], *, hint: str | None = None
    ) -> None:
        """Build from the parsed ``{"error": {...}}`` body."""
        super().__init__(f"HTTP {status} {code}: {message}", _exit_code_for(status), hint=hint)
        self.status = status
        self.code = code
        self.details = dict(details)


def _exit_code_for(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 409:
        return ExitCode.CONFLICT
    return ExitCode.API_ERROR


# --- Where the API is --------------------------------------------------------------------------------


class _DevstackEndpoints(BaseModel):
    """The part of the local stack's ``endpoints.json`` the CLI needs (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")

    functions: dict[str, str]
    admin_token: str


@dataclass(frozen=True)
class Target:
    """The admin API to talk to, and where its URL came from (shown in errors)."""

    url: str
    token: str | None
    source: str


def find_devstack_dir(env: Mapping[str, str], cwd: Path) -> Path | None:
    """``CALSYNC_DEVSTACK_DIR``, else the nearest ``.devstack/`` holding ``endpoints.json`` upwards of ``cwd``."""
    configured = env.get(ENV_DEVSTACK_DIR)
    if configured:
        return Path(configured)
    for folder in (cwd, *cwd.parents):
        if (folder / ".devstack" / ENDPOINTS_FILE).is_file():
            return folder / ".devstack"
    return None


def _read_endpoints(path: Path) -> _DevstackEndpoints:
    try:
        return _DevstackEndpoints.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", ExitCode.UNREACHABLE) from None
    except ValidationError:
        raise CliError(
            f"{path} is not a local stack endpoints file (functions.publish and admin_token expected)",
            ExitCode.UNREACHABLE,
        ) from None


def resolve_target(url: str | None, token: str | None, env: Mapping[str, str], cwd: Path) -> Target:
    """Pick the URL and token: options, then environment, then the local stack (see the module docstring)."""
    token = token or env.get(ENV_TOKEN) or None
    if url:
        return Target(url=url, token=token, source="--url")
    if env.get(ENV_URL):
        return Target(url=env[ENV_URL], token=token, source=ENV_URL)
    folder = find_devstack_dir(env, cwd)
    path = folder / ENDPOINTS_FILE if folder is not None else None
    if path is None or not path.is_file():
        raise CliError(
            "no admin API URL: pass --url, set CALSYNC_ADMIN_URL, or start the local stack"
            + (f" (no {path})" if path is not None else ""),
            ExitCode.UNREACHABLE,
            hint="python -m devstack up  (writes .devstack/endpoints.json)",
        )
    endpoints = _read_endpoints(path)
    publish = endpoints.functions.get("publish")
    if not publish:
        raise CliError(f"{path} names no publish function", ExitCode.UNREACHABLE)
    return Target(url=publish, token=token or endpoints.admin_token, source=str(path))


# --- The client -------------------------------------------------------------------------------------


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(
            f"{url!r} is not an http(s) URL", ExitCode.UNREACHABLE, hint="e.g. --url http://127.0.0.1:18467/"
        )
    # A trailing slash makes relative paths land under a path prefix (Cloud Functions gen1 URLs have one).
    return url if url.endswith("/") else url + "/"


def _segment(value: str) -> str:
    """One URL path segment, every reserved character escaped (ids are data, not paths)."""
    return quote(value, safe="")


class AdminClient:
    """Typed calls to the admin API; each returns its route's answer model (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        read_retries: int = READ_RETRIES,
        session: requests.Session | None = None,
    ) -> None:
        """Talk to ``base_url`` with ``Authorization: Bearer <token>`` (when a token is known)."""
        self.base_url = _check_url(base_url)
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        retry = Retry(
            total=read_retries,
            connect=read_retries,
            read=read_retries,
            status=read_retries,
            backoff_factor=RETRY_BACKOFF_S,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # -- transport

    def request(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send one request; the decoded JSON object on 2xx, :class:`CliError` otherwise."""
        url = urljoin(self.base_url, path)
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            response = self.session.request(method, url, json=body, params=query or None, timeout=self.timeout_s)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema):
            raise CliError(f"{url!r} is not a valid URL", ExitCode.UNREACHABLE) from None
        except requests.exceptions.Timeout:
            raise CliError(f"no answer from {url} within {self.timeout_s:g} s", ExitCode.UNREACHABLE) from None
        except requests.exceptions.ConnectionError as exc:
            raise CliError(
                f"cannot connect to {url}: {_reason(exc)}",
                ExitCode.UNREACHABLE,
                hint="is the function running? (local stack: python -m devstack status)",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise CliError(f"{method} {url} failed: {type(exc).__name__}", ExitCode.UNREACHABLE) from None
        return _decode(response, method, url)

    def call(
        self,
        answer: type[AnswerT],
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> AnswerT:
        """Send one request and read its 2xx answer as ``answer`` (unknown fields ignored, at every level)."""
        data = self.request(method, path, body=body, params=params)
        try:
            return answer.model_validate(data, extra="ignore")
        except ValidationError as exc:
            raise _version_mismatch(answer, exc, method, urljoin(self.base_url, path)) from None

    # -- routes

    def plan(self, clinic_id: str, date_from: str, date_to: str, *, clear_future: bool) -> PlanAnswer:
        """``POST /publish/plan``: a stored plan with its confirmation token(s)."""
        body = {"clinic_id": clinic_id, "from": date_from, "to": date_to, "clear_future": clear_future}
        return self.call(PlanAnswer, "POST", "publish/plan", body=body)

    def apply(self, plan_id: str, confirm: str, confirm_clear_future: str | None) -> ProgressAnswer:
        """``POST /publish/apply``: start applying a plan (the second token only for ``clear_future``)."""
        body: dict[str, Any] = {"plan_id": plan_id, "confirm": confirm}
        if confirm_clear_future is not None:
            body["confirm_clear_future"] = confirm_clear_future
        return self.call(ProgressAnswer, "POST", "publish/apply", body=body)

    def plan_status(self, plan_id: str) -> ProgressAnswer:
        """``GET /publish/{plan_id}``: status and done/total of a plan."""
        return self.call(ProgressAnswer, "GET", f"publish/{_segment(plan_id)}")

    def provision(self, clinic_id: str) -> Provisioned:
        """``POST /provision``: schedule a clinic's missing calendars (idempotent)."""
        return self.call(Provisioned, "POST", "provision", body={"clinic_id": clinic_id})

    def provision_status(self, clinic_id: str) -> Provisioned:
        """``GET /provision/{clinic_id}``: how many of the clinic's calendars exist and are watched."""
        return self.call(Provisioned, "GET", f"provision/{_segment(clinic_id)}")

    def sync(self, calendar_id: str) -> SyncEnqueued:
        """``POST /sync``: enqueue a sync of a calendar (202)."""
        return self.call(SyncEnqueued, "POST", "sync", body={"calendar_id": calendar_id})

    def resync_event(self, calendar_id: str, event_id: str) -> EventResynced:
        """``POST /sync`` with ``event_id``: re-read one event from Google and reprocess it now (200)."""
        return self.call(EventResynced, "POST", "sync", body={"calendar_id": calendar_id, "event_id": event_id})

    def conflicts(
        self, calendar_id: str | None, status: str | None, *, limit: int, page_size: int = 100
    ) -> ConflictsPage:
        """``GET /conflicts``, following ``next_page_token`` until ``limit`` items (or the end)."""
        items: list[ConflictItem] = []
        token: str | None = None
        while True:
            params = {
                "calendar_id": calendar_id,
                "status": status,
                "page_size": min(page_size, limit - len(items)),
                "page_token": token,
            }
            page = self.call(ConflictsPage, "GET", "conflicts", params=params)
            items.extend(page.items)
            token = page.next_page_token
            if not token or len(items) >= limit:
                return ConflictsPage(items=items[:limit], next_page_token=token)

    def resolve(self, conflict_id: str, action: str) -> ConflictItem:
        """``POST /conflicts/{id}/resolve``: ``accept_google`` or ``republish``."""
        return self.call(ConflictItem, "POST", f"conflicts/{_segment(conflict_id)}/resolve", body={"action": action})

    def connect(self, clinic_id: str, login_hint: str = "") -> ConnectionStarted:
        """``POST /clinics/{id}/connection``: Google's consent URL for the clinic's own account."""
        params = {"login_hint": login_hint} if login_hint else None
        return self.call(ConnectionStarted, "POST", f"clinics/{quote(clinic_id, safe='')}/connection", params=params)

    def disconnect(self, clinic_id: str) -> ClinicDisconnected:
        """``DELETE /clinics/{id}/connection``: revoke the clinic's grant and forget its token."""
        return self.call(ClinicDisconnected, "DELETE", f"clinics/{quote(clinic_id, safe='')}/connection")

    def health(self) -> HealthAnswer:
        """``GET /health``: overall and per-calendar status."""
        return self.call(HealthAnswer, "GET", "health")


def _reason(exc: requests.exceptions.ConnectionError) -> str:
    """A short reason for a failed connection (urllib3's text nests whole reprs)."""
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("Max retries exceeded", "connection failed"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__


def _decode(response: requests.Response, method: str, url: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer, or the API error it describes."""
    try:
        data: Any = response.json() if response.content else {}
    except json.JSONDecodeError:
        data = None
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            details = error.get("details")
            raise ApiError(
                response.status_code,
                str(error.get("code") or "error"),
                str(error.get("message") or response.reason),
                details if isinstance(details, dict) else {},
                hint=_hint_for(response.status_code),
            )
        snippet = response.text[:200].strip() or response.reason
        raise ApiError(response.status_code, "http_error", snippet, {}, hint=_hint_for(response.status_code))
    if not isinstance(data, dict):
        raise CliError(
            f"{method} {url} answered {response.status_code} without a JSON object — is this calsync's admin API?",
            ExitCode.UNREACHABLE,
        )
    return data


def _version_mismatch(answer: type[Result], exc: ValidationError, method: str, url: str) -> CliError:
    """A 2xx answer that is not the model of its route: name the misfit fields, never their values."""
    misfits = [
        f"{'.'.join(str(part) for part in error['loc']) or '(answer)'}: {error['msg'].lower()}"
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    more = f" (and {len(misfits) - MAX_SHOWN_MISFITS} more)" if len(misfits) > MAX_SHOWN_MISFITS else ""
    return CliError(
        f"{method} {url} did not answer a {answer.__name__} ({'; '.join(misfits[:MAX_SHOWN_MISFITS])}{more}): "
        "this is not the answer calsync's API gives — version mismatch?",
        ExitCode.UNREACHABLE,
        hint="use the CLI of the API's version, or point --url at calsync's admin API",
    )


def _hint_for(status: int) -> str | None:
    if status == 401:
        return "pass --token or set CALSYNC_ADMIN_TOKEN (locally: admin_token of .devstack/endpoints.json)"
    if status == 409:
        return "things changed since the plan was made: run `calsync plan` again"
    return None
