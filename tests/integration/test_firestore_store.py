"""FirestoreStateStore on Google's Firestore emulator: round trips, leases, cursors, pages, schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calsync import errors
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.model import CalendarRecord, ChannelRecord, Conflict, MirrorEvent, SyncCursor

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(firestore_client: Any) -> FirestoreStateStore:
    return FirestoreStateStore(firestore_client, environment="dev")


def mirror(event_id: str, hours: int, *, origin: str = "manual", status: str = "confirmed") -> MirrorEvent:
    start = NOW + timedelta(hours=hours)
    return MirrorEvent(
        calendar_key="k",
        external_id=event_id,
        google_calendar_id="g",
        etag='"1"',
        start=start,
        end=start + timedelta(hours=1),
        origin=origin,
        status=status,  # type: ignore[arg-type]
    )


def test_calendar_round_trip_and_update(store: FirestoreStateStore) -> None:
    store.put_calendar(CalendarRecord(key="k", google_calendar_id="g", kind="room", created_at=NOW))
    store.update_calendar("k", {"sync_token": "t1", "last_synced_at": NOW, "counters": {"runs": 1}})
    record = store.get_calendar("k")
    assert record is not None
    assert (record.sync_token, record.last_synced_at, record.counters) == ("t1", NOW, {"runs": 1})
    assert store.get_calendar("missing") is None
    with pytest.raises(errors.UnknownResource):
        store.update_calendar("missing", {"status": "ok"})
    assert [c.key for c in store.list_calendars()] == ["k"]


def test_environments_are_isolated(firestore_client: Any, store: FirestoreStateStore) -> None:
    store.put_calendar(CalendarRecord(key="k", google_calendar_id="g", kind="room"))
    assert FirestoreStateStore(firestore_client, environment="stg").get_calendar("k") is None


def test_lease_pending_release_and_takeover(store: FirestoreStateStore) -> None:
    assert store.acquire_lock("k", "a", lease_s=60, now=NOW)
    assert not store.acquire_lock("k", "b", lease_s=60, now=NOW)  # marks pending
    assert store.release_lock("k", "a", lease_s=60, now=NOW)  # pending: keep and loop once more
    assert not store.release_lock("k", "a", lease_s=60, now=NOW)  # now released
    assert store.acquire_lock("k", "b", lease_s=60, now=NOW)
    assert store.acquire_lock("k", "c", lease_s=60, now=NOW + timedelta(seconds=61))  # stale lease taken over
    assert not store.release_lock("k", "b", lease_s=60, now=NOW)  # b lost it


def test_mirror_batches_windows_and_pages(store: FirestoreStateStore) -> None:
    events = [mirror(f"ev{i:04d}", i) for i in range(620)]  # > one 500-write batch
    events[3] = mirror("ev0003", 3, status="cancelled")
    events[5] = mirror("ev0005", 5, origin="system")
    store.put_events(events)
    got = store.get_events("k", ["ev0001", "ev0619", "nope"])
    assert set(got) == {"ev0001", "ev0619"}
    assert got["ev0619"].start == NOW + timedelta(hours=619)
    window = store.window_event_ids("k", NOW + timedelta(hours=2), NOW + timedelta(hours=6))
    assert window == {"ev0002", "ev0004", "ev0005"}  # ev0001 ends at time_min (exclusive); ev0003 cancelled
    assert [e.external_id for e in store.system_events_overlapping("k", NOW, NOW + timedelta(days=1))] == ["ev0005"]
    seen: list[str] = []
    token = None
    while True:
        page, token = store.list_mirror_events(
            "k", time_min=NOW, time_max=NOW + timedelta(hours=30), page_size=7, page_token=token
        )
        seen.extend(e.external_id for e in page)
        if token is None:
            break
    assert seen == [f"ev{i:04d}" for i in range(30) if i != 3]


def test_cursor_round_trip_with_many_seen_ids(store: FirestoreStateStore) -> None:
    ids = [f"id{i:06d}" for i in range(12_000)]
    cursor = SyncCursor(
        calendar_key="k",
        cursor_id="c1",
        mode="full",
        page_token="p",
        query_version="1",
        seen_ids=ids,
        started_at=NOW,
        time_min=NOW,
        time_max=NOW + timedelta(days=1),
    )
    store.put_sync_cursor(cursor)
    loaded = store.get_sync_cursor("k")
    assert loaded is not None
    assert loaded.seen_ids == ids
    assert loaded.page_token == "p"
    store.delete_sync_cursor("k")
    assert store.get_sync_cursor("k") is None


def test_conflicts_and_channels(store: FirestoreStateStore) -> None:
    conflicts = [
        Conflict(
            id=f"c{i}",
            kind="moved_in_google",
            calendar_key="k",
            event_id=f"e{i}",
            suggestion="s",
            detected_at=NOW,
            status="open" if i % 2 else "resolved",
        )
        for i in range(7)
    ]
    store.put_conflicts(conflicts)
    assert set(store.get_conflicts(["c1", "c2", "zz"])) == {"c1", "c2"}
    got: list[str] = []
    token = None
    while True:
        page, token = store.list_conflicts("k", status="open", page_size=2, page_token=token)
        got.extend(c.id for c in page)
        if token is None:
            break
    assert got == ["c1", "c3", "c5"]
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


def test_schema_version_is_checked(firestore_client: Any, store: FirestoreStateStore) -> None:
    store.put_calendar(CalendarRecord(key="k", google_calendar_id="g", kind="room"))
    assert firestore_client.collection("dev_meta").document("schema").get().to_dict() == {"version": 1}
    firestore_client.collection("dev_meta").document("schema").set({"version": 99})
    with pytest.raises(errors.StoreUnavailable):
        FirestoreStateStore(firestore_client, environment="dev").get_calendar("k")
