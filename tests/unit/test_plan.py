"""The pure planner: actions and reasons, deterministic ids, and a property test of its guards."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.model import Allocation, CalendarRecord, MirrorEvent, PublishedSnapshot
from calsync.services.plan import (
    CONTROL_KEY,
    CalendarView,
    PlanCommand,
    event_id,
    make_plan,
    plan_actions,
    professional_key,
    room_key,
)
from calsync.services.plan_actions import summarize
from tests.unit.publish_helpers import CLINIC, CONFIG, NOW, allocation, world

WEEK = (NOW, NOW + timedelta(days=7))


def test_event_id_is_deterministic_base32hex() -> None:
    a = event_id("dev", "a1", "c1-prof-p0")
    assert a == event_id("dev", "a1", "c1-prof-p0")
    assert re.fullmatch(r"[a-v0-9]{5,1024}", a)
    assert (
        len(
            {
                a,
                event_id("stg", "a1", "c1-prof-p0"),
                event_id("dev", "a2", "c1-prof-p0"),
                event_id("dev", "a1", "c1-room-r0"),
            }
        )
        == 4
    )


def _views(
    records: dict[str, CalendarRecord],
    mirror: dict[str, dict[str, MirrorEvent]] | None = None,
    conflicted: dict[str, frozenset[str]] | None = None,
) -> dict[str, CalendarView]:
    return {
        k: CalendarView(record=r, mirror=(mirror or {}).get(k, {}), conflicted=(conflicted or {}).get(k, frozenset()))
        for k, r in records.items()
    }


def _records() -> dict[str, CalendarRecord]:
    w = world(1, 1)
    return {r.key: r for r in w.store.list_calendars()}


def test_new_allocation_creates_on_three_calendars_with_attendees_only_on_the_professional() -> None:
    actions = plan_actions(
        env="dev",
        clinic_id=CLINIC,
        now=NOW,
        allocations=[allocation(1)],
        calendars=_views(_records()),
        time_min=WEEK[0],
        time_max=WEEK[1],
        clear_future=False,
    )
    assert sorted((a.calendar_key, a.action, a.reason) for a in actions) == sorted(
        [
            (CONTROL_KEY, "create", "new_allocation"),
            (professional_key(CLINIC, "p0"), "create", "new_allocation"),
            (room_key(CLINIC, "r0"), "create", "new_allocation"),
        ]
    )
    by_key = {a.calendar_key: a for a in actions}
    assert by_key[professional_key(CLINIC, "p0")].desired.attendees == ("pat@x.test",)  # type: ignore[union-attr]
    assert by_key[CONTROL_KEY].desired.attendees == ()  # type: ignore[union-attr]


def _mirror(
    key: str,
    alloc: Allocation,
    *,
    origin: str = "system",
    env: str = "dev",
    status: str = "confirmed",
    hours: float | None = None,
    attendees: list[str] | None = None,
    clinic: str | None = CLINIC,
) -> MirrorEvent:
    start = alloc.start if hours is None else NOW + timedelta(hours=hours)
    eid = event_id("dev", alloc.id, key)
    return MirrorEvent(
        calendar_key=key,
        external_id=eid,
        google_calendar_id="g",
        etag='"e1"',
        status=status,
        start=start,
        end=start + timedelta(hours=1),
        summary=alloc.title,
        attendees=attendees if attendees is not None else (["pat@x.test"] if "prof" in key else []),
        origin=origin,
        env=env if origin == "system" else None,  # type: ignore[arg-type]
        source_of_truth="backend" if origin == "system" else "google",
        allocation_id=alloc.id,
        clinic_id=clinic if origin == "system" else None,
        published=PublishedSnapshot(etag='"e1"', start=start, end=start + timedelta(hours=1)),
    )


def test_reasons_for_existing_events() -> None:
    records = _records()
    prof, room = professional_key(CLINIC, "p0"), room_key(CLINIC, "r0")
    a1, a2, a3 = allocation(1), allocation(2, hours=30), allocation(3, status="cancelled")
    mirror = {
        prof: {
            _mirror(prof, a1).external_id: _mirror(prof, a1),  # unchanged
            _mirror(prof, a2, hours=40).external_id: _mirror(prof, a2, hours=40),  # moved → update
            _mirror(prof, a3).external_id: _mirror(prof, a3),
        },  # cancelled allocation → delete
        room: {
            _mirror(room, a1, origin="manual", hours=5).external_id: _mirror(room, a1, origin="manual", hours=5),
            _mirror(room, a2, env="stg", hours=3).external_id: _mirror(room, a2, env="stg", hours=3),
        },
        CONTROL_KEY: {
            _mirror(CONTROL_KEY, a1, status="cancelled").external_id: _mirror(CONTROL_KEY, a1, status="cancelled")
        },
    }
    conflicted = {CONTROL_KEY: frozenset({_mirror(CONTROL_KEY, a2).external_id})}
    CONTROL_A2 = _mirror(CONTROL_KEY, a2, hours=50)
    mirror[CONTROL_KEY][CONTROL_A2.external_id] = CONTROL_A2
    actions = plan_actions(
        env="dev",
        clinic_id=CLINIC,
        now=NOW,
        allocations=[a1, a2, a3],
        calendars=_views(records, mirror, conflicted),
        time_min=WEEK[0],
        time_max=WEEK[1],
        clear_future=False,
    )
    got = {(a.calendar_key, a.allocation_id): (a.action, a.reason) for a in actions}
    assert got == {
        (prof, "a2"): ("update", "allocation_changed"),
        (prof, "a3"): ("delete", "allocation_cancelled"),
        (room, "a1"): ("skip", "untagged_event"),
        (room, "a2"): ("skip", "foreign_env"),
        (CONTROL_KEY, "a1"): ("update", "restore_cancelled"),
        (CONTROL_KEY, "a2"): ("skip", "open_conflict"),
    }
    assert next(a for a in actions if a.reason == "allocation_changed").if_match == '"e1"'


def test_past_allocation_is_skipped_and_clear_future_deletes_only_future_system_events() -> None:
    records = _records()
    prof = professional_key(CLINIC, "p0")
    past = allocation(1, hours=-2)
    orphan = allocation(9, hours=10)
    old_orphan = allocation(8, hours=-10)
    manual = _mirror(prof, allocation(7, hours=12), origin="manual")
    mirror = {prof: {m.external_id: m for m in (_mirror(prof, orphan), _mirror(prof, old_orphan), manual)}}
    actions = plan_actions(
        env="dev",
        clinic_id=CLINIC,
        now=NOW,
        allocations=[past],
        calendars=_views(records, mirror),
        time_min=NOW - timedelta(days=1),
        time_max=WEEK[1],
        clear_future=True,
    )
    got = {(a.calendar_key, a.allocation_id): (a.action, a.reason) for a in actions}
    assert got[(prof, "a1")] == ("skip", "past_event")
    assert got[(prof, "a9")] == ("delete", "not_in_schedule")
    assert got[(prof, "a7")] == ("skip", "untagged_event")
    assert (prof, "a8") not in got


def test_make_plan_answer_shape_and_hashed_tokens() -> None:
    w = world()
    w.store.put_allocations([allocation(i, prof=i % 2, room=i % 2) for i in range(4)])
    answer = make_plan(PlanCommand(CLINIC, *WEEK, clear_future=True), store=w.store, clock=w.clock, config=CONFIG)
    assert answer.totals.model_dump() == {"create": 12, "update": 0, "delete": 0, "skip": 0}
    assert answer.quota.requests == 12 + 5
    keys = {"plan_id", "confirm_token", "confirm_clear_future_token", "expires_at", "calendars"}
    assert keys <= answer.model_fields_set
    stored = w.store.get_plan(answer.plan_id)
    assert stored is not None
    assert answer.confirm_token not in stored.model_dump_json()


# --- property: never a write to a past or untagged event ---------------------------------------

times = st.integers(min_value=-72, max_value=72)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[Allocation], dict[str, CalendarView]]:
    records = _records()
    keys = sorted(records)
    allocations = [
        allocation(i, hours=draw(times), status=draw(st.sampled_from(["draft", "reviewed", "adjusted", "cancelled"])))
        for i in range(draw(st.integers(0, 6)))
    ]
    mirror: dict[str, dict[str, MirrorEvent]] = {k: {} for k in keys}
    for alloc in allocations + [allocation(100 + i) for i in range(3)]:
        for key in keys:
            if draw(st.booleans()):
                m = _mirror(
                    key,
                    alloc,
                    origin=draw(st.sampled_from(["system", "manual", "google"])),
                    env=draw(st.sampled_from(["dev", "stg"])),
                    status=draw(st.sampled_from(["confirmed", "cancelled"])),
                    hours=draw(times),
                    attendees=draw(st.sampled_from([[], ["pat@x.test"], ["o@x.test"]])),
                )
                mirror[key][m.external_id] = m
    conflicted = {k: frozenset(e for e in mirror[k] if draw(st.booleans())) for k in keys}
    return allocations, _views(records, mirror, conflicted)


@settings(max_examples=300, deadline=None)
@given(scenario(), st.booleans())
def test_never_writes_past_untagged_or_foreign_events(
    case: tuple[list[Allocation], dict[str, CalendarView]], clear: bool
) -> None:
    allocations, views = case
    actions = plan_actions(
        env="dev",
        clinic_id=CLINIC,
        now=NOW,
        allocations=allocations,
        calendars=views,
        time_min=NOW - timedelta(days=3),
        time_max=NOW + timedelta(days=3),
        clear_future=clear,
    )
    for a in actions:
        if a.action == "skip":
            continue
        current = views[a.calendar_key].mirror.get(a.event_id)
        if a.desired is not None:
            assert a.desired.start > NOW
        if current is not None:
            assert current.origin == "system"
            assert current.env == "dev"
            assert a.event_id not in views[a.calendar_key].conflicted
            if current.status != "cancelled":
                assert current.start is not None
                assert current.start > NOW
        else:
            assert a.action == "create"
    assert len({(a.calendar_key, a.event_id) for a in actions}) == len(actions)
    _ = datetime, UTC


# --- clinic scope, schema-1 events, reassignment ------------------------------------------------


def _records_of(professionals: int, rooms: int) -> dict[str, CalendarRecord]:
    return {r.key: r for r in world(professionals, rooms).store.list_calendars()}


def _other(alloc_id: str, clinic: str = "c2") -> Allocation:
    return allocation(0, hours=30).model_copy(update={"id": alloc_id, "clinic_id": clinic})


def test_clear_future_deletes_only_this_clinics_events_on_the_shared_control_calendar() -> None:
    records = _records()
    prof = professional_key(CLINIC, "p0")
    control = {
        m.external_id: m
        for m in (
            _mirror(CONTROL_KEY, _other("b1"), clinic="c2"),  # another clinic's (tagged)
            _mirror(CONTROL_KEY, _other("b2"), clinic=None),  # another clinic's (schema 1, allocation known)
            _mirror(CONTROL_KEY, _other("zz"), clinic=None),  # schema 1, allocation unknown: whose?
            _mirror(CONTROL_KEY, _other("a9", CLINIC)),  # ours, not in the schedule
            _mirror(CONTROL_KEY, _other("a8", CLINIC), clinic=None),  # ours (schema 1, allocation known)
        )
    }
    own = {m.external_id: m for m in (_mirror(prof, _other("a7", CLINIC), clinic=None),)}  # on our own calendar
    actions = plan_actions(
        env="dev",
        clinic_id=CLINIC,
        now=NOW,
        allocations=[],
        calendars=_views(records, {CONTROL_KEY: control, prof: own}),
        time_min=WEEK[0],
        time_max=WEEK[1],
        clear_future=True,
        allocation_clinics={"b2": "c2", "a8": CLINIC},
    )
    got = {(a.calendar_key, a.allocation_id): (a.action, a.reason, a.clinic_id) for a in actions}
    assert got == {
        (CONTROL_KEY, "zz"): ("skip", "unknown_clinic", None),
        (CONTROL_KEY, "a9"): ("delete", "not_in_schedule", CLINIC),
        (CONTROL_KEY, "a8"): ("delete", "not_in_schedule", CLINIC),
        (prof, "a7"): ("delete", "not_in_schedule", CLINIC),
    }
    _, sections = summarize(actions)
    assert {s.calendar_id: s.deletes_by_clinic for s in sections} == {CONTROL_KEY: {CLINIC: 2}, prof: {CLINIC: 1}}


def test_a_schema1_event_of_the_clinic_is_retagged_in_place_and_a_started_one_never() -> None:
    records = _records()
    prof = professional_key(CLINIC, "p0")
    future, started = allocation(1), allocation(2, hours=-1)
    mirror = {
        prof: {m.external_id: m for m in (_mirror(prof, future, clinic=None), _mirror(prof, started, clinic=None))}
    }
    actions = plan_actions(
        env="dev",
        clinic_id=CLINIC,
        now=NOW,
        allocations=[future, started],
        calendars=_views(records, mirror),
        time_min=NOW - timedelta(days=1),
        time_max=WEEK[1],
        clear_future=True,
    )
    got = {(a.calendar_key, a.allocation_id): (a.action, a.reason) for a in actions}
    assert got[(prof, "a1")] == ("update", "tag_migration")
    assert (prof, "a2") not in got
    retag = next(a for a in actions if a.reason == "tag_migration")
    assert (retag.event_id, retag.if_match, retag.clinic_id) == (event_id("dev", "a1", prof), '"e1"', CLINIC)


def test_reassigned_allocations_lose_their_copies_on_calendars_that_are_no_longer_targets() -> None:
    records = _records_of(2, 2)
    p0, p1, r0 = professional_key(CLINIC, "p0"), professional_key(CLINIC, "p1"), room_key(CLINIC, "r0")
    moved = allocation(1, prof=1, room=1)  # was p0 / r0
    started_copy = allocation(2, prof=1, room=1)  # its copy on p0 has started
    conflicted = allocation(3, prof=1, room=1)  # its copy on p0 was edited by a person
    cancelled = allocation(4, status="cancelled", prof=0)  # its copy is on p1, where it was before
    mirror = {
        p0: {
            m.external_id: m for m in (_mirror(p0, moved), _mirror(p0, started_copy, hours=-1), _mirror(p0, conflicted))
        },
        r0: {_mirror(r0, moved, clinic=None).external_id: _mirror(r0, moved, clinic=None)},
        p1: {_mirror(p1, cancelled).external_id: _mirror(p1, cancelled)},
    }
    actions = plan_actions(
        env="dev",
        clinic_id=CLINIC,
        now=NOW,
        allocations=[moved, started_copy, conflicted, cancelled],
        calendars=_views(records, mirror, {p0: frozenset({event_id("dev", "a3", p0)})}),
        time_min=WEEK[0],
        time_max=WEEK[1],
        clear_future=False,
    )
    got = {(a.calendar_key, a.allocation_id): (a.action, a.reason) for a in actions if a.action != "create"}
    assert got == {
        (p0, "a1"): ("delete", "reassigned"),
        (r0, "a1"): ("delete", "reassigned"),
        (p0, "a3"): ("skip", "open_conflict"),
        (p1, "a4"): ("delete", "allocation_cancelled"),
    }


def test_gather_finds_copies_on_every_calendar_of_the_clinic_and_only_there() -> None:
    w = world(2, 1)
    p0, p1 = professional_key(CLINIC, "p0"), professional_key(CLINIC, "p1")
    w.store.put_allocations([allocation(1, prof=1)])
    w.store.put_events([_mirror(p0, allocation(1))])
    answer = make_plan(PlanCommand(CLINIC, *WEEK), store=w.store, clock=w.clock, config=CONFIG)
    rows = {(c.calendar_id, i.action, i.reason) for c in answer.calendars for i in c.items}
    assert (p0, "delete", "reassigned") in rows
    assert (p1, "create", "new_allocation") in rows
    assert next(c for c in answer.calendars if c.calendar_id == p0).deletes_by_clinic == {CLINIC: 1}
