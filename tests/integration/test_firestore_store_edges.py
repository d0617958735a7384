"""FirestoreStateStore edges on Google's Firestore emulator: the shared pacing timeline, bad ids."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calsync import errors
from calsync.adapters.firestore_store import FirestoreStateStore


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
