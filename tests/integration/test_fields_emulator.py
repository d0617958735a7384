"""Fields people own, ``accept_google``, write-time guards and a person's delete racing an apply — on the
real clients: GoogleCalendarApi → Calendar emulator, FirestoreStateStore → Google's Firestore emulator.

People act through the emulator's REST API as themselves (``X-Emulator-User``). The services run on a
``FrozenClock`` set once from the system clock: chunks "run late" by moving that clock, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import requests

from calsync.bootstrap import sync_config
from calsync.model import Allocation
from calsync.ports import BatchOp, BatchResult
from calsync.ports.queries import ConflictQuery
from calsync.services.apply import plan_progress
from calsync.services.conflicts import resolve_conflict
from calsync.services.plan import PlanCommand, event_id, make_plan, professional_key, room_key
from calsync.services.sync import SyncCommand, sync_calendar
from calsync.testing import FrozenClock
from calsync.testing.settings import local_settings
from tests.integration.test_publish_emulator import CLINIC, Env, drain, plan_and_apply, setup_clinic

PERSON = "p0@clinic.test"
PATIENT = "patient@clinic.test"
SYNC = sync_config(local_settings(lock_lease_s=60, display_time_zone="UTC"))


@pytest.fixture
def env(calendar_base: str, firestore_client: Any) -> Env:
    built = setup_clinic(calendar_base, firestore_client, professionals=1, rooms=1)
    built.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000})
    return replace(built, clock=FrozenClock(built.clock.now()))  # type: ignore[arg-type]


def allocation(env: Env, *, start_in_min: float = 180, **changes: Any) -> Allocation:
    start = env.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=start_in_min)
    base = Allocation(
        id="a1",
        clinic_id=CLINIC,
        professional_id="p0",
        room_id="r0",
        start=start,
        end=start + timedelta(minutes=30),
        status="reviewed",
        title="consulta",
        revision=1,
    )
    return base.model_copy(update=changes)


def changed(a: Allocation, **changes: Any) -> Allocation:
    """agendador's next revision of an allocation."""
    return a.model_copy(update={"revision": a.revision + 1, **changes})


def publish(env: Env, *allocations: Allocation) -> Any:
    env.store.put_allocations(list(allocations))
    plan = plan_and_apply(env)
    drain(env)
    return plan


def person(env: Env, method: str, key: str, eid: str, body: Any = None, **params: Any) -> dict[str, Any]:
    """A professional's own call on their calendar (the emulator answers as Google would)."""
    answer = requests.request(
        method,
        f"{env.base}/calendar/v3/calendars/{env.gids[key]}/events/{eid}",
        json=body,
        params=params,
        headers={"X-Emulator-User": PERSON},
        timeout=10,
    )
    assert answer.status_code < 300, answer.text
    return dict(answer.json()) if answer.content else {}


def sync(env: Env, key: str) -> None:
    sync_calendar(
        SyncCommand(calendar_key=key, reason="poll"),  # type: ignore[arg-type]
        api=env.api,
        store=env.store,
        queue=env.queue,
        clock=env.clock,
        config=SYNC,
    )


def open_conflicts(env: Env, key: str) -> list[tuple[str, str]]:
    found, _ = env.store.list_conflicts(ConflictQuery(key, status="open", page_size=50, page_token=None))
    return sorted((c.event_id, c.kind) for c in found)


def google(env: Env, key: str, eid: str) -> dict[str, Any]:
    return env.api.get_event(env.gids[key], eid).model_dump(by_alias=True, exclude_none=True, mode="json")


PROF = professional_key(CLINIC, "p0")
ROOM = room_key(CLINIC, "r0")
PEOPLES_FIELDS = {
    "description": "bring the x-rays",
    "location": "Sala 3, 2nd floor",
    "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 45}]},
    "colorId": "11",
    "attachments": [{"fileUrl": "https://drive.google.com/file/d/abc", "title": "exam.pdf"}],
}


def accept_google(env: Env, key: str) -> None:
    """An admin settles the (single) open conflict of ``key`` with ``accept_google``."""
    [conflict] = env.store.list_conflicts(ConflictQuery(key, status="open", page_size=5, page_token=None))[0]
    resolve_conflict(conflict.id, "accept_google", api=env.api, store=env.store, clock=env.clock, config=env.config)


