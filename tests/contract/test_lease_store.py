"""``ports.LeaseStore`` contract: lease renewal and the lease-fenced sync writes (memory and Firestore).

The fenced writes span the calendar record, its lease and its cursor, so these run on the composite
store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calsync import errors
from calsync.model import CalendarRecord, SyncCursor
from calsync.ports import PublishStore
from calsync.ports.queries import SyncCommit

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _cursor(seen: int, *, page_token: str | None = "p2", next_sync_token: str | None = None) -> SyncCursor:
    return SyncCursor(
        calendar_key="k",
        cursor_id="c1",
        mode="full",
        page_token=page_token,
        next_sync_token=next_sync_token,
        query_version="1",
        seen_ids=[f"ev{i:06d}" for i in range(seen)],
        pages=2,
        started_at=NOW,
        saves=1,
    )


@pytest.fixture
def store(state_store: PublishStore) -> PublishStore:
    state_store.put_calendar(CalendarRecord(key="k", google_calendar_id="g", kind="room", sync_token="old"))
    return state_store


def test_renewal_extends_only_a_live_lease_of_its_holder(store: PublishStore) -> None:
    assert store.lock_expires_at("k") is None
    assert not store.renew_lock("k", "a", lease_s=60, now=NOW)  # no lease: nothing to renew
    assert store.acquire_lock("k", "a", lease_s=60, now=NOW)
    assert store.renew_lock("k", "a", lease_s=60, now=NOW + timedelta(seconds=50))
    assert store.lock_expires_at("k") == NOW + timedelta(seconds=110)
    assert not store.acquire_lock("k", "b", lease_s=60, now=NOW + timedelta(seconds=100))  # renewed: still a's
    assert not store.renew_lock("k", "b", lease_s=60, now=NOW + timedelta(seconds=100))  # not b's to renew
    assert store.renew_lock("k", "a", lease_s=60, now=NOW + timedelta(seconds=100))  # pending kept ...
    assert store.release_lock("k", "a", lease_s=60, now=NOW + timedelta(seconds=101))  # ... and honoured
    assert not store.renew_lock("k", "a", lease_s=60, now=NOW + timedelta(seconds=500))  # expired: lost


def test_a_lease_taken_over_refuses_its_old_holder(store: PublishStore) -> None:
    assert store.acquire_lock("k", "a", lease_s=60, now=NOW)
    later = NOW + timedelta(seconds=61)
    assert store.acquire_lock("k", "b", lease_s=60, now=later)  # a's lease expired: b takes it
    assert not store.renew_lock("k", "a", lease_s=60, now=later)
    assert not store.commit_sync_state(
        SyncCommit("k", "a", now=later, calendar_fields={"sync_token": "stale"}, clear_cursor=True)
    )
    assert not store.commit_sync_state(SyncCommit("k", "a", now=later, cursor=_cursor(3)))
    record = store.get_calendar("k")
    assert record is not None
    assert record.sync_token == "old"
    assert store.get_sync_cursor("k") is None
    assert store.commit_sync_state(SyncCommit("k", "b", now=later, calendar_fields={"sync_token": "new"}))
    record = store.get_calendar("k")
    assert record is not None
    assert record.sync_token == "new"


def test_an_expired_lease_fences_even_its_own_holder(store: PublishStore) -> None:
    assert store.acquire_lock("k", "a", lease_s=60, now=NOW)
    expired = NOW + timedelta(seconds=60)
    assert not store.commit_sync_state(SyncCommit("k", "a", now=expired, calendar_fields={"sync_token": "late"}))
    record = store.get_calendar("k")
    assert record is not None
    assert record.sync_token == "old"


def test_fenced_cursor_writes_replace_and_clear_with_the_calendar_fields(store: PublishStore) -> None:
    assert store.acquire_lock("k", "a", lease_s=60, now=NOW)
    assert store.commit_sync_state(SyncCommit("k", "a", now=NOW, cursor=_cursor(12_000)))  # several seen-id chunks
    saved = store.get_sync_cursor("k")
    assert saved is not None
    assert (len(saved.seen_ids), saved.page_token, saved.saves) == (12_000, "p2", 1)
    diff_left = _cursor(3, page_token=None, next_sync_token="next")  # listing done, the diff remains
    assert store.commit_sync_state(SyncCommit("k", "a", now=NOW, cursor=diff_left))
    saved = store.get_sync_cursor("k")
    assert saved is not None
    assert (saved.seen_ids, saved.page_token, saved.next_sync_token) == (diff_left.seen_ids, None, "next")
    fields = {"sync_token": "next", "status": "ok"}
    assert store.commit_sync_state(SyncCommit("k", "a", now=NOW, calendar_fields=fields, clear_cursor=True))
    record = store.get_calendar("k")
    assert record is not None
    assert (record.sync_token, record.status) == ("next", "ok")
    assert store.get_sync_cursor("k") is None
    assert store.commit_sync_state(SyncCommit("k", "a", now=NOW, clear_cursor=True))  # no cursor: nothing to do


def test_fenced_write_to_an_unknown_calendar(state_store: PublishStore) -> None:
    assert state_store.acquire_lock("gone", "a", lease_s=60, now=NOW)
    with pytest.raises(errors.UnknownResource):
        state_store.commit_sync_state(SyncCommit("gone", "a", now=NOW, calendar_fields={"status": "ok"}))
