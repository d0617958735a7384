"""The sync use case on fakes: modes, idempotence, 410 diff, locks, budget, crashes, errors, conflicts."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from calsync import errors
from calsync.services.classify import conflict_id
from calsync.testing import CountingStore
from tests.unit.sync_helpers import CONFIG, GCAL, KEY, World, event_body, publish


def seed(world: World, n: int) -> None:
    base = world.clock.now() + timedelta(days=1)
    for i in range(n):
        world.api.insert_event(GCAL, event_body(f"ev{i:05d}", base + timedelta(hours=i)))


def test_full_then_incremental_is_idempotent() -> None:
    world = World(page_size=10)
    seed(world, 25)
    first = world.sync()
    assert (first.mode, first.pages, first.fetched, first.written) == ("full", 3, 25, 25)
    calendar = world.store.get_calendar(KEY)
    assert calendar is not None
    assert calendar.sync_token is not None
    assert calendar.last_full_sync_at is not None
    again = world.sync()
    assert (again.mode, again.pages, again.written) == ("incremental", 1, 0)
    edited = world.api.person_edit(GCAL, "ev00003", summary="changed")
    counting = CountingStore(world.store)
    world.store = counting  # type: ignore[assignment]
    third = world.sync()
    assert (third.written, third.fetched) == (1, 1)
    assert counting.read_ids == ["ev00003"]
    mirrored = world.store.inner.events[(KEY, "ev00003")]  # type: ignore[attr-defined]
    assert (mirrored.etag, mirrored.summary) == (edited["etag"], None)  # a person's title is not kept


def test_expired_token_runs_one_full_listing_and_tombstones_missing() -> None:
    world = World()
    seed(world, 5)
    world.sync()
    world.api.person_delete(GCAL, "ev00001")
    world.api.expire_sync_tokens(GCAL)
    before = world.api.calls["list_events"]
    summary = world.sync()
    assert world.api.calls["list_events"] - before == 2  # the refused incremental + one full listing
    assert summary.mode == "full"
    assert summary.tombstoned == 1
    assert world.mirror()["ev00001"].status == "cancelled"
    assert all(world.mirror()[f"ev0000{i}"].status == "confirmed" for i in (0, 2, 3, 4))


def test_failed_listing_never_tombstones() -> None:
    world = World(page_size=2)
    seed(world, 5)
    world.sync()
    world.api.expire_sync_tokens(GCAL)
    world.api.fail_next("list_events", errors.Transient("boom", status=503), times=1)
    world.api.on_list = lambda cal, n: None
    calls = {"n": 0}

    def fail_on_second_page(_: str, __: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # incremental (410), full page 1, then page 2 fails
            raise errors.Transient("upstream", status=503)

    world.api.faults.clear()
    world.api.on_list = fail_on_second_page
    with pytest.raises(errors.Transient):
        world.sync()
    assert all(e.status == "confirmed" for e in world.mirror().values())
    world.api.on_list = None
    assert world.sync().tombstoned == 0
    assert all(e.status == "confirmed" for e in world.mirror().values())


def test_held_lock_marks_pending_and_holder_loops_once_more() -> None:
    world = World()
    seed(world, 3)
    world.sync()
    results = []
    during: list[dict[str, Any]] = []

    def concurrent_trigger(_: str, n: int) -> None:
        if not results:
            results.append(world.sync(holder="second"))
            during.append(world.api.person_edit(GCAL, "ev00002", summary="during first pass"))

    world.api.on_list = concurrent_trigger
    world.api.person_edit(GCAL, "ev00000", summary="before")
    summary = world.sync(holder="first")
    assert results[0].mode == "skipped"
    assert summary.pages == 2  # its own pass + the pending one
    assert world.mirror()["ev00002"].etag == during[0]["etag"]  # the edit made meanwhile is mirrored
    assert world.store.locks == {}


def test_budget_exhaustion_enqueues_a_continuation_that_converges() -> None:
    world = World(page_size=4)
    seed(world, 10)
    world.api.on_list = lambda _, __: world.clock.advance(50)
    config = replace(CONFIG, run_budget_s=60)
    first = world.sync(config=config)
    assert first.continued
    assert first.pages == 2
    tasks = world.queue.pop_all()
    assert len(tasks) == 1
    assert tasks[0].payload["reason"] == "continuation"
    assert world.store.get_calendar(KEY).sync_token is None  # type: ignore[union-attr]
    second = world.sync("continuation", config=config)
    assert not second.continued
    assert len(world.mirror()) == 10
    assert world.store.get_calendar(KEY).sync_token is not None  # type: ignore[union-attr]
    assert world.store.cursors == {}


class Crash(BaseException):
    """A process dying mid-run (not an Exception: nothing gets cleaned up)."""


def test_crash_between_pages_converges_after_lease_expiry() -> None:
    reference = World(page_size=3)
    seed(reference, 8)
    reference.sync()

    world = World(page_size=3)
    seed(world, 8)

    def crash_on_page_3(_: str, n: int) -> None:
        if n == 3:
            raise Crash

    world.api.on_list = crash_on_page_3
    with pytest.raises(Crash):
        world.sync()
    world.api.on_list = None
    assert world.sync().mode == "skipped"  # the dead holder's lease is still valid
    world.clock.advance(CONFIG.lock_lease_s + 1)
    world.sync()
    strip = {"last_synced_at"}
    assert {k: v.model_dump(exclude=strip) for k, v in world.mirror().items()} == {
        k: v.model_dump(exclude=strip) for k, v in reference.mirror().items()
    }


def test_auth_revoked_marks_needs_reauth_without_raising() -> None:
    world = World()
    world.api.fail_next("list_events", errors.AuthRevoked("invalid_grant", status=401, reason="invalid_grant"))
    summary = world.sync()
    assert summary.status == "needs_reauth"
    calendar = world.store.get_calendar(KEY)
    assert calendar is not None
    assert calendar.status == "needs_reauth"
    assert world.store.locks == {}


def test_forbidden_is_final_error_status() -> None:
    world = World()
    world.api.fail_next("list_events", errors.Forbidden("no", status=403, reason="forbidden"))
    assert world.sync().status == "error"
    assert world.store.get_calendar(KEY).status == "error"  # type: ignore[union-attr]


def test_rate_limited_raises_for_retry_and_releases_lock() -> None:
    world = World()
    world.api.fail_next("list_events", errors.RateLimited("slow", status=429, retry_after_s=7))
    with pytest.raises(errors.RateLimited):
        world.sync()
    assert world.store.locks == {}
    assert world.sync().mode == "full"


def test_unknown_calendar() -> None:
    world = World()
    world.store.calendars.clear()
    with pytest.raises(errors.UnknownResource):
        world.sync()


def test_each_conflict_kind_once_across_three_syncs_and_resolution() -> None:
    world = World()
    t = world.clock.now() + timedelta(days=1)
    publish(world.api, world.store, event_body("s0smove1", t, allocation="a1"), world.clock)
    publish(world.api, world.store, event_body("s0sdel01", t + timedelta(hours=3), allocation="a2"), world.clock)
    publish(world.api, world.store, event_body("s0satt01", t + timedelta(hours=6), allocation="a3"), world.clock)
    publish(world.api, world.store, event_body("s0secho1", t + timedelta(hours=9), allocation="a4"), world.clock)
    world.api.insert_event(GCAL, event_body("other001", t, allocation="zz", env="prod"))
    first = world.sync()
    assert first.conflicts_opened == 0  # our own writes are echoes
    body = event_body("s0smove1", t + timedelta(hours=1), allocation="a1")
    world.api.person_edit(GCAL, "s0smove1", start=body["start"], end=body["end"])
    world.api.person_delete(GCAL, "s0sdel01")
    world.api.person_edit(GCAL, "s0satt01", attendees=[{"email": "someone@example.com"}])
    world.api.insert_event(GCAL, event_body("manual01", t + timedelta(hours=9, minutes=30)))
    opened = [world.sync().conflicts_opened for _ in range(3)]
    assert opened == [4, 0, 0]
    kinds = sorted(c.kind for c in world.store.conflicts.values() if c.status == "open")
    assert kinds == ["attendees_changed", "deleted_in_google", "moved_in_google", "overlap_manual"]
    assert "other001" not in world.mirror()
    assert world.mirror()["manual01"].origin == "manual"
    assert world.mirror()["s0smove1"].source_of_truth == "google"
    # The person moves it back: the divergence disappears and the conflict resolves.
    world.api.person_edit(GCAL, "s0smove1", start=event_body("x", t)["start"], end=event_body("x", t)["end"])
    assert world.sync().conflicts_resolved == 1
    assert world.store.conflicts[conflict_id(KEY, "s0smove1", "moved_in_google")].status == "resolved"
    # The manual event moves away from the allocation: overlap resolved.
    away = event_body("manual01", t + timedelta(days=2))
    world.api.person_edit(GCAL, "manual01", start=away["start"], end=away["end"])
    assert world.sync().conflicts_resolved == 1
    assert world.store.conflicts[conflict_id(KEY, "manual01", "overlap_manual")].status == "resolved"
    assert world.api.calls["update_event"] == 0  # the sync never writes to Google


def test_our_event_moved_onto_or_away_from_a_personal_event_opens_then_resolves_overlap() -> None:
    """Found by chaos (seeds 5, 12, 15): the overlap was only checked when the personal event changed."""
    world = World()
    t = world.clock.now() + timedelta(days=1)
    publish(world.api, world.store, event_body("s0sa0001", t, allocation="a1"), world.clock)
    publish(world.api, world.store, event_body("s0sb0001", t + timedelta(hours=5), allocation="a2"), world.clock)
    world.api.insert_event(GCAL, event_body("manual01", t + timedelta(hours=3)))
    world.sync()
    overlap = conflict_id(KEY, "manual01", "overlap_manual")
    assert overlap not in world.store.conflicts  # nothing overlaps yet
    # A person drags our event onto their personal one: the personal event is now in the way.
    onto = event_body("s0sa0001", t + timedelta(hours=3, minutes=30), allocation="a1")
    world.api.person_edit(GCAL, "s0sa0001", start=onto["start"], end=onto["end"])
    assert world.sync().conflicts_opened == 2  # moved_in_google + overlap_manual
    assert world.store.conflicts[overlap].status == "open"
    assert world.store.conflicts[overlap].allocation_id == "a1"
    # The other allocation moves onto it too, then the first moves away: still overlapping a2.
    onto_b = event_body("s0sb0001", t + timedelta(hours=3), allocation="a2")
    world.api.person_edit(GCAL, "s0sb0001", start=onto_b["start"], end=onto_b["end"])
    world.sync()
    away = event_body("s0sa0001", t + timedelta(days=3), allocation="a1")
    world.api.person_edit(GCAL, "s0sa0001", start=away["start"], end=away["end"])
    world.sync()
    assert world.store.conflicts[overlap].status == "open"
    assert world.store.conflicts[overlap].allocation_id == "a2"
    # Both gone from its time: resolved.
    world.api.person_delete(GCAL, "s0sb0001")
    world.sync()
    assert world.store.conflicts[overlap].status == "resolved"


def test_full_listing_finds_an_overlap_whose_events_arrive_on_different_pages() -> None:
    """Chaos seeds 62, 93, 96: a personal event on page 1, our event over it on page 2 of a first sync."""
    world = World(page_size=1)
    start = world.clock.now() + timedelta(days=1)
    world.api.insert_event(GCAL, event_body("aaaamanual1", start, minutes=30))  # listed first
    world.api.insert_event(GCAL, event_body("vvvvs0stem1", start, allocation="a1"))  # listed on the next page
    summary = world.sync()
    assert summary.mode == "full"
    assert summary.pages >= 2
    conflict = world.store.conflicts[conflict_id(KEY, "aaaamanual1", "overlap_manual")]
    assert conflict.status == "open"
    assert conflict.allocation_id == "a1"
