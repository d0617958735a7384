"""The push path's store methods on Google's Firestore emulator (same semantics as the in-memory fake)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.model import CalendarRecord, ChannelRecord, Conflict, MirrorEvent
from calsync.testing import InMemoryStateStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["firestore", "memory"])
def store(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        return InMemoryStateStore()
    client = request.getfixturevalue("firestore_client")
    return FirestoreStateStore(client, environment="dev")


def channel(channel_id: str, key: str = "k1", status: str = "active") -> ChannelRecord:
    return ChannelRecord(
        channel_id=channel_id,
        calendar_key=key,
        resource_id="res",
        expiration=NOW + timedelta(days=7),
        token_hash="h",
        created_at=NOW,
        status=status,  # type: ignore[arg-type]
    )


def test_channel_queries(store) -> None:
    for record in (channel("a"), channel("b", status="replaced"), channel("c", key="k2")):
        store.put_channel(record)
    assert sorted(c.channel_id for c in store.list_channels_for_calendar("k1")) == ["a", "b"]
    assert sorted(c.channel_id for c in store.list_active_channels()) == ["a", "c"]


def test_record_notification_is_compare_and_set(store) -> None:
    store.put_channel(channel("a"))
    assert store.record_notification("a", 3, NOW, enqueued_bucket=10)
    assert not store.record_notification("a", 3, NOW + timedelta(seconds=1))
    assert not store.record_notification("a", 2, NOW + timedelta(seconds=1))
    assert store.record_notification("a", 9, NOW + timedelta(seconds=2))
    stored = store.get_channel("a")
    assert (stored.last_message_number, stored.last_enqueued_bucket) == (9, 10)
    assert stored.last_webhook_at == NOW + timedelta(seconds=2)
    assert not store.record_notification("ghost", 5, NOW)


def test_concurrent_duplicates_record_once(store) -> None:
    store.put_channel(channel("a"))
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: store.record_notification("a", 7, NOW), range(3)))
    assert results.count(True) == 1


def test_unknown_channel_recorded_rate_limited(store) -> None:
    assert store.record_unknown_channel("x", "res-x", NOW, min_interval_s=3600)
    assert not store.record_unknown_channel("x", "res-x", NOW + timedelta(minutes=5), min_interval_s=3600)
    assert store.record_unknown_channel("x", None, NOW + timedelta(hours=2), min_interval_s=3600)


def test_retention_deletes(store) -> None:
    for key in ("k1", "k2"):
        store.put_calendar(CalendarRecord(key=key, google_calendar_id=f"{key}@g", kind="room"))

    def event(key: str, eid: str, days_ago: int) -> MirrorEvent:
        end = NOW - timedelta(days=days_ago)
        return MirrorEvent(
            calendar_key=key, external_id=eid, google_calendar_id="g", start=end - timedelta(hours=1), end=end
        )

    store.put_events(
        [event("k1", "old1", 200), event("k1", "new1", 10), event("k2", "old2", 300), event("k2", "old3", 190)]
    )
    cutoff = NOW - timedelta(days=180)
    assert store.delete_mirror_events_ended_before(cutoff, 2) == 2
    assert store.delete_mirror_events_ended_before(cutoff, 2) == 1
    assert store.delete_mirror_events_ended_before(cutoff, 2) == 0
    assert set(store.get_events("k1", ["old1", "new1"])) == {"new1"}
    assert store.get_events("k2", ["old2", "old3"]) == {}

    def conflict(cid: str, status: str, resolved: datetime | None) -> Conflict:
        return Conflict(
            id=cid,
            kind="moved_in_google",
            calendar_key="k1",
            event_id="e",
            suggestion="s",
            status=status,  # type: ignore[arg-type]
            detected_at=NOW - timedelta(days=300),
            resolved_at=resolved,
        )

    store.put_conflicts(
        [
            conflict("old", "resolved", NOW - timedelta(days=100)),
            conflict("recent", "resolved", NOW - timedelta(days=1)),
            conflict("open", "open", None),
        ]
    )
    assert store.delete_resolved_conflicts_before(NOW - timedelta(days=90), 100) == 1
    assert set(store.get_conflicts(["old", "recent", "open"])) == {"recent", "open"}
