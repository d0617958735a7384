"""The one rule for "past" at every hour: the demo's dataset, the planner and apply agree at any instant.

The dataset is built for an instant ``T``; the planner decides with its own clock ``P`` (``T``, or a few
minutes later, as in the demo where the plan is made after provisioning). At each instant the
expectations come from ``P`` — the clock the system under test used — through ``has_started``:

- the plan skips exactly the published allocations started at ``P``, once on each of their 3 calendars;
- it creates the others on their 3 calendars, and applying it writes exactly those (no event that has
  started is written), whatever the hour, the day of the week or the end of a month or year.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from calsync.model import Allocation, CalendarRecord, Professional, Room, has_started
from calsync.results import PlanAnswer
from calsync.services.allocations import upsert_allocations
from calsync.services.apply import ApplyCommand, Publishing
from calsync.services.directory import replace_professionals, replace_rooms
from calsync.services.plan import CONTROL_KEY, PlanCommand, make_plan, professional_key, room_key
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue
from devstack import demo_data
from tests.unit.publish_helpers import CONFIG, CONTROL

SMALL = demo_data.DatasetSpec(professionals_per_clinic=2, rooms_per_clinic=1, days=4, shifts_per_professional=2)
DAY = datetime(2026, 11, 24, tzinfo=demo_data.TZ)  # a Tuesday in São Paulo


def _instants() -> list[datetime]:
    """Every 30 minutes of a clinic day, the hours CI failed at, a Sunday, a month end and a year end."""
    half_hours = [DAY + timedelta(minutes=30 * n) for n in range(48)]
    local = [
        datetime(2026, 11, 24, 15, 20),  # CI failures reported at these local times
        datetime(2026, 11, 24, 18, 52),
        datetime(2026, 11, 24, 23, 57),
        datetime(2026, 11, 24, 6, 5),
        datetime(2026, 11, 29, 0, 4),  # a Sunday: the clinics are closed today
        datetime(2026, 11, 28, 12, 1),  # a Saturday noon: the only shift of the day just ended
        datetime(2026, 11, 30, 23, 58),  # month end
        datetime(2026, 12, 31, 23, 58),  # year end
        datetime(2027, 2, 28, 17, 45),  # a short month's end, mid-shift
    ]
    return half_hours + [t.replace(tzinfo=demo_data.TZ) for t in local] + [datetime(2026, 12, 1, 21, 40, tzinfo=UTC)]


INSTANTS = _instants()


def _load(data: demo_data.Dataset, clock: FrozenClock) -> tuple[FakeCalendarApi, InMemoryStateStore]:
    """The dataset's directory, calendars and allocations on the fakes, as provisioning and PUTs leave them."""
    api = FakeCalendarApi(clock)
    store = InMemoryStateStore()
    api.add_calendar(CONTROL)
    store.put_calendar(CalendarRecord(key=CONTROL_KEY, google_calendar_id=CONTROL, kind="control"))
    for clinic in data.clinics:
        replace_professionals(
            clinic.id,
            [Professional(clinic_id=clinic.id, id=p.id, name=p.name, email=p.email) for p in clinic.professionals],
            store=store,
        )
        replace_rooms(clinic.id, [Room(clinic_id=clinic.id, id=r.id, name=r.name) for r in clinic.rooms], store=store)
        owners = [("professional", professional_key(clinic.id, p.id), p.id) for p in clinic.professionals]
        owners += [("room", room_key(clinic.id, r.id), r.id) for r in clinic.rooms]
        for kind, key, owner in owners:
            api.add_calendar(f"{key}@group")
            store.put_calendar(
                CalendarRecord(
                    key=key,
                    google_calendar_id=f"{key}@group",
                    kind=kind,  # type: ignore[arg-type]
                    clinic_id=clinic.id,
                    owner_id=owner,
                )
            )
    items = [Allocation.model_validate(a.body()) for a in data.allocations]
    upsert_allocations(items, store=store, clock=clock)
    return api, store


