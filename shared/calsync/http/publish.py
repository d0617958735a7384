"""Admin routes of publishing: plan (dry run), apply a confirmed plan, its progress."""

from __future__ import annotations

from flask_openapi3.blueprint import APIBlueprint

from calsync.bootstrap import get_container
from calsync.http.auth import operation
from calsync.http.configs import publish_config, publish_store, publishing
from calsync.http.docs import blueprint_options
from calsync.http.schemas import ApplyBody, PlanBody, PlanPath
from calsync.results import PlanAnswer, ProgressAnswer
from calsync.services import apply as apply_service
from calsync.services import plan

api = APIBlueprint("publish", __name__, **blueprint_options("publish"))


@api.post("/publish/plan", responses={201: PlanAnswer}, summary="Plan a publish (dry run)")
@operation(audit=True)
def post_plan(body: PlanBody) -> tuple[PlanAnswer, int]:
    """Plan a publish (dry run) and store it; the answer carries the confirmation tokens."""
    c = get_container()
    command = plan.PlanCommand(body.clinic_id, body.time_min, body.time_max, body.clear_future)
    planned = plan.make_plan(command, store=publish_store(c), clock=c.clock, config=publish_config(c.settings))
    return planned, 201


@api.post("/publish/apply", responses={202: ProgressAnswer}, summary="Apply a confirmed plan")
@operation(audit=True)
def post_apply(body: ApplyBody) -> tuple[ProgressAnswer, int]:
    """Confirm a plan and enqueue its paced tasks."""
    c = get_container()
    command = apply_service.ApplyCommand(body.plan_id, body.confirm, body.confirm_clear_future)
    progress = publishing(c).start_apply(command)
    return progress, 202


@api.get("/publish/<plan_id>", responses={200: ProgressAnswer}, summary="Progress of a plan")
@operation()
def get_progress(path: PlanPath) -> tuple[ProgressAnswer, int]:
    """Progress of a plan."""
    progress = apply_service.plan_progress(path.plan_id, store=publish_store(get_container()))
    return progress, 200
