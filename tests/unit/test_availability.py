"""The busy-elsewhere check on the in-memory fakes: collisions, batching, unreadable calendars, resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.model import Allocation, Professional
from calsync.ports.queries import ConflictQuery
from calsync.services.availability import AvailabilityConfig, check_clinic, collisions
from calsync.testing.calendar_api import FakeCalendarApi
from calsync.testing.clock import FrozenClock
from calsync.testing.fakes import InMemoryStateStore

NOW = datetime(2030, 3, 4, 9, tzinfo=UTC)
CONFIG = AvailabilityConfig(env="dev", time_zone="America/Sao_Paulo", horizon_days=14)


def professional(pid: str, email: str | None = None) -> Professional:
    return Professional(clinic_id="c1", id=pid, name=pid, email=email if email is not None else f"{pid}@clinic.example")


def allocation(aid: str, pid: str, hours: float, status: str = "reviewed") -> Allocation:
    start = NOW + timedelta(hours=hours)
    return Allocation(
        id=aid,
        clinic_id="c1",
        professional_id=pid,
        room_id="r1",
        start=start,
        end=start + timedelta(hours=1),
        status=status,  # type: ignore[arg-type]
    )


def busy_event(api: FakeCalendarApi, calendar_id: str, hours: float, length_h: float = 1, **extra: object) -> str:
    api.calendars.setdefault(calendar_id, {})
    start = NOW + timedelta(hours=hours)
    body = {
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=length_h)).isoformat()},
    }
    return api.insert_event(calendar_id, body | extra).id


def world(*professionals: Professional) -> tuple[InMemoryStateStore, FakeCalendarApi, FrozenClock]:
    store, clock = InMemoryStateStore(), FrozenClock(NOW)
    api = FakeCalendarApi(clock)
    store.replace_professionals("c1", list(professionals))
    return store, api, clock


def open_busy(store: InMemoryStateStore) -> dict[str, str]:
    found = {}
    for key in {f"c1-prof-{p.id}" for p in store.list_professionals("c1")}:
        page, _ = store.list_conflicts(ConflictQuery(key, status="open", page_size=100, page_token=None))
        found.update({c.allocation_id or "": c.suggestion for c in page if c.kind == "busy_elsewhere"})
    return found


def test_collisions_are_overlaps_of_the_allocations_own_professional() -> None:
    a1, a2 = allocation("a1", "p1", 1), allocation("a2", "p2", 1)
    touching = (a1.end, a1.end + timedelta(hours=1))  # ends are exclusive: touching is free
    found = collisions([a1, a2], {"p1": [touching, (a1.start, a1.start + timedelta(minutes=1))]})
    assert [(c.allocation.id, c.busy[0]) for c in found] == [("a1", a1.start)]


def test_busy_only_published_upcoming_allocations_collide_and_the_check_is_idempotent() -> None:
    store, api, clock = world(professional("p1"), professional("p2"), professional("p3", email=""))
    store.put_allocations(
        [
            allocation("busy", "p1", 2),
            allocation("free", "p1", 5),
            allocation("draft", "p1", 2, status="draft"),
            allocation("shown-free", "p2", 2),
            allocation("no-email", "p3", 2),
        ]
    )
    busy_event(api, "p1@clinic.example", 1.5, length_h=1)
    busy_event(api, "p2@clinic.example", 2, transparency="transparent")

    first = check_clinic("c1", store=store, api=api, clock=clock, config=CONFIG)
    again = check_clinic("c1", store=store, api=api, clock=clock, config=CONFIG)

    assert list(open_busy(store)) == ["busy"]
    suggestion = open_busy(store)["busy"]
    assert "allocation busy" in suggestion
    assert "07:30" in suggestion  # the busy interval's start, in São Paulo time
    assert (first.conflicts_opened, again.conflicts_opened, again.conflicts_resolved) == (1, 0, 0)
    assert (first.readable, first.not_readable) == (2, [])
    states = {s.professional_id: (s.readable, s.reason) for s in store.list_free_busy_states("c1")}
    assert states == {"p1": (True, None), "p2": (True, None), "p3": (False, "no_email")}


def test_unshared_calendar_invents_nothing_and_keeps_what_it_knew() -> None:
    store, api, clock = world(professional("p1"))
    store.put_allocations([allocation("a1", "p1", 2)])
    busy_event(api, "p1@clinic.example", 2)
    check_clinic("c1", store=store, api=api, clock=clock, config=CONFIG)
    assert list(open_busy(store)) == ["a1"]

    api.free_busy_hidden.add("p1@clinic.example")
    hidden = check_clinic("c1", store=store, api=api, clock=clock, config=CONFIG)

    assert (hidden.not_readable, hidden.conflicts_resolved) == (["p1"], 0)
    assert list(open_busy(store)) == ["a1"]  # nothing new is known: not resolved either
    assert [(s.readable, s.reason) for s in store.list_free_busy_states("c1")] == [(False, "notFound")]


def test_moving_the_busy_time_resolves_but_a_started_allocation_keeps_its_conflict() -> None:
    store, api, clock = world(professional("p1"))
    store.put_allocations([allocation("soon", "p1", 1), allocation("later", "p1", 6)])
    first = busy_event(api, "p1@clinic.example", 1)
    second = busy_event(api, "p1@clinic.example", 6)
    check_clinic("c1", store=store, api=api, clock=clock, config=CONFIG)
    assert sorted(open_busy(store)) == ["later", "soon"]

    clock.advance(3900)  # "soon" has started
    api.delete_event("p1@clinic.example", first)
    api.delete_event("p1@clinic.example", second)
    settled = check_clinic("c1", store=store, api=api, clock=clock, config=CONFIG)

    assert settled.conflicts_resolved == 1
    assert list(open_busy(store)) == ["soon"]


def test_professionals_are_queried_fifty_calendars_at_a_time() -> None:
    pros = [professional(f"p{i:03d}") for i in range(120)]
    store, api, clock = world(*pros)
    for p in pros:
        api.calendars.setdefault(p.email, {})

    checked = check_clinic("c1", store=store, api=api, clock=clock, config=CONFIG)

    assert api.calls["free_busy"] == 3
    assert (checked.professionals, checked.readable) == (120, 120)
