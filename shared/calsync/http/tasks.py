"""The Cloud Tasks target of publishing: run one chunk of a running plan (``policy="task"``).

A final error from Cloud Tasks is acknowledged with 200 ``dropped`` (``calsync.http.edge``); a chunk
with calls left to retry answers 429 with ``Retry-After``, so the queue tries it again.
"""

from __future__ import annotations

from flask_openapi3.blueprint import APIBlueprint

from calsync.bootstrap import get_container
from calsync.http.auth import operation
from calsync.http.configs import publish_ports
from calsync.http.docs import blueprint_options
from calsync.http.schemas import ApplyTaskBody
from calsync.results import ChunkDone
from calsync.services import apply as apply_service

api = APIBlueprint("tasks", __name__, **blueprint_options("tasks"))


@api.post("/publish/tasks/apply", responses={200: ChunkDone}, summary="Run one chunk of a plan (Cloud Tasks)")
@operation("task", audit=True)
def apply_task(body: ApplyTaskBody) -> tuple[ChunkDone, int]:
    """Run one chunk of a running plan (the Cloud Tasks target; idempotent)."""
    c = get_container()
    done = apply_service.run_chunk(body.plan_id, body.calendar_key, body.chunk, **publish_ports(c), queue=c.queue)
    return done, 200
