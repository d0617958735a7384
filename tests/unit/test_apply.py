"""Apply on the fakes: confirmations, staleness, paced named tasks, retries, 409/412 handling."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from calsync import errors
from calsync.model import TAG_SOURCE
from calsync.ports.queries import ConflictQuery
from calsync.services.apply import ApplyCommand, plan_progress
from calsync.services.plan import CONTROL_KEY, PlanCommand, event_id, make_plan, professional_key
from calsync.services.writers import PACED_RATE_PER_S
from tests.unit.publish_helpers import CLINIC, CONFIG, NOW, World, allocation, run_tasks, world

WEEK = (NOW, NOW + timedelta(days=7))


def _plan(w: World, clear: bool = False) -> dict[str, Any]:
    return make_plan(PlanCommand(CLINIC, *WEEK, clear_future=clear), store=w.store, clock=w.clock, config=CONFIG)


def _apply(w: World, plan: dict[str, Any], **kw: Any) -> dict[str, Any]:
    cmd = ApplyCommand(plan.plan_id, kw.get("confirm", plan.confirm_token), kw.get("clear"))
    return w.publishing().start_apply(cmd)


def _google_ids(w: World, gid: str) -> list[str]:
    return sorted(e for e, body in w.api.calendars[gid].items() if body.get("status") != "cancelled")


def test_tokens_are_required() -> None:
    w = world()
    w.store.put_allocations([allocation(1)])
    plan = _plan(w, clear=True)
    with pytest.raises(errors.InvalidRequest):
        _apply(w, plan, confirm="wrong")
    with pytest.raises(errors.InvalidRequest):
        _apply(w, plan)  # clear_future without the second confirmation
    assert w.queue.tasks == []
    assert w.api.calls["insert_event"] == 0
    _apply(w, plan, clear=plan.confirm_clear_future_token)
    assert len(w.queue.tasks) == 3


def test_apply_publishes_paced_named_tasks_and_again_is_harmless() -> None:
    w = world(2, 2)
    w.store.put_allocations([allocation(i, hours=24 + i, prof=i % 2, room=i % 2) for i in range(120)])
    plan = _plan(w)
    started = _apply(w, plan)
    assert (started.status, started.total) == ("running", 360)
    tasks = list(w.queue.tasks)
    names = [t.name for t in tasks]
    assert len(set(names)) == len(names)
    # Paced by calls: each chunk waits until the calls scheduled before it had their share of the quota.
    scheduled = sorted((t.schedule_time, _chunk_calls(w, t)) for t in tasks if t.schedule_time)
    assert len(scheduled) == len(tasks)
    for (a, calls), (b, _) in itertools.pairwise(scheduled):
        assert (b - a).total_seconds() >= calls / PACED_RATE_PER_S - 1e-6
    span = (scheduled[-1][0] - scheduled[0][0]).total_seconds()
    assert span < 360 / PACED_RATE_PER_S  # about the quota-bound minimum, not one slot per chunk
    assert all(t.url.endswith("/publish/tasks/apply") for t in tasks)
    run_tasks(w)
    progress = plan_progress(plan.plan_id, store=w.store)
    assert (progress.status, progress.done, progress.errors) == ("done", 360, [])
    assert len(_google_ids(w, "prof0@group")) == 60
    inserts = w.api.calls["insert_event"]
    for task in tasks:  # a duplicated delivery of every task
        p = task.payload
        w.publishing().run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
    assert w.api.calls["insert_event"] == inserts
    assert _apply(w, plan).status == "done"
    assert len(_google_ids(w, "control@group.calendar.google.com")) == 120


def test_crashed_partial_chunk_retried_gives_no_duplicates() -> None:
    w = world(1, 1)
    w.store.put_allocations([allocation(i, hours=24 + i) for i in range(10)])
    plan = _plan(w)
    _apply(w, plan)
    task = w.queue.pop_all()[0]
    p = task.payload
    w.api.fail_next("insert_event", errors.RateLimited("slow", status=403, reason="userRateLimitExceeded"), times=4)
    with pytest.raises(errors.RateLimited):
        w.publishing().run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
    # The crashed task lost its mirror writes: a retry meets 409 duplicate and verifies by tags.
    key = p["calendar_key"]
    w.store.events = {k: v for k, v in w.store.events.items() if k[0] != key}
    w.publishing().run_chunk(p["plan_id"], key, p["chunk"])
    gid = w.store.get_calendar(key).google_calendar_id  # type: ignore[union-attr]
    assert len(_google_ids(w, gid)) == 10
    mirrored = w.store.get_events(key, [event_id("dev", f"a{i}", key) for i in range(10)])
    assert len(mirrored) == 10
    assert all(m.published and m.published.etag == m.etag for m in mirrored.values())


def test_person_edit_between_plan_and_apply_is_skipped_and_a_conflict_recorded() -> None:
    w = world(1, 1)
    w.store.put_allocations([allocation(1)])
    _apply(w, _plan(w))
    run_tasks(w)
    w.store.put_allocations([allocation(1, hours=48).model_copy(update={"revision": 2})])
    plan = _plan(w)
    assert plan.totals.update == 3
    key = professional_key(CLINIC, "p0")
    eid = event_id("dev", "a1", key)
    moved = (NOW + timedelta(hours=30)).isoformat()
    w.api.person_edit(
        "prof0@group", eid, start={"dateTime": moved}, end={"dateTime": (NOW + timedelta(hours=31)).isoformat()}
    )
    _apply(w, plan)
    run_tasks(w)
    progress = plan_progress(plan.plan_id, store=w.store)
    row = next(c for c in progress.calendars if c.calendar_id == key)
    assert (row.written, row.skipped) == (0, 1)
    assert w.api.calendars["prof0@group"][eid]["start"]["dateTime"] == moved  # not overwritten
    conflicts, _ = w.store.list_conflicts(ConflictQuery(key, status="open", page_size=10, page_token=None))
    assert [c.kind for c in conflicts] == ["moved_in_google"]
    assert w.api.calendars["prof0@group"][eid]["extendedProperties"]["private"][TAG_SOURCE] == "agendador"


def test_stale_plan_is_refused_and_nothing_written() -> None:
    w = world(1, 1)
    w.store.put_allocations([allocation(1)])
    plan = _plan(w)
    w.store.put_allocations([allocation(1, hours=50)])
    with pytest.raises(errors.StaleState):
        _apply(w, plan)
    assert w.queue.tasks == []
    assert w.api.calls["insert_event"] == 0


def test_foreign_environment_calendar_is_refused() -> None:
    w = world(1, 1)
    w.store.put_allocations([allocation(1)])
    original = w.api.get_calendar

    def tagged(calendar_id: str) -> Any:
        found = dict(original(calendar_id))
        if calendar_id == "control@group.calendar.google.com":
            found["description"] = "shared calsync-env=prod"
        return found

    w.api.get_calendar = tagged  # type: ignore[method-assign]
    plan = _plan(w)
    _apply(w, plan)
    assert {t.payload["calendar_key"] for t in w.queue.tasks} == {professional_key(CLINIC, "p0"), "c1-room-r0"}
    run_tasks(w)
    progress = plan_progress(plan.plan_id, store=w.store)
    assert progress.status == "failed"
    assert CONTROL_KEY in progress.errors[0].code
    assert _google_ids(w, "control@group.calendar.google.com") == []


def _chunk_calls(w: Any, task: Any) -> int:
    progress = w.store.get_plan_progress(task.payload["plan_id"], task.payload["calendar_key"], task.payload["chunk"])
    assert progress is not None
    return int(progress.total)


def test_concurrent_publishes_share_one_paced_timeline() -> None:
    """Two clinics applied at once queue behind each other instead of doubling the rate."""
    w = world(2, 2)
    w.store.put_allocations([allocation(i, hours=24 + i, prof=i % 2, room=i % 2) for i in range(40)])
    first = _plan(w)
    _apply(w, first)
    first_tasks = list(w.queue.tasks)
    first_calls = sum(_chunk_calls(w, t) for t in first_tasks)
    first_start = min(t.schedule_time for t in first_tasks if t.schedule_time)
    w.store.put_allocations([allocation(100 + i, hours=24 + i, prof=i % 2, room=i % 2) for i in range(10)])
    second = _plan(w)
    _apply(w, second)
    second_tasks = [t for t in w.queue.tasks if t.payload["plan_id"] == second.plan_id]
    assert second_tasks
    second_start = min(t.schedule_time for t in second_tasks if t.schedule_time)
    assert (second_start - first_start).total_seconds() >= first_calls / PACED_RATE_PER_S - 1e-6


def test_reapplying_a_running_plan_enqueues_its_unfinished_chunks_under_new_names() -> None:
    """Tasks lost for good (retries exhausted): applying again must enqueue something Cloud Tasks accepts."""
    w = world(2, 2)
    w.store.put_allocations([allocation(i, hours=24 + i, prof=i % 2, room=i % 2) for i in range(10)])
    plan = _plan(w)
    _apply(w, plan)
    lost = w.queue.pop_all()  # delivered to nobody; their names stay reserved, as in Cloud Tasks
    assert lost
    again = _apply(w, plan)
    assert again.status == "running"
    retried = list(w.queue.tasks)
    assert len(retried) == len(lost)
    assert {t.name for t in retried}.isdisjoint({t.name for t in lost})
    run_tasks(w)
    progress = plan_progress(plan.plan_id, store=w.store)
    assert (progress.status, progress.errors) == ("done", [])
    assert len(_google_ids(w, "prof0@group")) == 5
