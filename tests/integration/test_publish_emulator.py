"""Publish end to end on the real clients: GoogleCalendarApi → Calendar emulator, FirestoreStateStore →
Google's Firestore emulator. Apply chunks run in-process in ``schedule_time`` order (time scaled down,
with the emulator's quota window scaled the same way), so the pacing is exercised against the real
per-user quota. Figures are printed with ``-s``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from calsync import errors
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.adapters.google_calendar import GoogleCalendarApi, RetryPolicy
from calsync.bootstrap import SystemClock, publish_config
from calsync.model import Allocation, CalendarRecord, Professional, Room
from calsync.ports import CalendarApi, ListEvents
from calsync.ports.queries import ConflictQuery
from calsync.services.apply import ApplyCommand, Publishing, plan_progress
from calsync.services.plan import (
    CONTROL_KEY,
    PlanCommand,
    PublishConfig,
    event_id,
    make_plan,
    professional_key,
    room_key,
)
from calsync.testing import RecordingTaskQueue
from calsync.testing.settings import local_settings

CLINIC = "c1"
# The emulator's "minute" lasts 60 / SCALE seconds; the pacing's schedule is replayed SCALE times faster.
SCALE = 20.0


# The clock the services under test run on; the tests take "now" from it too, never a second reading.
CLOCK = SystemClock()


@dataclass
class Env:
    base: str
    api: GoogleCalendarApi
    seeder: GoogleCalendarApi
    store: FirestoreStateStore
    queue: RecordingTaskQueue
    clock: SystemClock
    config: PublishConfig
    gids: dict[str, str]

    def publishing(self, api: CalendarApi | None = None) -> Publishing:
        """Applying plans over this environment's emulator client (or ``api``) and Firestore."""
        return Publishing(self.store, api or self.api, self.queue, self.clock, self.config)

    def control(self, path: str, body: Any = None, method: str = "POST") -> Any:
        response = requests.request(method, f"{self.base}/_emulator/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def google_events(self, key: str) -> dict[str, dict[str, Any]]:
        """Every event (any status) of a calendar, by id, read through the real client."""
        out: dict[str, dict[str, Any]] = {}
        token = None
        now = self.clock.now()
        while True:
            page = self.seeder.list_events(
                ListEvents(
                    self.gids[key],
                    page_token=token,
                    time_min=now - timedelta(days=30),
                    time_max=now + timedelta(days=30),
                    show_deleted=True,
                )
            )
            out.update({e.id: e.model_dump(by_alias=True) for e in page.items})
            token = page.next_page_token
            if token is None:
                return out


def setup_clinic(env_base: str, firestore_client: Any, professionals: int, rooms: int) -> Env:
    api = GoogleCalendarApi.for_emulator(env_base, retry=RetryPolicy(max_attempts=6, max_total_s=30.0))
    seeder = GoogleCalendarApi.for_emulator(env_base, batch_size=1000)
    store = FirestoreStateStore(firestore_client, environment="dev")
    control = seeder.insert_calendar("Control", time_zone="UTC")
    store.put_calendar(CalendarRecord(key=CONTROL_KEY, google_calendar_id=control, kind="control"))
    gids = {CONTROL_KEY: control}
    profs = [
        Professional(clinic_id=CLINIC, id=f"p{i}", name=f"P{i}", email=f"p{i}@clinic.test")
        for i in range(professionals)
    ]
    store.replace_professionals(CLINIC, profs)
    store.replace_rooms(CLINIC, [Room(clinic_id=CLINIC, id=f"r{i}", name=f"R{i}") for i in range(rooms)])
    for kind, ids, key_of in (
        ("professional", [p.id for p in profs], professional_key),
        ("room", [f"r{i}" for i in range(rooms)], room_key),
    ):
        for owner in ids:
            gid = seeder.insert_calendar(owner, time_zone="UTC")
            key = key_of(CLINIC, owner)
            store.put_calendar(
                CalendarRecord(
                    key=key,
                    google_calendar_id=gid,
                    kind=kind,
                    clinic_id=CLINIC,  # type: ignore[arg-type]
                    owner_id=owner,
                )
            )
            if kind == "professional":
                seeder.insert_acl(gid, email=f"{owner}@clinic.test", role="writer")
            gids[key] = gid
    settings = local_settings(control_calendar_id=control, publish_url="http://127.0.0.1:1", display_time_zone="UTC")
    config = publish_config(settings)
    return Env(env_base, api, seeder, store, RecordingTaskQueue(), CLOCK, config, gids)


@pytest.fixture
def base(calendar_base: str) -> str:
    return calendar_base


def allocations(n: int, professionals: int, rooms: int, *, start_in_h: float = 2) -> list[Allocation]:
    t0 = CLOCK.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=start_in_h)
    out = []
    for i in range(n):
        start = t0 + timedelta(minutes=30 * (i // (professionals)))
        out.append(
            Allocation(
                id=f"a{i:04d}",
                clinic_id=CLINIC,
                professional_id=f"p{i % professionals}",
                room_id=f"r{i % rooms}",
                start=start,
                end=start + timedelta(minutes=30),
                status="reviewed",
                title=f"consulta {i}",
                revision=1,
            )
        )
    return out


def plan_and_apply(env: Env, days: int = 7, clear: bool = False) -> dict[str, Any]:
    now = env.clock.now()
    plan = make_plan(
        PlanCommand(CLINIC, now - timedelta(days=1), now + timedelta(days=days), clear),
        store=env.store,
        clock=env.clock,
        config=env.config,
    )
    env.publishing().start_apply(ApplyCommand(plan.plan_id, plan.confirm_token, plan.confirm_clear_future_token))
    return plan


def drain(env: Env, *, crash_first: bool = False) -> dict[str, int]:
    """Run queued chunks in schedule order, SCALE times faster than scheduled; retry failed ones."""
    figures = {"tasks": 0, "retries": 0}
    t0 = time.monotonic()
    first = None
    while env.queue.tasks:
        tasks = sorted(env.queue.pop_all(), key=lambda t: t.schedule_time or datetime.min.replace(tzinfo=UTC))
        for task in tasks:
            when = task.schedule_time or env.clock.now()
            first = first or when
            wait = (when - first).total_seconds() / SCALE - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
            p = task.payload
            figures["tasks"] += 1
            try:
                env.publishing().run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
            except errors.CalsyncError:
                figures["retries"] += 1
                env.queue.tasks.append(task)
    return figures


def test_publish_a_week_for_a_clinic_under_the_quota(base: str, firestore_client: Any) -> None:
    env = setup_clinic(base, firestore_client, professionals=20, rooms=8)
    env.control("quota", {"per_user_per_minute": 600, "window_s": 60 / SCALE, "per_project_per_minute": 10_000})
    env.store.put_allocations(allocations(1000, 20, 8))
    env.control("stats/reset")
    started = time.monotonic()
    plan = plan_and_apply(env)
    assert plan.totals.model_dump() == {"create": 3000, "update": 0, "delete": 0, "skip": 0}
    figures = drain(env)
    elapsed = time.monotonic() - started
    progress = plan_progress(plan.plan_id, store=env.store)
    assert (progress.status, progress.done, progress.total, progress.errors) == ("done", 3000, 3000, [])
    stats = env.control("stats", method="GET")
    for key in (professional_key(CLINIC, "p3"), room_key(CLINIC, "r5"), CONTROL_KEY):
        events = env.google_events(key)
        expected = {
            event_id("dev", a.id, key)
            for a in allocations(1000, 20, 8)
            if key in (professional_key(CLINIC, a.professional_id), room_key(CLINIC, a.room_id), CONTROL_KEY)
        }
        assert set(events) == expected
        assert all(e["extendedProperties"]["private"]["source"] == "agendador" for e in events.values())
    # Applying the same plan again and re-running every chunk: no duplicates, no new inserts.
    again = plan_and_apply(env)
    assert again.totals.create == 0
    print(
        f"\npublish 3000 events: {elapsed:.1f}s (time scaled /{SCALE}), {figures}, "
        f"quota rejections {stats.get('quota_rejections')}, requests {sum(stats['requests'].values())}"
    )


def test_person_edit_past_and_untagged_events_and_crashed_retry(base: str, firestore_client: Any) -> None:
    env = setup_clinic(base, firestore_client, professionals=1, rooms=1)
    env.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000})
    prof = professional_key(CLINIC, "p0")
    gid = env.gids[prof]
    now = env.clock.now()
    untagged = env.seeder.insert_event(
        gid,
        {
            "summary": "dentist",
            "start": {"dateTime": (now + timedelta(hours=5)).isoformat()},
            "end": {"dateTime": (now + timedelta(hours=6)).isoformat()},
        },
    )
    future = allocations(4, 1, 1, start_in_h=3)
    past = Allocation(
        id="past",
        clinic_id=CLINIC,
        professional_id="p0",
        room_id="r0",
        start=now - timedelta(hours=3),
        end=now - timedelta(hours=2),
        status="reviewed",
        title="old",
    )
    env.store.put_allocations([*future, past])
    plan = plan_and_apply(env, clear=True)
    assert {i.reason for c in plan.calendars for i in c.items if i.action == "skip"} == {"past_event"}
    # A crash after a partial batch: the first chunk runs, its mirror writes are lost, it runs again.
    task = env.queue.tasks[0]
    p = task.payload
    before = env.store.get_plan_progress(p["plan_id"], p["calendar_key"], 0)
    assert before is not None
    env.publishing().run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
    firestore_client.recursive_delete(
        firestore_client.collection("dev_calendars").document(p["calendar_key"]).collection("events")
    )
    # The crash lost the chunk's outcome (its run had been counted before the batch): it runs again.
    env.store.put_plan_progress(before.model_copy(update={"attempts": 1}))
    drain(env)
    tagged = [e for e in env.google_events(p["calendar_key"]).values() if e.get("extendedProperties")]
    assert len(tagged) == len(future)  # 0 duplicates
    # Move every allocation; a person edits one event between plan and apply (plain HTTP as that person).
    moved = [
        a.model_copy(update={"start": a.start + timedelta(hours=1), "end": a.end + timedelta(hours=1), "revision": 2})
        for a in future
    ]
    env.store.put_allocations(moved)
    eid = event_id("dev", future[0].id, prof)
    now = env.clock.now()
    plan2 = make_plan(
        PlanCommand(CLINIC, now - timedelta(days=1), now + timedelta(days=7)),
        store=env.store,
        clock=env.clock,
        config=env.config,
    )
    current = env.api.get_event(gid, eid).model_dump(by_alias=True, exclude_none=True, mode="json")
    current["summary"] = "moved by the professional"
    shifted = future[0].start + timedelta(minutes=15)
    current["start"] = {"dateTime": shifted.isoformat()}
    current["end"] = {"dateTime": (shifted + timedelta(minutes=30)).isoformat()}
    person = requests.put(
        f"{base}/calendar/v3/calendars/{gid}/events/{eid}",
        json=current,
        headers={"X-Emulator-User": "p0@clinic.test"},
        timeout=10,
    )
    assert person.status_code == 200, person.text
    env.publishing().start_apply(ApplyCommand(plan2.plan_id, plan2.confirm_token))
    drain(env)
    edited = env.api.get_event(gid, eid)
    assert edited.summary == "moved by the professional"  # not overwritten
    conflicts, _ = env.store.list_conflicts(ConflictQuery(prof, status="open", page_size=10, page_token=None))
    # Moved and retitled: two fields calsync owns, two conflicts.
    assert sorted((c.event_id, c.kind) for c in conflicts) == [(eid, "moved_in_google"), (eid, "title_changed")]
    progress = plan_progress(plan2.plan_id, store=env.store)
    row = next(c for c in progress.calendars if c.calendar_id == prof)
    assert (row.written, row.skipped) == (len(future) - 1, 1)
    # The untagged event and the past allocation were never touched.
    assert env.api.get_event(gid, untagged.id).etag == untagged.etag
    assert event_id("dev", "past", prof) not in env.google_events(prof)
