"""Cloud Function ``renew``: the Cloud Scheduler target of the scheduled jobs, and its fan-out tasks.

Jobs: ``renew`` (6 h), ``poll`` (10 min), ``cleanup`` (daily), ``availability`` (hourly: free/busy),
``renew_calendar`` with ``calendar_id`` (a fan-out task). Answers the job's typed result as JSON;
``calsync.http.edge`` answers errors (bad body 400, unknown calendar 404, both ``dropped`` for Cloud
Tasks; store or queue down 503 with ``Retry-After``). Every job is safe to run twice.
"""

from __future__ import annotations

from typing import Annotated, Literal

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from calsync import errors
from calsync.bootstrap import Container
from calsync.http import edge
from calsync.http.configs import availability_config, jobs_config
from calsync.job_results import JobResult, RenewCalendarDone
from calsync.services.availability import check_all
from calsync.services.maintenance import renew_one, run_cleanup, run_poll, run_renew


class ScheduledJob(BaseModel):
    """A Cloud Scheduler body."""

    model_config = ConfigDict(extra="forbid")
    job: Literal["renew", "poll", "cleanup", "availability"]


class RenewCalendarJob(BaseModel):
    """A per-calendar renewal task body."""

    model_config = ConfigDict(extra="forbid")
    job: Literal["renew_calendar"]
    calendar_id: str = Field(min_length=1, max_length=200)


JobBody = TypeAdapter[ScheduledJob | RenewCalendarJob](
    Annotated[ScheduledJob | RenewCalendarJob, Field(discriminator="job")]
)


def run(container: Container, request: flask.Request) -> flask.Response:
    """Decode the job, run it on the container's ports, answer its counts."""
    if request.method != "POST":
        raise errors.MethodNotAllowed("POST a job")
    raw = request.get_data(cache=False) or b"null"
    body = edge.parse(JobBody.validate_json, raw, "body must be {'job': 'renew'|'poll'|'cleanup'|'availability'}")
    edge.current_summary()["job"] = body.job
    api, queue, clock = container.calendar_api, container.queue, container.clock
    store, config = container.store, jobs_config(container.settings)
    result: JobResult
    if isinstance(body, RenewCalendarJob):
        outcome = renew_one(body.calendar_id, api=api, store=store, queue=queue, clock=clock, config=config)
        if outcome == "unknown_calendar":
            raise errors.UnknownResource("unknown calendar", details={"calendar_key": body.calendar_id})
        result = RenewCalendarDone(calendar_id=body.calendar_id, outcome=outcome)
    elif body.job == "renew":
        result = run_renew(api=api, store=store, queue=queue, clock=clock, config=config)
    elif body.job == "poll":
        result = run_poll(store=store, queue=queue, clock=clock, config=config)
    elif body.job == "availability":
        result = check_all(store=store, api=api, clock=clock, config=availability_config(container.settings))
    else:
        result = run_cleanup(store=store, clock=clock, config=config)
    edge.current_summary().update(result.audit())
    return edge.json_response(result.model_dump(mode="json"), 200)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Serve one job at the edge."""
    return edge.serve("renew", request, run, message="renew.job")