def _publish(data: demo_data.Dataset, planner_clock: FrozenClock) -> tuple[list[PlanAnswer], FakeCalendarApi]:
    """Plan and apply every clinic's window with ``planner_clock``; the plans and the Calendar fake."""
    api, store = _load(data, planner_clock)
    queue = RecordingTaskQueue()
    plans = []
    for clinic in data.clinics:
        command = PlanCommand(clinic.id, data.window_start, data.window_end)
        plan = make_plan(command, store=store, clock=planner_clock, config=CONFIG)
        plans.append(plan)
        Publishing(store=store, api=api, queue=queue, clock=planner_clock, config=CONFIG).start_apply(
            ApplyCommand(plan.plan_id, plan.confirm_token)
        )
    while queue.tasks:
        for task in queue.pop_all():
            p = task.payload
            Publishing(store=store, api=api, queue=queue, clock=planner_clock, config=CONFIG).run_chunk(
                p["plan_id"], p["calendar_key"], p["chunk"]
            )
    return plans, api


@pytest.mark.parametrize("delay_min", [0, 7])
@pytest.mark.parametrize("instant", INSTANTS, ids=[t.isoformat(timespec="minutes") for t in INSTANTS])
def test_skipped_and_written_follow_the_planners_clock_at_every_instant(instant: datetime, delay_min: int) -> None:
    data = demo_data.build(instant, SMALL)
    planner_clock = FrozenClock(instant + timedelta(minutes=delay_min))
    plans, api = _publish(data, planner_clock)

    decided_at = {p.planned_at for p in plans}
    assert decided_at == {planner_clock.now()}  # the plan says which instant it judged "past" at
    started = data.started(planner_clock.now())
    upcoming = data.upcoming(planner_clock.now())
    skipped = Counter(
        (s.calendar_id, item.allocation_id)
        for p in plans
        for s in p.calendars
        for item in s.items
        if item.action == "skip"
    )
    reasons = {item.reason for p in plans for s in p.calendars for item in s.items if item.action == "skip"}
    assert reasons <= {"past_event"}
    assert sum(skipped.values()) == 3 * len(started)
    assert {a for _, a in skipped} == {a.id for a in started}
    for kind in ("prof", "room"):  # each started allocation is skipped on each of its 3 calendars
        assert sum(1 for key, _ in skipped if f"-{kind}-" in key) == len(started)
    assert sum(1 for key, _ in skipped if key == CONTROL_KEY) == len(started)
    assert sum(p.totals.create for p in plans) == 3 * len(upcoming)

    written = [body for events in api.calendars.values() for body in events.values()]
    assert len(written) == 3 * len(upcoming)
    starts = [datetime.fromisoformat(body["start"]["dateTime"]) for body in written]
    assert not [s for s in starts if has_started(s, planner_clock.now())]


@pytest.mark.parametrize("instant", INSTANTS[::6] + INSTANTS[48:], ids=lambda t: t.isoformat(timespec="minutes"))
def test_the_dataset_holds_its_promises_at_every_instant(instant: datetime) -> None:
    for spec in (demo_data.DatasetSpec(), SMALL):
        data = demo_data.build(instant, spec)
        assert data == demo_data.build(instant, spec)
        person_future = [
            a
            for clinic in data.clinics
            for a in data.upcoming(instant + timedelta(hours=1))
            if a.professional_id == clinic.person.id and a.clinic_id == clinic.id
        ]
        assert len(person_future) >= 3 * len(data.clinics)  # the demo's person always has 3 edits to make
        for clinic in data.clinics:  # and another professional 3 allocations to be busy elsewhere over
            other, targets = clinic.own_calendar_targets(instant + timedelta(hours=1))
            assert len(set(targets)) == 3
            assert all(a.start > instant + timedelta(hours=1) and a.professional_id == other.id for a in targets)
        # Nothing starts in the minutes after ``now``: a plan made then sees the same past as the dataset.
        assert not [a for a in data.allocations if instant <= a.start < instant + demo_data.NEAR_FUTURE]
        assert data.started(instant) == data.started(instant + demo_data.NEAR_FUTURE - timedelta(seconds=1))
