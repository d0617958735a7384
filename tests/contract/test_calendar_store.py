"""``ports.CalendarStore`` contract: calendar records and per-calendar leases (memory and Firestore)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calsync import errors
from calsync.model import CalendarRecord
from calsync.ports import CalendarStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_calendar_round_trip_and_update(calendar_store: CalendarStore) -> None:
    store = calendar_store
    store.put_calendar(CalendarRecord(key="k", google_calendar_id="g", kind="room", created_at=NOW))
    store.update_calendar("k", {"sync_token": "t1", "last_synced_at": NOW, "counters": {"runs": 1}})
    record = store.get_calendar("k")
    assert record is not None
    assert (record.sync_token, record.last_synced_at, record.counters) == ("t1", NOW, {"runs": 1})
    assert store.get_calendar("missing") is None
    with pytest.raises(errors.UnknownResource):
        store.update_calendar("missing", {"status": "ok"})
    assert [c.key for c in store.list_calendars()] == ["k"]


def test_calendars_are_listed_by_key_and_copied_out(calendar_store: CalendarStore) -> None:
    for key in ("b", "c", "a"):
        calendar_store.put_calendar(CalendarRecord(key=key, google_calendar_id=f"{key}@g", kind="room"))
    assert [c.key for c in calendar_store.list_calendars()] == ["a", "b", "c"]
    record = calendar_store.get_calendar("a")
    assert record is not None
    record.counters["changed"] = 1  # a caller's change to its copy ...
    stored = calendar_store.get_calendar("a")
    assert stored is not None
    assert stored.counters == {}  # ... is not the store's
    calendar_store.put_calendar(CalendarRecord(key="a", google_calendar_id="new@g", kind="professional"))
    replaced = calendar_store.get_calendar("a")
    assert replaced is not None
    assert (replaced.google_calendar_id, replaced.kind) == ("new@g", "professional")


def test_lease_pending_release_and_takeover(calendar_store: CalendarStore) -> None:
    store = calendar_store
    assert store.acquire_lock("k", "a", lease_s=60, now=NOW)
    assert not store.acquire_lock("k", "b", lease_s=60, now=NOW)  # marks pending
    assert store.release_lock("k", "a", lease_s=60, now=NOW)  # pending: keep and loop once more
    assert not store.release_lock("k", "a", lease_s=60, now=NOW)  # now released
    assert store.acquire_lock("k", "b", lease_s=60, now=NOW)
    assert store.acquire_lock("k", "c", lease_s=60, now=NOW + timedelta(seconds=61))  # stale lease taken over
    assert not store.release_lock("k", "b", lease_s=60, now=NOW)  # b lost it


def test_a_holder_reacquires_its_own_lease_and_leases_are_per_calendar(calendar_store: CalendarStore) -> None:
    store = calendar_store
    assert store.acquire_lock("k1", "a", lease_s=60, now=NOW)
    assert store.acquire_lock("k1", "a", lease_s=60, now=NOW + timedelta(seconds=30))  # extends, not pending
    assert store.acquire_lock("k2", "b", lease_s=60, now=NOW)  # another calendar: free
    assert not store.release_lock("k1", "a", lease_s=60, now=NOW)  # released, nothing pending
    assert not store.release_lock("k1", "a", lease_s=60, now=NOW)  # releasing a free lease: nothing to do
    assert not store.acquire_lock("k2", "c", lease_s=60, now=NOW + timedelta(seconds=59))  # still b's


def _page_through(fetch, size: int) -> list[list[str]]:  # type: ignore[no-untyped-def]
    pages: list[list[str]] = []
    after = None
    while True:
        page = fetch(after, size)
        pages.append([c.key for c in page])
        if len(page) < size:
            return pages
        after = page[-1]


def test_calendars_synced_before_a_cutoff_come_never_synced_first_then_oldest(calendar_store: CalendarStore) -> None:
    """The poll job's query: only the due calendars, paged by cursor with no repeats or gaps."""
    synced = {
        "fresh": NOW - timedelta(minutes=5),
        "edge": NOW - timedelta(minutes=50),  # exactly at the cutoff: not before it
        "b-old": NOW - timedelta(hours=2),
        "a-old": NOW - timedelta(hours=2),
        "older": NOW - timedelta(hours=3),
        "never-z": None,
        "never-a": None,
    }
    for key, at in synced.items():
        calendar_store.put_calendar(
            CalendarRecord(key=key, google_calendar_id=f"{key}@g", kind="room", last_synced_at=at)
        )
    cutoff = NOW - timedelta(minutes=50)
    expected = ["never-a", "never-z", "older", "a-old", "b-old"]
    everything = calendar_store.list_calendars_synced_before(cutoff, limit=100)
    assert [c.key for c in everything] == expected
    assert everything[2].last_synced_at == NOW - timedelta(hours=3)
    for size in (1, 2, 3):
        pages = _page_through(
            lambda after, n: calendar_store.list_calendars_synced_before(cutoff, limit=n, after=after), size
        )
        assert [key for page in pages for key in page] == expected
        assert all(len(page) <= size for page in pages)


def test_calendars_by_status_are_paged_by_key(calendar_store: CalendarStore) -> None:
    """The renew and poll jobs' query for failed watches."""
    for key, status in [("c", "webhook_expired"), ("a", "webhook_expired"), ("b", "ok"), ("d", "webhook_expired")]:
        calendar_store.put_calendar(CalendarRecord(key=key, google_calendar_id=f"{key}@g", kind="room", status=status))  # type: ignore[arg-type]
    assert [c.key for c in calendar_store.list_calendars_by_status("webhook_expired", limit=10)] == ["a", "c", "d"]
    first = calendar_store.list_calendars_by_status("webhook_expired", limit=2)
    rest = calendar_store.list_calendars_by_status("webhook_expired", limit=2, after_key=first[-1].key)
    assert ([c.key for c in first], [c.key for c in rest]) == (["a", "c"], ["d"])
    assert calendar_store.list_calendars_by_status("error", limit=10) == []
