"""FirestoreStateStore edges on Google's Firestore emulator: the shared pacing timeline, bad ids."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calsync import errors
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.model import MirrorEvent, PublishedSnapshot


def test_concurrent_reservations_get_disjoint_windows(firestore_client: Any) -> None:
    store = FirestoreStateStore(firestore_client, environment="dev")
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
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


def test_bad_document_ids_are_final_errors_not_outages(firestore_client: Any) -> None:
    """An id Firestore cannot hold is the caller's mistake (4xx), never a retryable store outage."""
    store = FirestoreStateStore(firestore_client, environment="dev")
    for bad in ("a/b", "__reserved__"):
        with pytest.raises(errors.InvalidRequest):
            store.get_calendar(bad)


def _mirror(etag: str, updated: datetime, published: str | None) -> MirrorEvent:
    return MirrorEvent(
        calendar_key="room-1",
        external_id="evt00001",
        google_calendar_id="room-1@group.calendar.google.com",
        etag=etag,
        updated=updated,
        origin="system",
        source_of_truth="backend",
        published=PublishedSnapshot(etag=published) if published else None,
    )


def test_a_sync_merge_never_puts_an_old_snapshot_back(firestore_client: Any) -> None:
    store = FirestoreStateStore(firestore_client, environment="dev")
    t0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
    store.record_published([_mirror('"2"', t0, published='"2"')])  # the apply recorded its write
    store.merge_observed_events([_mirror('"1"', t0 - timedelta(minutes=1), published=None)])  # a late sync
    stored = store.get_events("room-1", ["evt00001"])["evt00001"]
    assert stored.etag == '"1"'  # content as the sync observed it (the next sync brings "2" back) ...
    assert stored.published is not None
    assert stored.published.etag == '"2"'  # ... but the snapshot of what we published survives


def test_recording_a_write_never_rolls_the_mirror_back_behind_google(firestore_client: Any) -> None:
    store = FirestoreStateStore(firestore_client, environment="dev")
    t0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
    store.merge_observed_events([_mirror('"3"', t0 + timedelta(seconds=5), published=None)])  # a person's edit
    stored = store.record_published([_mirror('"2"', t0, published='"2"')])["evt00001"]
    assert stored.etag == '"3"'  # the person's newer version stays
    assert stored.published is not None
    assert stored.published.etag == '"2"'  # and what we published is recorded
    assert store.get_events("room-1", ["evt00001"])["evt00001"] == stored
