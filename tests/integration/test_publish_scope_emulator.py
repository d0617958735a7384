"""Clinic scope and reassignment on the real clients: GoogleCalendarApi → Calendar emulator,
FirestoreStateStore → Google's Firestore emulator (fixtures and helpers of ``test_publish_emulator``).

- Two clinics share the environment's control calendar: a clinic's ``clear_future`` publish changes
  none of the other clinic's events there, whether tagged with its clinic or written before the tag
  existed (schema 1), and its plan shows only its own clinic's deletes.
- A schema-1 event of the clinic's allocation is retagged in place (same deterministic id, no copy).
- Reassigning an allocation to another professional and room deletes its copies on the old calendars;
  publishing twice, re-applying the plan and delivering a chunk twice leave one copy per target.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from calsync.bootstrap import sync_config
from calsync.model import Allocation, CalendarRecord, Professional, Room
from calsync.services.apply import ApplyCommand
from calsync.services.plan import CONTROL_KEY, PlanCommand, event_id, make_plan, professional_key, room_key
from calsync.services.sync import SyncCommand, sync_calendar
from calsync.testing import RecordingTaskQueue
from calsync.testing.settings import local_settings
from tests.integration.test_publish_emulator import Env, drain, setup_clinic

OTHER = "c2"
SYNC = sync_config(local_settings(sync_url="http://127.0.0.1:1/", display_time_zone="UTC"))


def add_clinic(env: Env, clinic: str) -> None:
    """A second clinic (one professional, one room) whose allocations share the control calendar."""
    env.store.replace_professionals(clinic, [Professional(clinic_id=clinic, id="p0", name="P", email="p@c2.test")])
    env.store.replace_rooms(clinic, [Room(clinic_id=clinic, id="r0", name="R")])
    for kind, key in (("professional", professional_key(clinic, "p0")), ("room", room_key(clinic, "r0"))):
        gid = env.seeder.insert_calendar(key, time_zone="UTC")
        owner = "p0" if kind == "professional" else "r0"
        record = CalendarRecord(key=key, google_calendar_id=gid, kind=kind, clinic_id=clinic, owner_id=owner)  # type: ignore[arg-type]
        env.store.put_calendar(record)
        env.gids[key] = gid


def allocation(env: Env, clinic: str, n: int, *, prof: str = "p0", room: str = "r0", hours: float = 3) -> Allocation:
    start = env.clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours + n)
    return Allocation(
        id=f"{clinic}-a{n}",
        clinic_id=clinic,
        professional_id=prof,
        room_id=room,
        start=start,
        end=start + timedelta(minutes=30),
        status="reviewed",
        title=f"consulta {clinic} {n}",
        revision=1,
    )


def publish(env: Env, clinic: str, *, clear: bool = False) -> Any:
    """Plan and apply a week of ``clinic`` and run its chunks; the plan answer."""
    now = env.clock.now()
    plan = make_plan(
        PlanCommand(clinic, now - timedelta(days=1), now + timedelta(days=7), clear),
        store=env.store,
        clock=env.clock,
        config=env.config,
    )
    apply = ApplyCommand(plan.plan_id, plan.confirm_token, plan.confirm_clear_future_token)
    env.publishing().start_apply(apply)
    drain(env)
    return plan


def sync(env: Env, key: str) -> None:
    """One sync of a calendar (what push or polling triggers after a change)."""
    command = SyncCommand(calendar_key=key, reason="admin")
    sync_calendar(command, api=env.api, store=env.store, queue=RecordingTaskQueue(), clock=env.clock, config=SYNC)


def live(env: Env, key: str) -> dict[str, dict[str, Any]]:
    return {i: e for i, e in env.google_events(key).items() if e.get("status") != "cancelled"}


def schema1_body(env: Env, allocation: Allocation, key: str) -> dict[str, Any]:
    """An event as calsync wrote it before the clinic tag (tag schema 1)."""
    return {
        "id": event_id("dev", allocation.id, key),
        "summary": allocation.title,
        "start": {"dateTime": allocation.start.isoformat()},
        "end": {"dateTime": allocation.end.isoformat()},
        "extendedProperties": {
            "private": {"source": "agendador", "env": "dev", "allocation_id": allocation.id, "calsync_schema": "1"}
        },
    }


def test_a_clinics_clear_future_publish_leaves_the_other_clinics_control_events(
    calendar_base: str, firestore_client: Any
) -> None:
    env = setup_clinic(calendar_base, firestore_client, professionals=1, rooms=1)
    env.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000})
    add_clinic(env, OTHER)
    theirs = [allocation(env, OTHER, n) for n in range(8)]
    env.store.put_allocations(theirs)
    publish(env, OTHER)
    # One more of theirs, written before the clinic tag existed (schema 1), and one of ours likewise.
    legacy_theirs = allocation(env, OTHER, 8)
    ours = allocation(env, "c1", 0)
    env.store.put_allocations([legacy_theirs, ours])
    env.seeder.insert_event(env.gids[CONTROL_KEY], schema1_body(env, legacy_theirs, CONTROL_KEY))
    legacy_ours = env.seeder.insert_event(env.gids[CONTROL_KEY], schema1_body(env, ours, CONTROL_KEY))
    sync(env, CONTROL_KEY)
    before = live(env, CONTROL_KEY)
    their_ids = {event_id("dev", a.id, CONTROL_KEY) for a in [*theirs, legacy_theirs]}
    assert their_ids <= set(before)
    mirrored = env.store.get_events(CONTROL_KEY, sorted(their_ids))
    assert sorted({m.clinic_id for m in mirrored.values()}, key=str) == [None, OTHER]  # schema 1: no tag

    plan = publish(env, "c1", clear=True)

    after = live(env, CONTROL_KEY)
    assert {i: after[i]["etag"] for i in their_ids} == {i: before[i]["etag"] for i in their_ids}
    planned = {item.event_id for section in plan.calendars for item in section.items}
    assert not planned & their_ids  # the plan does not even list them
    assert all(set(s.deletes_by_clinic or {}) <= {"c1"} for s in plan.calendars)
    # Our schema-1 event was retagged in place: same id, clinic tag, schema 2, no second copy.
    retagged = after[legacy_ours.id]
    assert retagged["extendedProperties"]["private"] | {} == {
        "source": "agendador",
        "env": "dev",
        "allocation_id": ours.id,
        "clinic_id": "c1",
        "calsync_schema": "2",
    }
    copies = [e for e in after.values() if e["extendedProperties"]["private"].get("allocation_id") == ours.id]
    assert len(copies) == 1
    reasons = {(i.event_id, i.action, i.reason) for s in plan.calendars for i in s.items}
    assert (legacy_ours.id, "update", "tag_migration") in reasons
    # The other clinic's clear_future deletes nothing of ours either: it retags its schema-1 event and
    # creates that allocation's missing copies on its own calendars.
    sync(env, CONTROL_KEY)
    again = publish(env, OTHER, clear=True)
    assert again.totals.delete == 0
    on_control = {
        (i.event_id, i.action, i.reason) for s in again.calendars if s.calendar_id == CONTROL_KEY for i in s.items
    }
    assert on_control == {(event_id("dev", legacy_theirs.id, CONTROL_KEY), "update", "tag_migration")}
    final = live(env, CONTROL_KEY)
    assert set(final) == set(after)
    assert final[legacy_ours.id]["etag"] == retagged["etag"]


def test_reassigned_allocation_leaves_no_copy_on_its_old_calendars(calendar_base: str, firestore_client: Any) -> None:
    env = setup_clinic(calendar_base, firestore_client, professionals=2, rooms=2)
    env.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000})
    first = allocation(env, "c1", 0, prof="p0", room="r0")
    env.store.put_allocations([first])
    publish(env, "c1")
    p0, r0 = professional_key("c1", "p0"), room_key("c1", "r0")
    p1, r1 = professional_key("c1", "p1"), room_key("c1", "r1")
    assert event_id("dev", first.id, p0) in live(env, p0)

    moved = first.model_copy(update={"professional_id": "p1", "room_id": "r1", "revision": 2})
    env.store.put_allocations([moved])
    plan = publish(env, "c1")

    reasons = {(s.calendar_id, i.action, i.reason) for s in plan.calendars for i in s.items}
    assert {(p0, "delete", "reassigned"), (r0, "delete", "reassigned")} <= reasons
    for key, expected in ((p0, 0), (r0, 0), (p1, 1), (r1, 1), (CONTROL_KEY, 1)):
        copies = [e for e in live(env, key).values() if e.get("extendedProperties")]
        assert len(copies) == expected, (key, copies)
    # Publishing twice, re-applying the plan and delivering each chunk twice change nothing.
    again = publish(env, "c1")
    assert (again.totals.create, again.totals.update, again.totals.delete) == (0, 0, 0)
    env.publishing().start_apply(ApplyCommand(plan.plan_id, plan.confirm_token))
    drain(env)
    for progress in env.store.list_plan_progress(plan.plan_id):
        env.store.put_plan_progress(progress.model_copy(update={"finished": False}))
        for _ in range(2):
            env.publishing().run_chunk(plan.plan_id, progress.calendar_key, progress.chunk)
    for key, expected in ((p0, 0), (r0, 0), (p1, 1), (r1, 1), (CONTROL_KEY, 1)):
        assert len([e for e in live(env, key).values() if e.get("extendedProperties")]) == expected, key
