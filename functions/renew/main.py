"""Cloud Function ``renew``: the Cloud Scheduler target of the push path's jobs, and its fan-out tasks.

Bodies: ``{"job": "renew"}`` (every 6 h), ``{"job": "poll"}`` (every 10 min), ``{"job": "cleanup"}``
(daily), and ``{"job": "renew_calendar", "calendar_id": KEY}`` (one calendar, from a fan-out task).
Answers JSON counts. Malformed body → 400; unknown calendar → 404 — both acknowledged with 200
``{"dropped": reason}`` when Cloud Tasks sent them (``X-CloudTasks-TaskName``), since it retries every
non-2xx. A transiently unavailable store or queue → 503, so the scheduler or queue retries; every job
is safe to run twice. Authentication is the platform's (OIDC, invoker IAM), not this code's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from calsync import errors
from calsync.bootstrap import Container, get_container
from calsync.logs import get_logger, invocation, request_context
from calsync.services.channels import channel_config
from calsync.services.jobs import JobsConfig, renew_one, run_cleanup, run_poll, run_renew

log = get_logger("calsync.renew")


class ScheduledJob(BaseModel):
    """A Cloud Scheduler body."""

    model_config = ConfigDict(extra="forbid")
    job: Literal["renew", "poll", "cleanup"]


class RenewCalendarJob(BaseModel):
    """A per-calendar renewal task body."""

    model_config = ConfigDict(extra="forbid")
    job: Literal["renew_calendar"]
    calendar_id: str = Field(min_length=1, max_length=200)


JobBody = TypeAdapter[ScheduledJob | RenewCalendarJob](
    Annotated[ScheduledJob | RenewCalendarJob, Field(discriminator="job")]
)


def jobs_config(container: Container) -> JobsConfig:
    """The jobs' settings from ``Settings``."""
    s = container.settings
    return JobsConfig(
        channel=channel_config(s),
        renew_url=s.renew_url,
        renew_queue=s.renew_queue,
        renew_inline_max=s.renew_inline_max,
        poll_limit=s.poll_limit,
        poll_stale_s=s.poll_stale_s,
        poll_interval_s=s.poll_interval_s,
        mirror_retention_days=s.mirror_retention_days,
        conflict_retention_days=s.conflict_retention_days,
        cleanup_batch=s.cleanup_batch,
    )


def run_job(body: ScheduledJob | RenewCalendarJob, container: Container) -> dict[str, Any]:
    """Run one job on the container's ports; its JSON counts."""
    config = jobs_config(container)
    store = container.store
    clock = container.clock
    if isinstance(body, RenewCalendarJob):
        outcome = renew_one(
            body.calendar_id, api=container.calendar_api, store=store, queue=container.queue, clock=clock, config=config
        )
        if outcome == "unknown_calendar":
            raise errors.UnknownResource("unknown calendar", details={"calendar_key": body.calendar_id})
        return {"job": body.job, "calendar_id": body.calendar_id, "outcome": outcome}
    if body.job == "renew":
        return run_renew(api=container.calendar_api, store=store, queue=container.queue, clock=clock, config=config)
    if body.job == "poll":
        return run_poll(store=store, queue=container.queue, clock=clock, config=config)
    return run_cleanup(store=store, clock=clock, config=config)


def _error(status: int, code: str, message: str, *, from_tasks: bool) -> flask.Response:
    if from_tasks and status < 500:
        return flask.make_response(flask.jsonify({"dropped": code}), 200)
    body = {"error": {"code": code, "message": message, "details": {}}}
    return flask.make_response(flask.jsonify(body), status)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Decode the job, run it, answer its counts (or the error's status)."""
    container = get_container()
    headers = dict(request.headers.items())
    from_tasks = "X-CloudTasks-TaskName" in request.headers
    with (
        request_context(headers, project=container.settings.gcp_project, function="renew"),
        invocation(log, "renew.job") as summary,
    ):
        if request.method != "POST":
            summary.update(status="rejected", http_status=405)
            return _error(405, "method_not_allowed", "POST a job", from_tasks=False)
        try:
            body = JobBody.validate_json(request.get_data(cache=False) or b"null")
        except ValidationError:
            summary.update(status="rejected", http_status=400, reason="invalid_body")
            return _error(
                400, "invalid_request", "body must be {'job': 'renew'|'poll'|'cleanup'}", from_tasks=from_tasks
            )
        summary["job"] = body.job
        try:
            result = run_job(body, container)
        except errors.UnknownResource as exc:
            summary.update(status="rejected", http_status=404, reason=exc.code)
            return _error(404, exc.code, "unknown calendar", from_tasks=from_tasks)
        except errors.CalsyncError as exc:
            if not exc.retryable:
                raise
            summary.update(status="retry", http_status=503, error_code=exc.code)
            response = _error(503, exc.code, "retry later", from_tasks=from_tasks)
            response.headers["Retry-After"] = "30"
            return response
        summary.update(
            http_status=200,
            **{k: v for k, v in result.items() if isinstance(v, int) and not isinstance(v, bool)},
        )
        return flask.make_response(flask.jsonify(result), 200)
