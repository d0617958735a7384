"""Cloud Function ``sync``: the Cloud Tasks target that syncs one calendar (``services.sync``).

Validates the task body into a ``SyncCommand`` and runs the sync; ``calsync.http.edge`` binds the log
context, writes the summary line and answers errors (a final one from Cloud Tasks is acknowledged
with 200 ``{"dropped": code}``; a retryable one is 429/503 with ``Retry-After``). A calendar another
run holds is answered 429 with ``Retry-After`` = the rest of its lease (see ``services.lease``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict

from calsync import errors
from calsync.bootstrap import Container
from calsync.http import edge
from calsync.http.configs import sync_config
from calsync.services.sync import SyncCommand, sync_calendar

SUMMARY_FIELDS = ("mode", "pages", "fetched", "written", "unchanged", "tombstoned", "conflicts_opened", "status")


class SyncBody(BaseModel):
    """The task body."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    calendar_id: str
    reason: Literal["webhook", "poll", "publish", "admin", "channel_created", "continuation"]
    requested_at: datetime | None = None


def run(container: Container, request: flask.Request) -> flask.Response:
    """Sync the calendar named in the task body and answer with the run's summary."""
    if request.method != "POST":
        raise errors.MethodNotAllowed("POST a JSON task body")
    data = request.get_json(force=True, silent=True) or {}
    body = edge.parse(SyncBody.model_validate, data, "malformed sync request")
    summary = edge.current_summary()
    summary.update(calendar_key=body.calendar_id, reason=body.reason)
    command = SyncCommand(
        calendar_key=body.calendar_id,
        reason=body.reason,
        requested_at=body.requested_at,
        task_name=request.headers.get(edge.TASK_HEADER),
    )
    result = sync_calendar(
        command,
        api=container.calendar_api,
        store=container.store,
        queue=container.queue,
        clock=container.clock,
        config=sync_config(container.settings),
    )
    if result.retry_after_s is not None:
        # Held by another run: Cloud Tasks keeps the task and retries it after the lease (pending is marked).
        raise errors.LockHeld(f"calendar {body.calendar_id} is being synced", retry_after_s=result.retry_after_s)
    answer = result.to_dict()
    summary.update({k: answer[k] for k in SUMMARY_FIELDS}, continued=int(result.continued))
    summary["conflicts_resolved"] = result.conflicts_resolved
    return edge.json_response(answer, 200)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Serve one sync task at the edge."""
    return edge.serve("sync", request, run, message="sync.invocation")
