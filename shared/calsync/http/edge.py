"""The one HTTP edge of the four Cloud Functions: log context, summary line, errors → answers.

``serve(function, request, handler)`` is what every ``functions/*/main.py`` calls. It binds the log
context (``X-Cloud-Trace-Context`` → trace fields, ``Function-Execution-Id``, the function's name),
writes the invocation's one summary line, and turns a ``CalsyncError`` the handler raises into an
answer. Each error class carries its HTTP status and retry semantics (``calsync.errors``); this is
the only place that reads them.

The rules:
- a retryable error answers its ``http_status`` (429 or 503) with the envelope and ``Retry-After``:
  the upstream's ``retry_after_s`` if it gave one, else the class's ``default_retry_after_s``,
  rounded up, at least 1 s (a retryable class without a 429/503 status answers 503);
- a final error answers ``{"error": {"code", "message", "details"}}`` with its ``http_status``;
- a final error on a Cloud Tasks request (``X-CloudTasks-TaskName``; on the publish function only
  its task route) is acknowledged with 200 ``{"dropped": code}``, because Cloud Tasks retries every
  non-2xx — except the caller's own credentials (401/403 ``drop_from_task = False``), which are
  answered so a misconfigured invoker shows up instead of silently losing work.

The table (status / retried; ``dropped`` = final, acknowledged when it comes from a task):

=========================  ======  =========================================================
error                      status  notes
=========================  ======  =========================================================
InvalidRequest             400     dropped; ``AllocationsRejected`` is 422
BadRequest (Calendar 400)  400     dropped
Unauthenticated            401     answered even to a task
PermissionDenied           403     answered even to a task
Forbidden (Calendar 403)   403     dropped
UnknownResource, NotFound  404     dropped
MethodNotAllowed           405     (sync answered 400 before: one rule for all functions)
StaleState, EventStarted   409     dropped
Duplicate (Calendar 409)   409     dropped (was a 500 on publish)
PreconditionFailed         412     dropped; was 500/dropped in sync and an unmapped 500 in renew
RateLimited                429     retried; Retry-After from Google, else 30 s (publish used to
                                   truncate, sync rounded up: rounded up everywhere)
QuotaExhausted             429     retried, Retry-After 300 s: the user is read-only for a while
                                   (was 503 in publish and renew, 429 in sync)
Transient, BatchConflict,  503     retried, Retry-After 30 s
StoreUnavailable,
QueueUnavailable
other CalsyncError         500     dropped (AuthRevoked, SecretUnavailable, ...); renew used to
                                   let them escape as a retried 500
=========================  ======  =========================================================

Other exceptions are bugs: they escape (functions-framework answers 500) after the summary line
records ``status=error`` and the exception's type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import flask
from pydantic import ValidationError

from calsync import errors
from calsync.bootstrap import Container, get_container
from calsync.logs import Summary, get_logger, invocation, request_context

TASK_HEADER = "X-CloudTasks-TaskName"
RETRY_STATUSES = frozenset({429, 503})
T = TypeVar("T")

Handler = Callable[[Container, flask.Request], flask.Response]

_summary: ContextVar[Summary | None] = ContextVar("calsync_http_summary", default=None)


def current_summary() -> Summary:
    """The summary line of the invocation being served (a throwaway outside ``serve``)."""
    return _summary.get() or Summary()


def json_response(body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None) -> flask.Response:
    """A JSON answer."""
    response = flask.make_response(flask.jsonify(dict(body)), status)
    response.headers.update(dict(headers or {}))
    return response


def envelope(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The error envelope."""
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}


def status_of(exc: errors.CalsyncError) -> int:
    """The HTTP status of an error."""
    if exc.retryable and exc.http_status not in RETRY_STATUSES:
        return 503
    return exc.http_status


def retry_after_s(exc: errors.CalsyncError) -> int:
    """Seconds for ``Retry-After``: the upstream's hint, else the class default; rounded up, ≥ 1."""
    return max(1, math.ceil(exc.retry_after_s or exc.default_retry_after_s))


def from_task(request: flask.Request) -> bool:
    """True when Cloud Tasks sent the request (it sets ``X-CloudTasks-TaskName`` itself)."""
    return bool(request.headers.get(TASK_HEADER))


def error_response(exc: errors.CalsyncError, *, task: bool) -> flask.Response:
    """The answer to an error (see the module's table); records it on the summary line."""
    summary = current_summary()
    status = status_of(exc)
    if exc.retryable:
        seconds = retry_after_s(exc)
        summary.update(status="retry", http_status=status, error_code=exc.code, retry_after_s=seconds)
        return json_response(envelope(exc.code, exc.message, exc.details), status, {"Retry-After": str(seconds)})
    if task and exc.drop_from_task:
        summary.update(status="dropped", http_status=200, error_code=exc.code)
        return json_response({"dropped": exc.code}, 200)
    summary.update(status="rejected" if status < 500 else "error", http_status=status, error_code=exc.code)
    return json_response(envelope(exc.code, exc.message, exc.details), status)


@contextmanager
def bound(function: str, request: flask.Request, container: Container, message: str) -> Iterator[Summary]:
    """Bind the log context of one invocation and yield its summary line (written when the block ends)."""
    headers = dict(request.headers.items())
    log = get_logger(f"calsync.{function}")
    with (
        request_context(headers, project=container.settings.gcp_project, function=function),
        invocation(log, message) as summary,
    ):
        token = _summary.set(summary)
        try:
            yield summary
        finally:
            _summary.reset(token)


def serve(function: str, request: flask.Request, handler: Handler, *, message: str) -> flask.Response:
    """Run ``handler`` for one invocation of ``function`` at the edge (context, summary, errors)."""
    container = get_container()
    with bound(function, request, container, message) as summary:
        try:
            response = handler(container, request)
        except errors.CalsyncError as exc:
            return error_response(exc, task=from_task(request))
        summary.setdefault("http_status", response.status_code)
        return response


def parse(validate: Callable[[Any], T], data: Any, message: str) -> T:
    """``validate(data)``, or ``InvalidRequest`` naming the fields that failed."""
    try:
        return validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        raise errors.InvalidRequest(message, details={"fields": fields}) from None
