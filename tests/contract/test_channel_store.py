"""``ports.ChannelStore`` contract: channels, notification compare-and-set, unknown channels (memory and
Firestore)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from calsync.model import ChannelRecord
from calsync.ports import ChannelStore
from calsync.ports.queries import UnknownChannelSeen

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def channel(
    channel_id: str, key: str = "k1", status: str = "active", *, expiration: datetime | None = None
) -> ChannelRecord:
    return ChannelRecord(
        channel_id=channel_id,
        calendar_key=key,
        resource_id="res",
        expiration=expiration or NOW + timedelta(days=7),
        token_hash="h",
        created_at=NOW,
        status=status,  # type: ignore[arg-type]
    )


def test_channel_round_trip_and_active_channel(channel_store: ChannelStore) -> None:
    store = channel_store
    store.put_channel(
        ChannelRecord(
            channel_id="ch1",
            calendar_key="k",
            resource_id="r",
            token_hash="h",
            created_at=NOW,
            expiration=NOW + timedelta(days=7),
        )
    )
    active = store.active_channel("k")
    assert active is not None
    assert active.expiration == NOW + timedelta(days=7)
    assert store.active_channel("other") is None
    assert store.get_channel("ch1") == active
    assert store.get_channel("nope") is None


def test_the_active_channel_is_the_latest_expiring_active_one(channel_store: ChannelStore) -> None:
    store = channel_store
    store.put_channel(channel("old", expiration=NOW + timedelta(days=1)))
    store.put_channel(channel("new", expiration=NOW + timedelta(days=6)))
    store.put_channel(channel("gone", status="replaced", expiration=NOW + timedelta(days=9)))
    unknown = channel("noexp").model_copy(update={"expiration": None, "created_at": NOW + timedelta(days=30)})
    store.put_channel(unknown.model_copy(update={"channel_id": "noexp0", "created_at": NOW}))
    store.put_channel(unknown)  # no expiration: never preferred to one that has one
    active = store.active_channel("k1")
    assert active is not None
    assert active.channel_id == "new"
    store.put_channel(channel("new", status="replaced"))
    store.put_channel(channel("old", status="replaced"))
    only = store.active_channel("k1")
    assert only is not None
    assert only.channel_id == "noexp"  # none expires: the latest created


def test_channel_queries(channel_store: ChannelStore) -> None:
    store = channel_store
    for record in (channel("a"), channel("b", status="replaced"), channel("c", key="k2")):
        store.put_channel(record)
    assert sorted(c.channel_id for c in store.list_channels_for_calendar("k1")) == ["a", "b"]
    assert sorted(c.channel_id for c in store.list_active_channels()) == ["a", "c"]


def test_record_notification_is_compare_and_set(channel_store: ChannelStore) -> None:
    store = channel_store
    store.put_channel(channel("a"))
    assert store.record_notification("a", 3, NOW, enqueued_bucket=10)
    assert not store.record_notification("a", 3, NOW + timedelta(seconds=1))
    assert not store.record_notification("a", 2, NOW + timedelta(seconds=1))
    assert store.record_notification("a", 9, NOW + timedelta(seconds=2))
    stored = store.get_channel("a")
    assert stored is not None
    assert (stored.last_message_number, stored.last_enqueued_bucket) == (9, 10)
    assert stored.last_webhook_at == NOW + timedelta(seconds=2)
    assert not store.record_notification("ghost", 5, NOW)
    assert store.record_notification("a", 10, NOW, enqueued_bucket=4)  # the bucket never moves back
    stored = store.get_channel("a")
    assert stored is not None
    assert stored.last_enqueued_bucket == 10


def test_concurrent_duplicates_record_once(channel_store: ChannelStore) -> None:
    store = channel_store
    store.put_channel(channel("a"))
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: store.record_notification("a", 7, NOW), range(3)))
    assert results.count(True) == 1


def _unknown(store: ChannelStore, channel_id: str, resource_id: str | None, at: datetime, cap: int = 1000) -> bool:
    return store.record_unknown_channel(
        UnknownChannelSeen(
            channel_id,
            resource_id,
            at,
            min_interval_s=3600,
            expire_at=at + timedelta(days=7),
            max_records=cap,
        )
    )


def test_unknown_channel_recorded_rate_limited(channel_store: ChannelStore) -> None:
    store = channel_store
    assert _unknown(store, "x", "res-x", NOW)
    assert not _unknown(store, "x", "res-x", NOW + timedelta(minutes=5))
    assert _unknown(store, "x", None, NOW + timedelta(hours=2))
    assert _unknown(store, "y", None, NOW + timedelta(minutes=5))  # per id
    by_id = {u.channel_id: u for u in store.list_unknown_channels()}
    assert by_id["x"].count == 2
    assert by_id["x"].resource_id == "res-x"
    assert by_id["x"].expire_at == NOW + timedelta(hours=2, days=7)  # pushed back by the latest write
    assert by_id["y"].expire_at == NOW + timedelta(minutes=5, days=7)


@pytest.mark.parametrize("channel_id", ["a/b", "a/b/c", "__x__", "=/+", "-" * 64])
def test_unknown_ids_in_googles_alphabet_are_recorded_whatever_their_shape(
    channel_store: ChannelStore, channel_id: str
) -> None:
    """Google's alphabet allows ids no Firestore document can be named by: they are unknown, and recorded."""
    assert channel_store.get_channel(channel_id) is None
    assert not channel_store.record_notification(channel_id, 3, NOW)
    assert _unknown(channel_store, channel_id, "res", NOW)
    assert [u.channel_id for u in channel_store.list_unknown_channels()] == [channel_id]


