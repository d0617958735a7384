"""Store contract fixtures: each gives the in-memory fake, then the Firestore store on Google's emulator.

A contract test takes one of these and asserts only what the port promises, so both implementations
must pass it; a difference is a bug in the fake (it must behave like Firestore) or in the adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.cloud import firestore as gfirestore

from calsync.adapters.firestore.calendars import FirestoreCalendarStore
from calsync.adapters.firestore.channels import FirestoreChannelStore
from calsync.adapters.firestore.conflicts import FirestoreConflictStore
from calsync.adapters.firestore.directory import FirestoreDirectoryStore
from calsync.adapters.firestore.mirror import FirestoreMirrorStore
from calsync.adapters.firestore.plans import FirestorePlanStore
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.ports import (
    CalendarStore,
    ChannelStore,
    ConflictStore,
    DirectoryStore,
    MirrorStore,
    PlanStore,
    PublishStore,
)
from calsync.testing import (
    InMemoryCalendarStore,
    InMemoryChannelStore,
    InMemoryConflictStore,
    InMemoryDirectoryStore,
    InMemoryMirrorStore,
    InMemoryPlanStore,
    InMemoryStateStore,
)
from tests.conftest import PROJECT

BACKENDS = ["memory", "firestore"]
# The push state (channels, unknown channels) may live in a database of its own (the webhook's).
PUSH_BACKENDS = [*BACKENDS, "firestore-push-db"]
PUSH_DATABASE = "calsync-push"


def _store(request: pytest.FixtureRequest, memory: type[Any], firestore: type[Any]) -> Any:
    if request.param == "memory":
        return memory()
    client = request.getfixturevalue("firestore_client")
    if request.param == "firestore-push-db":
        return firestore(client, environment="dev", push_client=request.getfixturevalue("push_db_client"))
    return firestore(client, environment="dev")


@pytest.fixture
def push_db_client(firestore_emulator: str) -> Iterator[Any]:
    """A client on the push database of Google's Firestore emulator, wiped before the test."""
    url = f"http://{firestore_emulator}/emulator/v1/projects/{PROJECT}/databases/{PUSH_DATABASE}/documents"
    requests.delete(url, timeout=60).raise_for_status()
    client = gfirestore.Client(project=PROJECT, database=PUSH_DATABASE)
    yield client
    client.close()


@pytest.fixture(params=BACKENDS)
def calendar_store(request: pytest.FixtureRequest) -> CalendarStore:
    """``ports.CalendarStore``: calendars and leases."""
    store: CalendarStore = _store(request, InMemoryCalendarStore, FirestoreCalendarStore)
    return store


@pytest.fixture(params=BACKENDS)
def mirror_store(request: pytest.FixtureRequest) -> MirrorStore:
    """``ports.MirrorStore``: mirror events and sync cursors."""
    store: MirrorStore = _store(request, InMemoryMirrorStore, FirestoreMirrorStore)
    return store


@pytest.fixture(params=BACKENDS)
def conflict_store(request: pytest.FixtureRequest) -> ConflictStore:
    """``ports.ConflictStore``."""
    store: ConflictStore = _store(request, InMemoryConflictStore, FirestoreConflictStore)
    return store


@pytest.fixture(params=PUSH_BACKENDS)
def channel_store(request: pytest.FixtureRequest) -> ChannelStore:
    """``ports.ChannelStore``: channels, notification bookkeeping, unknown channels."""
    store: ChannelStore = _store(request, InMemoryChannelStore, FirestoreChannelStore)
    return store


@pytest.fixture(params=BACKENDS)
def plan_store(request: pytest.FixtureRequest) -> PlanStore:
    """``ports.PlanStore``: plans, progress and the quota timeline."""
    store: PlanStore = _store(request, InMemoryPlanStore, FirestorePlanStore)
    return store


@pytest.fixture(params=BACKENDS)
def directory_store(request: pytest.FixtureRequest) -> DirectoryStore:
    """``ports.DirectoryStore``: professionals, rooms and allocations."""
    store: DirectoryStore = _store(request, InMemoryDirectoryStore, FirestoreDirectoryStore)
    return store


@pytest.fixture(params=PUSH_BACKENDS)
def state_store(request: pytest.FixtureRequest) -> PublishStore:
    """The composite store, for behaviour that spans aggregates (retention walks the calendars)."""
    store: PublishStore = _store(request, InMemoryStateStore, FirestoreStateStore)
    return store
