"""The webhook function (functions-framework test client) on Google's Firestore emulator.

Unauthenticated callers choose every ``X-Goog-*`` header: ids Firestore cannot name a document with
(``/``, ``__x__``, ``..``) must be refused like any unknown channel, repeated unknown ids must be
answered from the process's negative cache without a store read, and the unknown-channel records they
leave are capped and carry the expiry Firestore's TTL policy deletes them by.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.bootstrap import Container, set_container
from calsync.config import Settings
from calsync.model import CalendarRecord, ChannelRecord
from calsync.services.channels import hash_token
from calsync.testing import FrozenClock, RecordingTaskQueue

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "webhook" / "main.py"
TOKEN = "n" * 43
LIVE = "a" * 32


class CountingStore(FirestoreStateStore):
    """The Firestore store, counting channel reads (what each junk notification costs)."""

    channel_reads = 0

    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """Count, then read from Firestore."""
        self.channel_reads += 1
        return super().get_channel(channel_id)


@pytest.fixture
def webhook(firestore_client: Any) -> Iterator[tuple[Any, CountingStore, RecordingTaskQueue, FrozenClock]]:
    clock = FrozenClock()
    store = CountingStore(firestore_client, environment="dev")
    queue = RecordingTaskQueue()
    store.put_calendar(CalendarRecord(key="room-1", google_calendar_id="room1@g", kind="room"))
    store.put_channel(
        ChannelRecord(
            channel_id=LIVE,
            calendar_key="room-1",
            resource_id="res-1",
            expiration=clock.now() + timedelta(days=7),
            token_hash=hash_token(TOKEN),
            created_at=clock.now(),
        )
    )
    settings = Settings(
        environment="dev",
        gcp_project="demo-calsync",
        control_calendar_id="control@g",
        webhook_url="http://127.0.0.1:1/",
        sync_url="http://127.0.0.1:2/",
    )
    set_container(Container(settings, store=store, queue=queue, clock=clock))
    app = functions_framework.create_app(target="main", source=str(SOURCE))
    try:
        yield app.test_client(), store, queue, clock
    finally:
        set_container(None)


def headers(channel: str, number: int = 5, state: str = "exists") -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": TOKEN,
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
    }


@pytest.mark.parametrize("channel", ["a/b", "a/b/c", "__x__", "__channels__", "=", "/", "+/=" * 21, "-" * 64])
def test_ids_firestore_cannot_hold_are_unknown_not_5xx(webhook: Any, channel: str) -> None:
    client, store, queue, _ = webhook
    response = client.post("/", headers=headers(channel))
    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.get_json() == {"result": "unknown_channel"}
    assert queue.tasks == []
    assert store.get_channel(LIVE) is not None


@pytest.mark.parametrize("channel", ["..", ".", "a b", "a" * 65, "", "é"])
def test_ids_outside_googles_alphabet_are_400(webhook: Any, channel: str) -> None:
    client, store, _, _ = webhook
    response = client.post("/", headers=headers(channel))
    assert response.status_code == 400
    assert response.get_json() == {"result": "malformed_headers"}
    assert store.channel_reads == 0


def test_live_channel_still_enqueues(webhook: Any) -> None:
    client, _, queue, _ = webhook
    assert client.post("/", headers=headers(LIVE)).status_code == 200
    assert len(queue.tasks) == 1


def test_repeated_unknown_id_is_answered_without_a_store_read(webhook: Any) -> None:
    client, store, _, clock = webhook
    for number in range(1, 6):
        assert client.post("/", headers=headers("b" * 32, number)).status_code == 403
        clock.advance(1)
    assert store.channel_reads == 1
    recorded = store.list_unknown_channels()
    assert [u.channel_id for u in recorded] == ["b" * 32]
    assert recorded[0].expire_at is not None
    assert recorded[0].expire_at > recorded[0].last_seen_at


# Ids in Google's channel-id alphabet (the shapes Firestore cannot name a document with are likely
# here: "/", "__...__", "="), then any printable header value.
_google_id = st.from_regex(r"\A[A-Za-z0-9_\-+/=]{1,70}\Z").map(lambda v: v.rstrip("\n"))
_reserved = st.from_regex(r"\A[A-Za-z0-9]{0,20}\Z").map(lambda v: f"__{v}__")
_printable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=300)
_maybe = st.one_of(st.none(), _printable)


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    channel=st.one_of(_google_id, _reserved, _printable, st.just(LIVE)),
    token=st.one_of(_maybe, st.just(TOKEN)),
    resource=st.one_of(_maybe, st.just("res-1")),
    state=st.one_of(_maybe, st.sampled_from(["sync", "exists", "not_exists"])),
    number=st.one_of(_maybe, st.integers(-3, 10**20).map(str)),
)
def test_property_bad_headers_never_5xx_on_firestore(webhook: Any, channel, token, resource, state, number) -> None:  # type: ignore[no-untyped-def]
    client, store, queue, _ = webhook
    queue.pop_all()
    raw = {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-ID": resource,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": number,
    }
    response = client.post("/", headers={k: v for k, v in raw.items() if v is not None})
    assert response.status_code < 500, (raw, response.get_data(as_text=True))
    if channel != LIVE or token != TOKEN or resource != "res-1":
        assert response.status_code in (400, 403)
        assert queue.tasks == []
    assert len(store.list_unknown_channels()) <= 1000
