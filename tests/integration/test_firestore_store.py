"""What only the Firestore store has: per-environment namespaces, the schema marker, Firestore's own id
rules. What every store port promises runs on the fake and Firestore alike in ``tests/contract``."""

from __future__ import annotations

from typing import Any

import pytest

from calsync import errors
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.model import CalendarRecord


@pytest.fixture
def store(firestore_client: Any) -> FirestoreStateStore:
    return FirestoreStateStore(firestore_client, environment="dev")


def test_environments_are_isolated(firestore_client: Any, store: FirestoreStateStore) -> None:
    store.put_calendar(CalendarRecord(key="k", google_calendar_id="g", kind="room"))
    assert FirestoreStateStore(firestore_client, environment="stg").get_calendar("k") is None


def test_schema_version_is_checked(firestore_client: Any, store: FirestoreStateStore) -> None:
    store.put_calendar(CalendarRecord(key="k", google_calendar_id="g", kind="room"))
    assert firestore_client.collection("dev_meta").document("schema").get().to_dict() == {"version": 1}
    firestore_client.collection("dev_meta").document("schema").set({"version": 99})
    with pytest.raises(errors.StoreUnavailable):
        FirestoreStateStore(firestore_client, environment="dev").get_calendar("k")


def test_bad_document_ids_are_final_errors_not_outages(firestore_client: Any) -> None:
    """An id Firestore cannot hold is the caller's mistake (4xx), never a retryable store outage."""
    store = FirestoreStateStore(firestore_client, environment="dev")
    for bad in ("a/b", "__reserved__"):
        with pytest.raises(errors.InvalidRequest):
            store.get_calendar(bad)