@pytest.mark.parametrize("synced_before_plan", [True, False], ids=["synced", "not-synced"])
def test_fields_people_own_survive_a_move_and_attendees_keep_their_answer(env: Env, synced_before_plan: bool) -> None:
    first = allocation(env)
    publish(env, first)
    eid = event_id("dev", "a1", PROF)
    # The professional invites the patient, who accepts; agendador adopts the guest (accept_google).
    person(env, "PATCH", PROF, eid, {"attendees": [{"email": PATIENT, "responseStatus": "accepted"}]})
    sync(env, PROF)
    accept_google(env, PROF)
    first = changed(first, attendees=[PATIENT])
    publish(env, first)
    meet = {"createRequest": {"requestId": "meet-1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}
    person(
        env,
        "PATCH",
        PROF,
        eid,
        {**PEOPLES_FIELDS, "conferenceData": meet},
        conferenceDataVersion=1,
        supportsAttachments="true",
    )
    edited = google(env, PROF, eid)
    assert edited["hangoutLink"]
    if synced_before_plan:
        sync(env, PROF)
    assert open_conflicts(env, PROF) == []  # people's own fields: no conflict

    moved = changed(first, start=first.start + timedelta(hours=1), end=first.end + timedelta(hours=1))
    plan = publish(env, moved)

    assert plan.totals.update == 3
    after = google(env, PROF, eid)
    assert after["start"]["dateTime"].startswith(moved.start.strftime("%Y-%m-%dT%H:%M"))
    for name, value in PEOPLES_FIELDS.items():
        assert after[name] == value, name
    assert after["hangoutLink"] == edited["hangoutLink"]
    assert after["conferenceData"] == edited["conferenceData"]
    assert after["attendees"] == [{"email": PATIENT, "responseStatus": "accepted"}]
    sync(env, PROF)
    assert open_conflicts(env, PROF) == []
    progress = plan_progress(plan.plan_id, store=env.store)
    assert (progress.status, progress.done, progress.total) == ("done", 3, 3)


@pytest.mark.parametrize("synced_before_plan", [True, False], ids=["synced", "not-synced"])
def test_a_title_a_person_changed_is_a_conflict_and_is_not_overwritten(env: Env, synced_before_plan: bool) -> None:
    first = allocation(env)
    publish(env, first)
    eid = event_id("dev", "a1", PROF)
    person(env, "PATCH", PROF, eid, {"summary": "Dr. Ana: retorno"})
    if synced_before_plan:
        sync(env, PROF)
        assert open_conflicts(env, PROF) == [(eid, "title_changed")]

    plan = publish(env, changed(first, start=first.start + timedelta(hours=1), end=first.end + timedelta(hours=1)))

    assert google(env, PROF, eid)["summary"] == "Dr. Ana: retorno"
    assert google(env, PROF, eid)["start"]["dateTime"].startswith(first.start.strftime("%Y-%m-%dT%H:%M"))
    sync(env, PROF)
    assert open_conflicts(env, PROF) == [(eid, "title_changed")]
    rows = {c.calendar_id: c.skip_reasons for c in plan_progress(plan.plan_id, store=env.store).calendars}
    if synced_before_plan:  # the planner skipped it: no chunk on the professional's calendar
        assert PROF not in rows
    else:  # planned as an update; the chunk found the person's title
        assert rows[PROF] == {"open_conflict": 1}


def test_accept_google_returns_control_so_the_next_change_is_published(env: Env) -> None:
    first = allocation(env)
    publish(env, first)
    eid = event_id("dev", "a1", PROF)
    later = first.start + timedelta(hours=2)
    person(
        env,
        "PATCH",
        PROF,
        eid,
        {"start": {"dateTime": later.isoformat()}, "end": {"dateTime": (later + timedelta(minutes=30)).isoformat()}},
    )
    sync(env, PROF)
    assert open_conflicts(env, PROF) == [(eid, "moved_in_google")]
    accept_google(env, PROF)
    assert env.store.get_events(PROF, [eid])[eid].source_of_truth == "backend"

    # agendador adjusts the allocation as suggested, then moves it again: both are published.
    adjusted = changed(first, start=later + timedelta(hours=1), end=later + timedelta(hours=1, minutes=30))
    plan = publish(env, adjusted)

    assert not any(i.action == "skip" for c in plan.calendars for i in c.items)
    assert google(env, PROF, eid)["start"]["dateTime"].startswith(adjusted.start.strftime("%Y-%m-%dT%H:%M"))
    sync(env, PROF)
    assert open_conflicts(env, PROF) == []


@pytest.mark.parametrize("what", ["create", "move", "cancel"])
def test_a_chunk_that_runs_after_the_start_writes_nothing(env: Env, what: str) -> None:
    first = allocation(env, start_in_min=20)
    if what != "create":
        publish(env, first)
    before = {key: google(env, key, event_id("dev", "a1", key)) for key in (PROF, ROOM)} if what != "create" else {}
    later = {
        "create": first,
        "move": changed(first, start=first.start + timedelta(minutes=30), end=first.end + timedelta(minutes=30)),
        "cancel": changed(first, status="cancelled"),
    }[what]
    env.store.put_allocations([later])
    plan = plan_and_apply(env)
    assert sum(c.create + c.update + c.delete for c in plan.calendars) == 3
    env.clock.advance(21 * 60)  # the chunks waited (pacing, retries) until the appointment began
    drain(env)

    for key in (PROF, ROOM):
        eid = event_id("dev", "a1", key)
        if what == "create":
            assert eid not in env.google_events(key)
        else:
            assert google(env, key, eid)["etag"] == before[key]["etag"]
    progress = plan_progress(plan.plan_id, store=env.store)
    assert progress.status == "done"
    assert {c.calendar_id: c.skip_reasons for c in progress.calendars if c.calendar_id in (PROF, ROOM)} == {
        PROF: {"past_event": 1},
        ROOM: {"past_event": 1},
    }


class PersonBetweenReadAndWrite:
    """The Calendar API as the chunk sees it; ``act`` runs once, right before the chunk's write batch."""

    def __init__(self, inner: Any, act: Callable[[], None]) -> None:
        self.inner = inner
        self.act: Callable[[], None] | None = act

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        if self.act is not None and any(op.kind != "get" for op in ops):
            act, self.act = self.act, None
            act()
        return list(self.inner.execute_batch(ops))


@pytest.mark.parametrize("order", ["before-chunk", "synced-before-chunk", "between-read-and-delete"])
def test_a_person_deleting_while_the_allocation_is_cancelled_is_recorded(env: Env, order: str) -> None:
    """Seed 84: insert ok → update ok (If-Match) → the person deletes → our delete → sync, in each order."""
    first = allocation(env)
    publish(env, first)
    moved = changed(first, start=first.start + timedelta(hours=1), end=first.end + timedelta(hours=1))
    publish(env, moved)
    eid = event_id("dev", "a1", PROF)

    def person_deletes() -> None:
        person(env, "DELETE", PROF, eid)

    env.store.put_allocations([changed(moved, status="cancelled")])
    plan = plan_and_apply(env)
    assert plan.totals.delete == 3
    api: Any = env.api
    if order == "between-read-and-delete":
        api = PersonBetweenReadAndWrite(env.api, person_deletes)
    else:
        person_deletes()
        if order == "synced-before-chunk":
            sync(env, PROF)
    for task in env.queue.pop_all():
        p = task.payload
        env.publishing(api=api).run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
    sync(env, PROF)

    assert open_conflicts(env, PROF) == [(eid, "deleted_in_google")]
    row = next(c for c in plan_progress(plan.plan_id, store=env.store).calendars if c.calendar_id == PROF)
    assert row.skip_reasons == {"open_conflict": 1}
    assert google(env, ROOM, event_id("dev", "a1", ROOM))["status"] == "cancelled"  # our deletes elsewhere
    again = make_plan(
        PlanCommand(CLINIC, env.clock.now() - timedelta(days=1), env.clock.now() + timedelta(days=7)),
        store=env.store,
        clock=env.clock,
        config=env.config,
    )
    assert again.totals.model_dump() == {"create": 0, "update": 0, "delete": 0, "skip": 0}


@pytest.mark.parametrize("synced_between", [False, True], ids=["rerun-first", "sync-first"])
def test_a_rerun_after_a_crash_recognises_its_own_delete(env: Env, synced_between: bool) -> None:
    """Chaos seed 4: the delete reached Google, the task died; a sync may mirror the tombstone first."""
    first = allocation(env)
    publish(env, first)
    env.store.put_allocations([changed(first, status="cancelled")])
    plan = plan_and_apply(env)

    class CrashAfterWrite(PersonBetweenReadAndWrite):
        def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
            out = list(self.inner.execute_batch(ops))
            if any(op.kind == "delete" for op in ops):
                raise RuntimeError("the task died after its batch reached Google")
            return out

    tasks = env.queue.pop_all()
    for task in tasks:
        p = task.payload
        with pytest.raises(RuntimeError):
            env.publishing(api=CrashAfterWrite(env.api, lambda: None)).run_chunk(
                p["plan_id"], p["calendar_key"], p["chunk"]
            )
    if synced_between:
        for key in {t.payload["calendar_key"] for t in tasks}:
            sync(env, key)
    for task in tasks:  # Cloud Tasks delivers it again
        p = task.payload
        env.publishing().run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
    sync(env, PROF)

    progress = plan_progress(plan.plan_id, store=env.store)
    assert (progress.status, progress.done, progress.errors) == ("done", 3, [])
    assert all(not c.skip_reasons for c in progress.calendars)
    assert open_conflicts(env, PROF) == []