def test_unknown_channel_records_are_capped(channel_store: ChannelStore) -> None:
    """Callers choose the ids: however many they send, at most ``max_records`` records are kept."""
    for i in range(40):
        assert _unknown(channel_store, f"junk-{i}", None, NOW + timedelta(seconds=i), cap=8)
    kept = channel_store.list_unknown_channels()
    assert 1 <= len(kept) <= 8
    assert "junk-39" in {u.channel_id for u in kept}  # the newest displaces an older one
    assert all(u.expire_at is not None for u in kept)


def test_active_channels_expiring_before_a_cutoff_are_paged_by_expiration(channel_store: ChannelStore) -> None:
    """The renew job's query: active channels expiring (or lapsed) before the cutoff, none other."""
    store = channel_store
    store.put_channel(channel("late", expiration=NOW + timedelta(days=5)))
    store.put_channel(channel("soon", expiration=NOW + timedelta(hours=3)))
    store.put_channel(channel("lapsed", expiration=NOW - timedelta(hours=1)))
    store.put_channel(channel("tie-b", expiration=NOW + timedelta(hours=6)))
    store.put_channel(channel("tie-a", expiration=NOW + timedelta(hours=6)))
    store.put_channel(channel("replaced", status="replaced", expiration=NOW))
    store.put_channel(channel("noexp").model_copy(update={"expiration": None}))
    cutoff = NOW + timedelta(days=1)
    expected = ["lapsed", "soon", "tie-a", "tie-b"]
    assert [c.channel_id for c in store.list_active_channels_expiring_before(cutoff, limit=10)] == expected
    for size in (1, 3):
        seen: list[str] = []
        after = None
        while True:
            page = store.list_active_channels_expiring_before(cutoff, limit=size, after=after)
            seen += [c.channel_id for c in page]
            if len(page) < size:
                break
            after = page[-1]
        assert seen == expected
    soon = store.list_active_channels_expiring_before(NOW + timedelta(hours=4), limit=10)
    assert [(c.channel_id, c.expiration) for c in soon] == [
        ("lapsed", NOW - timedelta(hours=1)),
        ("soon", NOW + timedelta(hours=3)),
    ]
