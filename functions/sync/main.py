"""Cloud Function ``sync``: the Cloud Tasks target that syncs one calendar (``services.sync``).

Thin entry point: validate the JSON body into a ``SyncCommand``, bind the log context, run the sync,
map errors to statuses. Cloud Tasks retries every non-2xx answer, so a permanent error on a request
that carries ``X-CloudTasks-TaskName`` is acknowledged with 200 and ``{"dropped": reason}``; a direct
call gets the 4xx. Work that may succeed later answers 429/503 with ``Retry-After``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, ValidationError

from calsync import errors
from calsync.bootstrap import get_container
from calsync.config import Settings
from calsync.logs import get_logger, invocation, request_context
from calsync.services.sync import SyncCommand, SyncConfig, sync_calendar

log = get_logger("calsync.sync")
DEFAULT_RETRY_AFTER_S = 30


class SyncBody(BaseModel):
    """The task body."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    calendar_id: str
    reason: Literal["webhook", "poll", "publish", "admin", "channel_created", "continuation"]
    requested_at: datetime | None = None


def sync_config(settings: Settings) -> SyncConfig:
    """The sync use case's settings."""
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


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.make_response(flask.jsonify(body), status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _permanent(exc: errors.CalsyncError, status: int, from_tasks: bool) -> flask.Response:
    """A final error: acknowledged for Cloud Tasks (so it is not retried), 4xx for a direct call."""
    if from_tasks:
        return _json({"dropped": exc.code}, 200)
    return _json({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}, status)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Sync the calendar named in the task body and answer with the run's summary."""
    container = get_container()
    settings = container.settings
    headers = dict(request.headers.items())
    from_tasks = "X-CloudTasks-TaskName" in request.headers
    with (
        request_context(headers, project=settings.gcp_project, function="sync"),
        invocation(log, "sync.invocation") as summary,
    ):
        try:
            if request.method != "POST":
                raise errors.InvalidRequest("POST a JSON task body")
            try:
                body = SyncBody.model_validate(request.get_json(force=True, silent=True) or {})
            except ValidationError as exc:
                fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
                raise errors.InvalidRequest("malformed sync request", details={"fields": fields}) from None
            summary.update(calendar_key=body.calendar_id, reason=body.reason)
            result = sync_calendar(
                SyncCommand(
                    calendar_key=body.calendar_id,
                    reason=body.reason,
                    requested_at=body.requested_at,
                    task_name=request.headers.get("X-CloudTasks-TaskName"),
                ),
                api=container.calendar_api,
                store=container.store,
                queue=container.queue,
                clock=container.clock,
                config=sync_config(settings),
            )
        except (errors.InvalidRequest, errors.UnknownResource) as exc:
            status = 400 if isinstance(exc, errors.InvalidRequest) else 404
            summary.update(status="dropped" if from_tasks else "rejected", http_status=status, error_code=exc.code)
            return _permanent(exc, status, from_tasks)
        except errors.CalsyncError as exc:
            if not exc.retryable:
                summary.update(status="dropped" if from_tasks else "error", http_status=500, error_code=exc.code)
                return _permanent(exc, 500, from_tasks)
            status = 429 if isinstance(exc, errors.RateLimited | errors.QuotaExhausted) else 503
            retry_after = getattr(exc, "retry_after_s", None) or DEFAULT_RETRY_AFTER_S
            summary.update(status="retry", http_status=status, error_code=exc.code, retry_after_s=retry_after)
            return _json(
                {"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
                status,
                {"Retry-After": str(math.ceil(retry_after))},
            )
        summary.update(
            mode=result.mode,
            pages=result.pages,
            fetched=result.fetched,
            written=result.written,
            unchanged=result.unchanged,
            tombstoned=result.tombstoned,
            conflicts_opened=result.conflicts_opened,
            conflicts_resolved=result.conflicts_resolved,
            continued=int(result.continued),
            status=result.status,
        )
        return _json(result.to_dict(), 200)
