"""The Cloud Tasks target of publishing: run one chunk of a running plan (``policy="task"``).

A final error from Cloud Tasks is acknowledged with 200 ``dropped`` (``calsync.http.edge``); a chunk
with calls left to retry answers 429 with ``Retry-After``, so the queue tries it again; a chunk whose
writer is locked (Google's read-only mode, for hours) is put back as a new task at the lock's end and
acknowledged with 200 ``waiting_until``, spending none of the queue's attempts.
"""

from __future__ import annotations

from flask_openapi3.blueprint import APIBlueprint

from calsync.bootstrap import get_container
from calsync.http.auth import operation
from calsync.http.configs import provisioning, publish_config, publishing
from calsync.http.docs import blueprint_options
from calsync.http.schemas import ApplyTaskBody, ProvisionTaskBody
from calsync.results import ChunkDone, Provisioned
from calsync.services import provision

api = APIBlueprint("tasks", __name__, **blueprint_options("tasks"))


@api.post("/publish/tasks/apply", responses={200: ChunkDone}, summary="Run one chunk of a plan (Cloud Tasks)")
@operation("task", audit=True)
def apply_task(body: ApplyTaskBody) -> tuple[ChunkDone, int]:
    """Run one chunk of a running plan (the Cloud Tasks target; idempotent)."""
    done = publishing(get_container()).run_chunk(body.plan_id, body.calendar_key, body.chunk)
    return done, 200


@api.post(
    "/provision/tasks/calendar", responses={200: Provisioned}, summary="Create one calendar of a clinic (Cloud Tasks)"
)
@operation("task", audit=True)
def provision_task(body: ProvisionTaskBody) -> tuple[Provisioned, int]:
    """Create, share and watch one calendar as its writer (the Cloud Tasks target; idempotent)."""
    c = get_container()
    done = provision.provision_calendar(
        body.clinic_id,
        body.calendar_key,
        body.writer,
        provisioning(c, c.api_for_clinic(body.clinic_id)),
        publish_config(c.settings),
    )
    return done, 200
