"""``ports.RetentionStore`` contract: records past ``expire_at`` go, each kind, a plan with its progress
(memory and Firestore)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

from calsync.model import (
    ALLOCATION_RETENTION,
    CHANNEL_RETENTION,
    FREE_BUSY_RETENTION,
    PLAN_RETENTION,
    Allocation,
    ChannelRecord,
    FreeBusyState,
    Plan,
    PlanChunkProgress,
)
from calsync.ports import ExpiringKind, PublishStore
from calsync.ports.queries import UnknownChannelSeen

NOW = datetime(2030, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def plan(pid: str, created: datetime) -> Plan:
    return Plan(
        id=pid,
        clinic_id="c1",
        time_min=created,
        time_max=created + DAY,
        created_at=created,
        expires_at=created + timedelta(hours=1),
        confirm_hash="h",
        fingerprint="f",
    )


def allocation(aid: str, end: datetime) -> Allocation:
    return Allocation(
        id=aid,
        clinic_id="c1",
        professional_id="p1",
        room_id="r1",
        start=end - timedelta(hours=1),
        end=end,
        status="reviewed",
        attendees=["patient@example.com"],
    )


def channel(cid: str, expiration: datetime) -> ChannelRecord:
    return ChannelRecord(
        channel_id=cid,
        calendar_key="k",
        resource_id="r",
        expiration=expiration,
        token_hash="t",
        created_at=expiration - 7 * DAY,
        status="expired",
    )


def test_each_kind_goes_after_its_retention_and_not_before(state_store: PublishStore) -> None:
    store = state_store
    old, fresh = NOW - PLAN_RETENTION - DAY, NOW - PLAN_RETENTION + DAY
    store.put_plan(plan("old", old))
    store.put_plan(plan("fresh", fresh))
    for pid, at in (("old", old), ("fresh", fresh)):
        store.put_plan_progress(
            PlanChunkProgress(plan_id=pid, calendar_key="k", chunk=0, total=1, updated_at=at, actions=[{"a": 1}])
        )
    store.put_allocations(
        [allocation("gone", NOW - ALLOCATION_RETENTION - DAY), allocation("kept", NOW - ALLOCATION_RETENTION + DAY)]
    )
    store.put_channel(channel("gone", NOW - CHANNEL_RETENTION - DAY))
    store.put_channel(channel("kept", NOW - CHANNEL_RETENTION + DAY))
    store.put_free_busy_states(
        [
            FreeBusyState(
                clinic_id="c1", professional_id="gone", readable=True, checked_at=NOW - FREE_BUSY_RETENTION - DAY
            ),
            FreeBusyState(clinic_id="c1", professional_id="kept", readable=True, checked_at=NOW),
        ]
    )

    for cid, at in (("gone", NOW - 8 * DAY), ("kept", NOW)):
        store.record_unknown_channel(
            UnknownChannelSeen(cid, None, at, min_interval_s=1, expire_at=at + 7 * DAY, max_records=100)
        )

    counts = {kind: store.delete_expired(kind, NOW, 100) for kind in get_args(ExpiringKind)}

    assert counts == {"plans": 1, "allocations": 1, "channels": 1, "free_busy": 1, "unknown_channels": 1}
    assert [u.channel_id for u in store.list_unknown_channels()] == ["kept"]
    assert (store.get_plan("old"), store.get_plan("fresh") is not None) == (None, True)
    assert store.list_plan_progress("old") == []
    assert len(store.list_plan_progress("fresh")) == 1
    assert list(store.get_allocations(["gone", "kept"])) == ["kept"]
    assert (store.get_channel("gone"), store.get_channel("kept") is not None) == (None, True)
    assert [s.professional_id for s in store.list_free_busy_states("c1")] == ["kept"]
    assert store.delete_expired("plans", NOW, 100) == 0  # a second run finds nothing


def test_a_limited_run_deletes_at_most_its_limit(state_store: PublishStore) -> None:
    ended = NOW - ALLOCATION_RETENTION - DAY
    state_store.put_allocations([allocation(f"a{i}", ended) for i in range(5)])
    assert state_store.delete_expired("allocations", NOW, 3) == 3
    assert state_store.delete_expired("allocations", NOW, 3) == 2
