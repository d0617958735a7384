"""The sync's lease and budget on fakes: renewal per page, fenced writes, every loop budgeted."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from calsync import errors
from calsync.model import Conflict, MirrorEvent
from calsync.services.classify import conflict_id
from calsync.services.sync import SyncSummary
from tests.unit.sync_helpers import CONFIG, GCAL, KEY, World, event_body, publish

LONG_RUN = replace(CONFIG, lock_lease_s=60, run_budget_s=1000)


def seed(world: World, n: int) -> None:
    base = world.clock.now() + timedelta(days=1)
    for i in range(n):
        world.api.insert_event(GCAL, event_body(f"ev{i:05d}", base + timedelta(hours=i)))


def test_a_pass_longer_than_the_lease_keeps_it() -> None:
    world = World(page_size=2)
    seed(world, 10)  # five pages, 50 s each: the pass lasts 250 s, the lease 60 s
    second: list[SyncSummary] = []

    def slow_pages(_: str, n: int) -> None:
        world.clock.advance(50)
        if n == 4:  # 200 s into the pass, long after the first lease would have ended
            second.append(world.sync(holder="second", config=LONG_RUN))

    world.api.on_list = slow_pages
    first = world.sync(holder="first", config=LONG_RUN)
    assert second[0].mode == "skipped"
    assert second[0].status == "locked"
    assert second[0].retry_after_s == 10  # renewed at 150 s for 60 s: 10 s left at 200 s
    assert first.mode == "full"
    assert first.pages == 6  # its five pages + the pass the second trigger asked for
    assert len(world.mirror()) == 10
    assert world.store.get_calendar(KEY).sync_token is not None  # type: ignore[union-attr]
    assert world.store.locks == {}


def test_a_holder_whose_lease_was_taken_over_stops_without_writing() -> None:
    world = World(page_size=2)
    seed(world, 6)

    def stall_then_takeover(_: str, n: int) -> None:
        if n == 2:  # the second page takes longer than the lease; another run takes the calendar
            world.clock.advance(LONG_RUN.lock_lease_s + 1)
            assert world.store.acquire_lock(KEY, "newer", lease_s=60, now=world.clock.now())

    world.api.on_list = stall_then_takeover
    with pytest.raises(errors.LeaseLost):
        world.sync(holder="older", config=LONG_RUN)
    assert set(world.mirror()) == {"ev00000", "ev00001"}  # the first page only
    assert world.store.get_calendar(KEY).sync_token is None  # type: ignore[union-attr]
    assert world.store.cursors == {}
    assert world.store.locks[KEY]["holder"] == "newer"


def test_the_passes_a_trigger_stream_asks_for_are_budgeted() -> None:
    world = World()
    seed(world, 3)
    world.sync()

    def busy(_: str, n: int) -> None:
        world.clock.advance(50)
        if n <= 4:  # a trigger during each of the next passes
            assert world.sync(holder=f"trigger{n}").mode == "skipped"

    world.api.on_list = busy
    summary = world.sync(holder="holder")  # budget 120 s: three passes, then a continuation
    assert summary.pages == 3
    assert summary.continued
    assert [t.payload["reason"] for t in world.queue.pop_all()] == ["continuation"]
    assert world.store.locks == {}
    world.api.on_list = None
    assert world.sync("continuation").mode == "incremental"


def test_a_tombstone_diff_over_a_huge_listing_stops_at_the_deadline_and_continues() -> None:
    world = World()
    seed(world, 3)
    world.sync()
    start = world.clock.now() + timedelta(days=2)
    gone = [
        MirrorEvent(
            calendar_key=KEY,
            external_id=f"gone{i:05d}",
            google_calendar_id=GCAL,
            start=start + timedelta(minutes=i),
            end=start + timedelta(minutes=i + 30),
        )
        for i in range(2500)
    ]
    world.store.put_events(gone)  # in the mirror, never returned by Google again
    world.api.expire_sync_tokens(GCAL)
    read = world.store.get_events

    def slow_read(calendar_key: str, ids: list[str]) -> dict[str, MirrorEvent]:
        world.clock.advance(40)
        return read(calendar_key, ids)

    world.store.get_events = slow_read  # type: ignore[assignment,method-assign]
    config = replace(CONFIG, run_budget_s=100)
    first = world.sync(config=config)
    assert first.continued
    assert 0 < first.tombstoned < 2500
    cursor = world.store.cursors[KEY]
    assert cursor.next_sync_token is not None  # the listing is done: only the diff is left
    assert world.store.get_calendar(KEY).sync_token is None  # type: ignore[union-attr]
    second = world.sync("continuation", config=config)
    assert first.tombstoned + second.tombstoned == 2500
    assert (second.mode, second.pages, second.continued) == ("full", 0, False)
    assert all(world.mirror()[e.external_id].status == "cancelled" for e in gone)
    assert world.store.get_calendar(KEY).sync_token == cursor.next_sync_token  # type: ignore[union-attr]
    assert world.store.cursors == {}


def test_an_overlap_recheck_over_a_huge_listing_stops_at_the_deadline_and_continues() -> None:
    world = World()
    t = world.clock.now() + timedelta(days=1)
    publish(world.api, world.store, event_body("s0sa0001", t, allocation="a1"), world.clock)
    world.api.insert_event(GCAL, event_body("manual01", t + timedelta(hours=3)))
    world.sync()
    # 1,200 open overlap conflicts of the calendar: the re-check pages through them (500 a page).
    world.store.put_conflicts(
        [
            Conflict(
                id=f"old{i:05d}",
                kind="overlap_manual",
                calendar_key=KEY,
                event_id=f"old{i:05d}",
                allocation_id="a9",
                suggestion="-",
                detected_at=world.clock.now(),
            )
            for i in range(1200)
        ]
    )
    onto = event_body("s0sa0001", t + timedelta(hours=3, minutes=30), allocation="a1")
    world.api.person_edit(GCAL, "s0sa0001", start=onto["start"], end=onto["end"])
    listing = world.store.list_conflicts

    def slow_listing(*args: object, **kwargs: object) -> object:
        world.clock.advance(50)
        return listing(*args, **kwargs)  # type: ignore[arg-type]

    world.store.list_conflicts = slow_listing  # type: ignore[assignment,method-assign]
    config = replace(CONFIG, run_budget_s=100)
    first = world.sync(config=config)
    assert first.continued
    assert (first.pages, first.written) == (0, 0)  # stopped before the page's writes
    assert world.mirror()["s0sa0001"].start == t
    world.store.list_conflicts = listing  # type: ignore[method-assign]
    second = world.sync("continuation", config=config)
    assert (second.mode, second.pages, second.written, second.continued) == ("incremental", 1, 1, False)
    assert world.store.conflicts[conflict_id(KEY, "manual01", "overlap_manual")].status == "open"
    assert world.store.cursors == {}
