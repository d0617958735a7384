"""The push state in its own Firestore database, on Google's Firestore emulator.

Does the emulator support named databases? Yes: a client with ``database="calsync-push"`` reads and
writes a database of its own, invisible to the default one (this file shows it). With
``Settings.firestore_push_database`` set, channels and unknown-channel records live there and the
webhook function touches nothing else: after serving notifications, the main database holds no
document the webhook wrote or read (not even the schema marker), which is what lets Terraform grant
its identity that database only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
import requests
from google.cloud import firestore

from calsync.bootstrap import Container, set_container
from calsync.config import Settings
from calsync.model import CalendarRecord, ChannelRecord
from calsync.services.channels import hash_token
from calsync.testing import FrozenClock, RecordingTaskQueue
from tests.conftest import PROJECT

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "webhook" / "main.py"
PUSH_DB = "calsync-push"
TOKEN = "n" * 43
LIVE = "a" * 32


@pytest.fixture
def push_client(firestore_emulator: str) -> Iterator[Any]:
    """A client on the named database, wiped before the test."""
    url = f"http://{firestore_emulator}/emulator/v1/projects/{PROJECT}/databases/{PUSH_DB}/documents"
    requests.delete(url, timeout=60).raise_for_status()
    client = firestore.Client(project=PROJECT, database=PUSH_DB)
    yield client
    client.close()


def settings(**extra: Any) -> Settings:
    return Settings(
        environment="dev",
        gcp_project=PROJECT,
        control_calendar_id="control@g",
        webhook_url="http://127.0.0.1:1/",
        sync_url="http://127.0.0.1:2/",
        **extra,
    )


def documents(client: Any) -> list[str]:
    return sorted(f"{c.id}/{d.id}" for c in client.collections() for d in c.stream())


def test_the_emulator_keeps_named_databases_apart(firestore_client: Any, push_client: Any) -> None:
    push_client.collection("probe").document("x").set({"where": "push"})
    assert firestore_client.collection("probe").document("x").get().exists is False
    assert push_client.collection("probe").document("x").get().to_dict() == {"where": "push"}


def test_push_state_goes_to_its_database_and_the_rest_stays(firestore_client: Any, push_client: Any) -> None:
    clock = FrozenClock()
    store = Container(settings(firestore_push_database=PUSH_DB)).store
    store.put_calendar(CalendarRecord(key="room-1", google_calendar_id="room1@g", kind="room"))
    channel = ChannelRecord(
        channel_id=LIVE,
        calendar_key="room-1",
        resource_id="res-1",
        expiration=clock.now() + timedelta(days=7),
        token_hash=hash_token(TOKEN),
        created_at=clock.now(),
    )
    store.put_channel(channel)
    assert store.active_channel("room-1") == channel
    assert documents(push_client) == [f"dev_channels/{LIVE}", "dev_meta/schema"]
    assert documents(firestore_client) == ["dev_calendars/room-1", "dev_meta/schema"]


def test_the_webhook_reads_and_writes_only_the_push_database(firestore_client: Any, push_client: Any) -> None:
    clock = FrozenClock()
    config = settings(firestore_push_database=PUSH_DB)
    Container(config).store.put_channel(
        ChannelRecord(
            channel_id=LIVE,
            calendar_key="room-1",
            resource_id="res-1",
            expiration=clock.now() + timedelta(days=7),
            token_hash=hash_token(TOKEN),
            created_at=clock.now(),
        )
    )
    queue = RecordingTaskQueue()
    set_container(Container(config, queue=queue, clock=clock))
    try:
        app = functions_framework.create_app(target="main", source=str(SOURCE)).test_client()
        base = {"X-Goog-Channel-Token": TOKEN, "X-Goog-Resource-ID": "res-1", "X-Goog-Resource-State": "exists"}
        known = app.post("/", headers={**base, "X-Goog-Channel-ID": LIVE, "X-Goog-Message-Number": "5"})
        unknown = app.post("/", headers={**base, "X-Goog-Channel-ID": "b" * 32, "X-Goog-Message-Number": "1"})
    finally:
        set_container(None)
    assert known.status_code < 300, known.text
    assert unknown.status_code < 500, unknown.text
    assert len(queue.tasks) == 1
    assert documents(firestore_client) == [], "the webhook touched the main database"
    assert f"dev_channels/{LIVE}" in documents(push_client)
    assert any(d.startswith("dev_unknown_channels/") for d in documents(push_client))
