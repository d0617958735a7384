"""``ports.PlanStore`` contract: plans, status compare-and-set, chunk progress and the shared pacing
timeline (memory and Firestore)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from calsync.model import Plan, PlanChunkProgress
from calsync.ports import PlanStore

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


def plan(plan_id: str = "p1") -> Plan:
    return Plan(
        id=plan_id,
        clinic_id="c1",
        time_min=NOW,
        time_max=NOW + timedelta(days=7),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        confirm_hash="h",
        fingerprint="f",
    )


def test_plan_round_trip_and_status_compare_and_set(plan_store: PlanStore) -> None:
    plan_store.put_plan(plan())
    assert plan_store.get_plan("p1") == plan()
    assert plan_store.get_plan("nope") is None
    assert plan_store.transition_plan("p1", "planned", {"status": "running", "started_at": NOW})
    assert not plan_store.transition_plan("p1", "planned", {"status": "running"})  # the second apply loses
    assert not plan_store.transition_plan("nope", "planned", {"status": "running"})
    stored = plan_store.get_plan("p1")
    assert stored is not None
    assert (stored.status, stored.started_at) == ("running", NOW)


def test_concurrent_transitions_have_one_winner(plan_store: PlanStore) -> None:
    plan_store.put_plan(plan())
    wins: list[bool] = []
    lock = threading.Lock()

    def apply() -> None:
        won = plan_store.transition_plan("p1", "planned", {"status": "running"})
        with lock:
            wins.append(won)

    threads = [threading.Thread(target=apply) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, True]


def test_chunk_progress_is_one_document_per_chunk(plan_store: PlanStore) -> None:
    for key, chunk in (("room-1", 0), ("room-1", 1), ("prof-1", 0)):
        plan_store.put_plan_progress(PlanChunkProgress(plan_id="p1", calendar_key=key, chunk=chunk, total=50))
    plan_store.put_plan_progress(PlanChunkProgress(plan_id="p2", calendar_key="room-1", chunk=0, total=1))
    retried = PlanChunkProgress(plan_id="p1", calendar_key="room-1", chunk=1, total=50, done=50, finished=True)
    plan_store.put_plan_progress(retried)  # a retried task overwrites its chunk, never adds one
    listed = plan_store.list_plan_progress("p1")
    assert [(p.calendar_key, p.chunk) for p in listed] == [("prof-1", 0), ("room-1", 0), ("room-1", 1)]
    assert plan_store.get_plan_progress("p1", "room-1", 1) == retried
    assert plan_store.get_plan_progress("p1", "room-1", 7) is None


def test_concurrent_reservations_get_disjoint_windows(plan_store: PlanStore) -> None:
    store = plan_store
    now = NOW
    starts: list[datetime] = []
    lock = threading.Lock()

    def reserve() -> None:
        start = store.reserve_quota("calendar-publish", 60.0, now)
        with lock:
            starts.append(start)

    threads = [threading.Thread(target=reserve) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(starts) == [now, now + timedelta(seconds=60), now + timedelta(seconds=120)]
    # A later caller starts after everything reserved, or at its own now once the timeline is free.
    assert store.reserve_quota("calendar-publish", 10.0, now) == now + timedelta(seconds=180)
    later = now + timedelta(hours=1)
    assert store.reserve_quota("calendar-publish", 10.0, later) == later
    assert store.reserve_quota("another-timeline", 10.0, now) == now
