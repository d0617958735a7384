"""The webhook entry point through functions-framework's test client, on fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.bootstrap import Container, set_container
from calsync.config import Settings
from calsync.model import CalendarRecord, ChannelRecord
from calsync.services.channels import hash_token
from calsync.testing import FrozenClock, InMemoryStateStore, RecordingTaskQueue

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "webhook" / "main.py"
TOKEN = "n" * 43


def make_settings(**over: Any) -> Settings:
    base: dict[str, Any] = {
        "environment": "dev",
        "gcp_project": "demo-calsync",
        "control_calendar_id": "control@g",
        "webhook_url": "http://127.0.0.1:1/",
        "sync_url": "http://127.0.0.1:2/",
        "debounce_s": 30,
    }
    return Settings(**{**base, **over})


@pytest.fixture
def wired() -> Iterator[tuple[Any, InMemoryStateStore, RecordingTaskQueue, FrozenClock]]:
    clock = FrozenClock()
    store = InMemoryStateStore()
    queue = RecordingTaskQueue()
    store.put_calendar(CalendarRecord(key="room-1", google_calendar_id="room1@g", kind="room"))
    for channel_id, status in (("live", "active"), ("old", "replaced")):
        store.put_channel(
            ChannelRecord(
                channel_id=channel_id,
                calendar_key="room-1",
                resource_id="res-1",
                expiration=clock.now() + timedelta(days=7),
                token_hash=hash_token(TOKEN),
                created_at=clock.now(),
                status=status,  # type: ignore[arg-type]
            )
        )
    container = Container(make_settings(), store=store, queue=queue, clock=clock)
    set_container(container)
    client = functions_framework.create_app(target="main", source=str(SOURCE)).test_client()
    try:
        yield client, store, queue, clock
    finally:
        set_container(None)


def push_headers(channel: str = "live", number: int = 5, state: str = "exists", **over: str) -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": TOKEN,
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
        **over,
    }


def test_exists_is_200_and_enqueues(wired) -> None:
    client, _, queue, _ = wired
    response = client.post("/", headers=push_headers())
    assert response.status_code == 200
    assert [t.payload["reason"] for t in queue.tasks] == ["webhook"]


def test_status_codes(wired) -> None:
    client, _, queue, _ = wired
    assert client.post("/", headers=push_headers(**{"X-Goog-Channel-Token": "bad"})).status_code == 403
    assert client.post("/", headers=push_headers(channel="ghost")).status_code == 403
    assert client.post("/", headers=push_headers(channel="old")).status_code == 200
    assert client.post("/", headers=push_headers(number=1, state="sync")).status_code == 200
    assert client.post("/", headers=push_headers(**{"X-Goog-Message-Number": "x"})).status_code == 400
    assert client.post("/", headers=push_headers(), data=b"{}").status_code == 400
    assert client.post("/", headers=push_headers(), data=b"x" * 5000).status_code == 413
    assert client.get("/", headers=push_headers()).status_code == 405
    assert queue.tasks == []


def test_queue_down_is_503(wired) -> None:
    client, _, _, _ = wired
    from calsync import errors
    from calsync.bootstrap import get_container, set_container

    class Down:
        def enqueue(self, task: object) -> bool:
            raise errors.QueueUnavailable("down")

    set_container(get_container().replace(queue=Down()))
    assert client.post("/", headers=push_headers()).status_code == 503


def test_logs_never_carry_the_token(wired, caplog) -> None:
    client, _, _, _ = wired
    client.post("/", headers=push_headers(**{"X-Goog-Channel-Token": "s3cr3t-token-value"}))
    client.post("/", headers=push_headers())
    out = caplog.text
    assert "webhook.notification" in out
    assert "s3cr3t-token-value" not in out
    assert TOKEN not in out


_value = st.one_of(st.none(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=70))


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    channel=st.one_of(_value, st.sampled_from(["live", "old", "ghost"])),
    token=st.one_of(_value, st.just(TOKEN)),
    resource=st.one_of(_value, st.just("res-1")),
    state=st.one_of(_value, st.sampled_from(["sync", "exists", "not_exists"])),
    number=st.one_of(_value, st.integers(-3, 10**19).map(str)),
    body=st.one_of(st.just(b""), st.binary(max_size=40), st.just(b"y" * 2000)),
)
def test_property_bad_input_never_5xx_and_invalid_channel_never_enqueues(
    wired, channel, token, resource, state, number, body
) -> None:
    client, _, queue, _ = wired
    queue.pop_all()
    raw = {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-ID": resource,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": number,
    }
    response = client.post("/", headers={k: v for k, v in raw.items() if v is not None}, data=body)
    assert response.status_code < 500
    valid_channel = channel == "live" and token == TOKEN and resource == "res-1"
    if not valid_channel or body:
        assert queue.tasks == []


def test_admin_watch_route_opens_a_channel_the_webhook_accepts() -> None:
    """``POST /calendars/{key}/watch`` on the publish function opens the channel this webhook authenticates."""
    from calsync.testing import FakeCalendarApi

    clock = FrozenClock()
    store = InMemoryStateStore()
    queue = RecordingTaskQueue()
    api = FakeCalendarApi(clock)
    api.add_calendar("room1@g")
    store.put_calendar(CalendarRecord(key="room-1", google_calendar_id="room1@g", kind="room"))
    container = Container(
        make_settings(admin_token="admin-token-for-tests-0123456789"),
        store=store,
        queue=queue,
        clock=clock,
        calendar_api=api,
    )
    set_container(container)
    try:
        publish = functions_framework.create_app(target="main", source=str(SOURCE.parents[1] / "publish" / "main.py"))
        auth = {"Authorization": "Bearer admin-token-for-tests-0123456789"}
        assert publish.test_client().post("/calendars/room-1/watch").status_code == 401
        response = publish.test_client().post("/calendars/room-1/watch", headers=auth)
        assert response.status_code == 201
        channel_id = response.get_json()["channel_id"]
        assert response.get_json()["channel_expires_at"]
        assert publish.test_client().post("/calendars/ghost/watch", headers=auth).status_code == 404
        assert [t.payload["reason"] for t in queue.pop_all()] == ["channel_created"]
        channel = store.get_channel(channel_id)
        assert channel is not None
        assert channel.status == "active"
    finally:
        set_container(None)
