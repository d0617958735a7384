"""A person's series made of one of our events, on the Calendar emulator and Google's Firestore emulator.

A person who turns our event into a weekly series gives every instance our private tags. The sync
records it as one ``series_from_ours`` conflict (on the series, our event's id) however many
instances there are; a ``clear_future`` publish never writes to an instance id nor to the master,
so the series keeps every instance.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests

from calsync.model import Conflict
from calsync.ports.queries import ConflictQuery
from calsync.services.apply import ApplyCommand, plan_progress
from calsync.services.our_events import event_id, professional_key
from calsync.services.plan import PlanCommand, make_plan
from calsync.services.sync import SyncCommand, sync_calendar
from tests.integration.test_publish_emulator import (
    CLINIC,
    Env,
    allocations,
    drain,
    plan_and_apply,
    setup_clinic,
)
from tests.integration.test_sync_emulator import CONFIG

PROF = professional_key(CLINIC, "p0")
WEEKS = 4


def sync(env: Env, key: str = PROF) -> None:
    sync_calendar(
        SyncCommand(calendar_key=key, reason="poll"),
        api=env.api,
        store=env.store,
        queue=env.queue,
        clock=env.clock,
        config=CONFIG,
    )
    env.queue.tasks.clear()


def open_conflicts(env: Env) -> list[Conflict]:
    conflicts, _ = env.store.list_conflicts(ConflictQuery(PROF, status="open", page_size=50, page_token=None))
    return conflicts


def instances(env: Env, series_id: str) -> dict[str, dict[str, Any]]:
    """The series' live instances in Google (singleEvents listing), by id."""
    return {
        eid: e
        for eid, e in env.google_events(PROF).items()
        if e.get("recurringEventId") == series_id and e.get("status") != "cancelled"
    }


def make_series(env: Env, eid: str) -> None:
    """The professional turns our event into a weekly series (plain HTTP as that person)."""
    gid = env.gids[PROF]
    current = env.api.get_event(gid, eid).model_dump(by_alias=True, exclude_none=True, mode="json")
    current["recurrence"] = [f"RRULE:FREQ=WEEKLY;COUNT={WEEKS}"]
    person = requests.put(
        f"{env.base}/calendar/v3/calendars/{gid}/events/{eid}",
        json=current,
        headers={"X-Emulator-User": "p0@clinic.test"},
        timeout=10,
    )
    assert person.status_code == 200, person.text


def test_series_made_of_our_event_is_one_conflict_and_survives_clear_future(
    calendar_base: str, firestore_client: Any
) -> None:
    env = setup_clinic(calendar_base, firestore_client, professionals=1, rooms=1)
    env.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000})
    schedule = allocations(3, 1, 1, start_in_h=3)
    env.store.put_allocations(schedule)
    plan_and_apply(env)
    drain(env)
    sync(env)
    eid = event_id("dev", schedule[0].id, PROF)

    make_series(env, eid)
    sync(env)
    made = instances(env, eid)
    assert len(made) == WEEKS
    assert all(e["extendedProperties"]["private"]["allocation_id"] == schedule[0].id for e in made.values())
    conflicts = open_conflicts(env)
    assert [(c.kind, c.event_id, c.allocation_id) for c in conflicts] == [("series_from_ours", eid, schedule[0].id)]
    assert "series" in conflicts[0].suggestion

    # The allocation leaves the schedule, another one moves; a clear_future publish follows.
    moved = schedule[1].model_copy(
        update={"start": schedule[1].start + timedelta(hours=1), "end": schedule[1].end + timedelta(hours=1)}
    )
    env.store.put_allocations([schedule[0].model_copy(update={"status": "draft"}), moved])
    plan = plan_and_apply(env, days=WEEKS * 7 + 1, clear=True)
    prof_items = next(c for c in plan.calendars if c.calendar_id == PROF).items
    touched = {i.event_id: (i.action, i.reason) for i in prof_items}
    assert touched[eid] == ("skip", "open_conflict")
    assert {touched[i] for i in made} == {("skip", "series_from_ours")}
    assert touched[event_id("dev", moved.id, PROF)] == ("update", "allocation_changed")
    drain(env)

    master = env.api.get_event(env.gids[PROF], eid)
    assert master.recurrence == [f"RRULE:FREQ=WEEKLY;COUNT={WEEKS}"]
    assert set(instances(env, eid)) == set(made)  # every instance, unchanged
    sync(env)
    assert [(c.kind, c.event_id) for c in open_conflicts(env)] == [("series_from_ours", eid)]

    # A full resync (a new token) does not take the series' master for deleted: still one conflict.
    env.store.put_calendar(env.store.get_calendar(PROF).model_copy(update={"sync_token": None}))  # type: ignore[union-attr]
    sync(env)
    assert [(c.kind, c.event_id) for c in open_conflicts(env)] == [("series_from_ours", eid)]
    assert set(instances(env, eid)) == set(made)


def test_a_chunk_planned_before_the_series_was_made_leaves_it_alone(calendar_base: str, firestore_client: Any) -> None:
    env = setup_clinic(calendar_base, firestore_client, professionals=1, rooms=1)
    env.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000})
    schedule = allocations(1, 1, 1, start_in_h=3)
    env.store.put_allocations(schedule)
    plan_and_apply(env)
    drain(env)
    eid = event_id("dev", schedule[0].id, PROF)
    shift = timedelta(hours=1)
    moved = schedule[0].model_copy(update={"start": schedule[0].start + shift, "end": schedule[0].end + shift})
    env.store.put_allocations([moved])
    now = env.clock.now()
    plan = make_plan(
        PlanCommand(CLINIC, now - timedelta(days=1), now + timedelta(days=7)),
        store=env.store,
        clock=env.clock,
        config=env.config,
    )
    # The professional makes a series of the event after the plan, before its chunk runs.
    make_series(env, eid)
    env.publishing().start_apply(ApplyCommand(plan.plan_id, plan.confirm_token))
    drain(env)

    master = env.api.get_event(env.gids[PROF], eid)
    assert master.recurrence == [f"RRULE:FREQ=WEEKLY;COUNT={WEEKS}"]
    assert len(instances(env, eid)) == WEEKS
    progress = plan_progress(plan.plan_id, store=env.store)
    row = next(c for c in progress.calendars if c.calendar_id == PROF)
    assert (row.written, row.skip_reasons) == (0, {"series_from_ours": 1})
