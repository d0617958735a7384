"""What a plan keeps of people's data: a finished chunk drops its actions (titles, attendees)."""

from __future__ import annotations

from datetime import timedelta

from calsync.model import PLAN_RETENTION
from calsync.services.apply import ApplyCommand
from calsync.services.plan import PlanCommand, make_plan
from tests.unit.publish_helpers import CLINIC, CONFIG, NOW, allocation, run_tasks, world


def test_finished_chunks_keep_counts_but_not_titles_or_attendees() -> None:
    w = world(1, 1)
    w.store.put_allocations([allocation(i, hours=24 + i) for i in range(3)])
    plan = make_plan(PlanCommand(CLINIC, NOW, NOW + timedelta(days=7)), store=w.store, clock=w.clock, config=CONFIG)
    w.publishing().start_apply(ApplyCommand(plan.plan_id, plan.confirm_token, None))
    stored = w.store.list_plan_progress(plan.plan_id)
    assert stored
    assert all(p.actions for p in stored)  # an unfinished chunk needs them to run

    run_tasks(w)

    finished = w.store.list_plan_progress(plan.plan_id)
    assert [(p.finished, p.done, p.actions) for p in finished] == [(True, p.total, []) for p in finished]
    assert all(p.expire_at == p.updated_at + PLAN_RETENTION for p in finished if p.updated_at)
