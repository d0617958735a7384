"""Point 6: events.watch / channels.stop and push delivery to a real local receiver."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from .helpers import PushReceiver, calendar, control, stats, timed_event, wait_for

USER = "recepcao@clinic.example"
EVENT = timed_event("Consulta", "2030-01-07T10:00:00Z", "2030-01-07T11:00:00Z")


def _setup(base: str) -> tuple[Any, str]:
    api = calendar(base, user=USER)
    return api, api.calendars().insert(body={"summary": "Sala"}).execute()["id"]


def _watch(api: Any, cal: str, address: str, channel_id: str, **extra: Any) -> dict[str, Any]:
    body = {"id": channel_id, "type": "web_hook", "address": address, **extra}
    return dict(api.events().watch(calendarId=cal, body=body).execute())


def _reason(err: pytest.ExceptionInfo[HttpError]) -> tuple[int, str]:
    return err.value.resp.status, err.value.error_details[0]["reason"]


def test_watch_validates_the_channel(calendar_base: str, receiver: PushReceiver) -> None:
    api, cal = _setup(calendar_base)
    cases = [
        ({"id": "x" * 65, "type": "web_hook", "address": receiver.url}, (400, "invalid")),
        ({"id": "c1", "type": "email", "address": receiver.url}, (400, "invalid")),
        ({"id": "c1", "type": "web_hook"}, (400, "required")),
        ({"id": "c1", "type": "web_hook", "address": "http://example.com/hook"}, (400, "push.webhookUrlNotHttps")),
        ({"id": "c1", "type": "web_hook", "address": receiver.url, "token": "t" * 257}, (400, "invalid")),
    ]
    for body, expected in cases:
        with pytest.raises(HttpError) as err:
            api.events().watch(calendarId=cal, body=body).execute()
        assert _reason(err) == expected, body
    _watch(api, cal, receiver.url, "c" * 64)
    with pytest.raises(HttpError) as err:
        _watch(api, cal, receiver.url, "c" * 64)
    assert _reason(err) == (400, "channelIdNotUnique")
    assert _watch(api, cal, "https://hooks.clinic.example/calendar", "https-ok", type="webhook")["id"] == "https-ok"


def test_watch_answer_and_ttl(calendar_base: str, receiver: PushReceiver) -> None:
    api, cal = _setup(calendar_base)
    before_ms = int(time.time() * 1000)
    channel = _watch(api, cal, receiver.url, "default-ttl", token="tok-1")
    assert channel["kind"] == "api#channel"
    assert (channel["id"], channel["token"]) == ("default-ttl", "tok-1")
    assert channel["resourceId"]
    assert cal in channel["resourceUri"]
    assert isinstance(channel["expiration"], str)
    assert int(channel["expiration"]) - before_ms >= 604800 * 1000 - 5000
    short = _watch(api, cal, receiver.url, "short-ttl", params={"ttl": "60"})
    assert int(short["expiration"]) <= int(time.time() * 1000) + 60_000
    assert short["resourceId"] == channel["resourceId"]  # stable per watched collection


def test_sync_then_exists_messages_with_googles_headers(calendar_base: str, receiver: PushReceiver) -> None:
    api, cal = _setup(calendar_base)
    channel = _watch(api, cal, receiver.url, "chan-1", token="secret-token")
    wait_for(lambda: receiver.states() == ["sync"])
    ev = api.events().insert(calendarId=cal, body=EVENT).execute()
    api.events().delete(calendarId=cal, eventId=ev["id"]).execute()
    wait_for(lambda: receiver.states() == ["sync", "exists", "exists"])
    numbers = [int(r.headers["X-Goog-Message-Number"]) for r in receiver.received]
    assert numbers[0] == 1
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3
    for msg in receiver.received:
        h = msg.headers
        assert msg.body == b""
        assert h["User-Agent"] == "APIs-Google"
        assert h["X-Goog-Channel-ID"] == "chan-1"
        assert h["X-Goog-Channel-Token"] == "secret-token"
        assert h["X-Goog-Resource-ID"] == channel["resourceId"]
        assert h["X-Goog-Resource-URI"] == channel["resourceUri"]
        expires = parsedate_to_datetime(h["X-Goog-Channel-Expiration"])
        assert int(expires.timestamp()) == int(channel["expiration"]) // 1000
        assert h["X-Goog-Channel-Expiration"].endswith(" GMT")
    assert stats(calendar_base)["push"]["deliveries"] == 3


def test_no_token_header_when_channel_has_no_token(calendar_base: str, receiver: PushReceiver) -> None:
    api, cal = _setup(calendar_base)
    _watch(api, cal, receiver.url, "no-token")
    wait_for(lambda: len(receiver.received) == 1)
    assert "X-Goog-Channel-Token" not in receiver.received[0].headers


def test_503_is_retried_and_400_is_a_failure(calendar_base: str, receiver: PushReceiver) -> None:
    api, cal = _setup(calendar_base)
    receiver.statuses = [503, 503]
    _watch(api, cal, receiver.url, "retry-me")
    wait_for(lambda: receiver.states() == ["sync"])
    assert receiver.attempts == 3
    counted = stats(calendar_base)["push"]
    assert (counted["deliveries"], counted["retries"], counted["failures"]) == (1, 2, 0)

    receiver.statuses = [400]
    api.events().insert(calendarId=cal, body=EVENT).execute()
    wait_for(lambda: stats(calendar_base)["push"]["failures"] == 1)
    assert receiver.attempts == 4  # not retried
    assert receiver.states() == ["sync"]


def test_stopped_and_expired_channels_stop_delivering(calendar_base: str, receiver: PushReceiver) -> None:
    api, cal = _setup(calendar_base)
    stopped = _watch(api, cal, f"{receiver.url}/stopped", "stopped")
    _watch(api, cal, f"{receiver.url}/expiring", "expiring", params={"ttl": "1"})
    _watch(api, cal, f"{receiver.url}/live", "live")
    wait_for(lambda: len(receiver.received) == 3)
    api.channels().stop(body={"id": "stopped", "resourceId": stopped["resourceId"]}).execute()
    time.sleep(1.1)  # let the one-second channel expire
    api.events().insert(calendarId=cal, body=EVENT).execute()
    wait_for(lambda: len(receiver.received) == 4)
    assert receiver.received[-1].path.endswith("/live")
    assert receiver.received[-1].headers["X-Goog-Resource-State"] == "exists"

    with pytest.raises(HttpError) as err:
        api.channels().stop(body={"id": "stopped", "resourceId": stopped["resourceId"]}).execute()
    assert _reason(err) == (404, "notFound")
    with pytest.raises(HttpError) as err:
        api.channels().stop(body={"id": "never-created", "resourceId": stopped["resourceId"]}).execute()
    assert _reason(err) == (404, "notFound")


def test_push_is_asynchronous(calendar_base: str, receiver: PushReceiver) -> None:
    api, cal = _setup(calendar_base)
    receiver.statuses = [503, 503, 503]  # the receiver fails for ~1.4 s of backoff
    _watch(api, cal, receiver.url, "slow")
    # The API keeps answering while deliveries are being retried in the background.
    api.events().insert(calendarId=cal, body=EVENT).execute()
    assert receiver.received == []
    wait_for(lambda: receiver.states() == ["sync", "exists"])


def test_chaos_modes_drop_duplicate_reorder_delay(calendar_base: str, receiver: PushReceiver) -> None:
    api = calendar(calendar_base, user=USER)
    # One calendar per mode, so a message held by one mode never reaches another mode's channel.
    cals = {m: api.calendars().insert(body={"summary": m}).execute()["id"] for m in ("drop", "dup", "reorder", "delay")}
    control(calendar_base, "push", {"mode": "drop", "rate": 1.0})
    _watch(api, cals["drop"], f"{receiver.url}/drop", "drop")
    api.events().insert(calendarId=cals["drop"], body=EVENT).execute()
    assert stats(calendar_base)["push"]["dropped"] == 2

    control(calendar_base, "push", {"mode": "duplicate", "rate": 1.0})
    _watch(api, cals["dup"], f"{receiver.url}/dup", "dup")
    wait_for(lambda: receiver.states() == ["sync", "sync"])

    control(calendar_base, "push", {"mode": "reorder", "rate": 1.0, "delay_ms": 5000})
    _watch(api, cals["reorder"], f"{receiver.url}/reorder", "reorder")
    api.events().insert(calendarId=cals["reorder"], body=EVENT).execute()
    wait_for(lambda: len([r for r in receiver.received if r.path.endswith("/reorder")]) == 2)
    reordered = [r.headers["X-Goog-Resource-State"] for r in receiver.received if r.path.endswith("/reorder")]
    assert reordered == ["exists", "sync"]

    control(calendar_base, "push", {"mode": "delay", "rate": 1.0, "delay_ms": 100})
    _watch(api, cals["delay"], f"{receiver.url}/delay", "delay")
    wait_for(lambda: any(r.path.endswith("/delay") for r in receiver.received))
    assert not any(r.path.endswith("/drop") for r in receiver.received)
