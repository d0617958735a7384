"""``GoogleCalendarApi`` against the Calendar emulator, through the real google-api-python-client.

Faults are injected with the emulator's ``/_emulator/faults``; retries sleep through a recorder, so
the tests see the waits the adapter chose without spending them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.oauth2.credentials import Credentials

from calsync import errors
from calsync.adapters.google_calendar import GoogleCalendarApi, RetryPolicy
from calsync.ports import BatchOp, ListEvents

START = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)


class SleepRecorder:
    """Stands in for ``time.sleep``: records the waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def api_for(base: str, sleeps: SleepRecorder, **kwargs: Any) -> GoogleCalendarApi:
    policy = RetryPolicy(max_attempts=kwargs.pop("max_attempts", 4), max_total_s=120, base_s=0.5, sleep=sleeps)
    return GoogleCalendarApi.for_emulator(base, retry=policy, **kwargs)


def fault(base: str, **spec: Any) -> None:
    requests.post(f"{base}/_emulator/faults", json=spec, timeout=5).raise_for_status()


def stats(base: str) -> dict[str, Any]:
    answer = requests.get(f"{base}/_emulator/stats", timeout=5)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def list_calls(base: str) -> int:
    """How many events.list requests the emulator answered (failed ones included)."""
    return int(stats(base)["requests"].get("GET /calendar/v3/calendars/{calendarId}/events", 0))


def event_body(i: int, **extra: Any) -> dict[str, Any]:
    start = START + timedelta(hours=i)
    return {
        "summary": f"Consulta {i}",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
        "extendedProperties": {"private": {"source": "agendador", "env": "dev"}},
        **extra,
    }


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def api(calendar_base: str, sleeps: SleepRecorder) -> GoogleCalendarApi:
    return api_for(calendar_base, sleeps)


@pytest.fixture
def calendar_id(api: GoogleCalendarApi) -> str:
    return api.insert_calendar("Dr. Teste", time_zone="America/Sao_Paulo")


def test_event_round_trip_with_etags(api: GoogleCalendarApi, calendar_id: str) -> None:
    created = api.insert_event(calendar_id, event_body(1, id="abcdef12345"))
    assert created.id == "abcdef12345"
    assert created.etag
    assert created.private_tags["source"] == "agendador"

    fetched = api.get_event(calendar_id, created.id)
    assert fetched.etag == created.etag

    updated = api.update_event(calendar_id, created.id, event_body(2), if_match=created.etag)
    assert updated.etag != created.etag
    assert updated.start is not None
    assert updated.start.as_utc() == START + timedelta(hours=2)

    with pytest.raises(errors.PreconditionFailed):
        api.update_event(calendar_id, created.id, event_body(3), if_match=created.etag)
    with pytest.raises(errors.PreconditionFailed):
        api.delete_event(calendar_id, created.id, if_match=created.etag)

    api.delete_event(calendar_id, created.id, if_match=updated.etag)
    assert api.get_event(calendar_id, created.id).cancelled
    with pytest.raises(errors.ResourceGone):
        api.delete_event(calendar_id, created.id)
    with pytest.raises(errors.Duplicate):
        api.insert_event(calendar_id, event_body(1, id="abcdef12345"))


def test_unknown_calendar_and_event_are_not_found(api: GoogleCalendarApi, calendar_id: str) -> None:
    with pytest.raises(errors.NotFound):
        api.get_event(calendar_id, "doesnotexist0")
    with pytest.raises(errors.NotFound):
        api.list_events(ListEvents("nobody@group.calendar.google.com"))


def test_invalid_event_id_is_a_bad_request(api: GoogleCalendarApi, calendar_id: str) -> None:
    with pytest.raises(errors.BadRequest):
        api.insert_event(calendar_id, event_body(1, id="UPPER_case_wxyz"))


def test_pages_then_incremental_sync(calendar_base: str, sleeps: SleepRecorder) -> None:
    api = api_for(calendar_base, sleeps, page_size=10)
    calendar_id = api.insert_calendar("Sala 1", time_zone="America/Sao_Paulo")
    api.execute_batch([BatchOp(kind="insert", calendar_id=calendar_id, body=event_body(i)) for i in range(25)])

    pages = [
        api.list_events(ListEvents(calendar_id, time_min=START - timedelta(days=1), time_max=START + timedelta(days=3)))
    ]
    while pages[-1].next_page_token:
        pages.append(
            api.list_events(
                ListEvents(
                    calendar_id,
                    page_token=pages[-1].next_page_token,
                    time_min=START - timedelta(days=1),
                    time_max=START + timedelta(days=3),
                )
            )
        )
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert [p.next_sync_token is not None for p in pages] == [False, False, True]
    token = pages[-1].next_sync_token
    assert token is not None

    moved = pages[0].items[0]
    api.update_event(calendar_id, moved.id, event_body(40), if_match=moved.etag)
    api.delete_event(calendar_id, pages[0].items[1].id)

    delta = api.list_events(ListEvents(calendar_id, sync_token=token))
    assert {e.id: e.status for e in delta.items} == {moved.id: "confirmed", pages[0].items[1].id: "cancelled"}
    assert delta.next_sync_token is not None
    assert delta.next_page_token is None


def test_sync_token_is_never_combined_with_filters(api: GoogleCalendarApi, calendar_id: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        api.list_events(ListEvents(calendar_id, sync_token="abc", time_min=START))


def test_expired_sync_token_is_sync_token_gone_without_retry(
    calendar_base: str, api: GoogleCalendarApi, calendar_id: str, sleeps: SleepRecorder
) -> None:
    token = api.list_events(ListEvents(calendar_id)).next_sync_token
    assert token is not None
    requests.post(f"{calendar_base}/_emulator/sync-tokens/expire", json={}, timeout=5).raise_for_status()
    before = list_calls(calendar_base)
    with pytest.raises(errors.SyncTokenGone) as caught:
        api.list_events(ListEvents(calendar_id, sync_token=token))
    assert caught.value.reason == "fullSyncRequired"
    assert list_calls(calendar_base) == before + 1
    assert sleeps.waits == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (503, "backendError"), (500, "backendError")],
)
def test_rate_limits_and_5xx_are_retried(
    calendar_base: str, api: GoogleCalendarApi, calendar_id: str, sleeps: SleepRecorder, status: int, reason: str
) -> None:
    fault(calendar_base, method="GET", path=r"/calendar/v3/calendars/.*/events", status=status, reason=reason, count=2)
    before = list_calls(calendar_base)
    page = api.list_events(ListEvents(calendar_id))
    assert page.next_sync_token is not None
    assert list_calls(calendar_base) == before + 3
    assert len(sleeps.waits) == 2
    # Full jitter: each wait is within [0, base * 2^(n-1)].
    assert 0 <= sleeps.waits[0] <= 0.5
    assert 0 <= sleeps.waits[1] <= 1.0


def test_retry_after_is_honoured(
    calendar_base: str, api: GoogleCalendarApi, calendar_id: str, sleeps: SleepRecorder
) -> None:
    fault(
        calendar_base,
        method="GET",
        path=r"/calendar/v3/calendars/.*/events",
        status=403,
        reason="rateLimitExceeded",
        count=1,
        retry_after_s=7,
    )
    api.list_events(ListEvents(calendar_id))
    assert sleeps.waits == [7.0]


def test_retries_are_bounded(calendar_base: str, sleeps: SleepRecorder) -> None:
    api = api_for(calendar_base, sleeps, max_attempts=3)
    calendar_id = api.insert_calendar("Sala 2", time_zone="America/Sao_Paulo")
    fault(
        calendar_base,
        method="GET",
        path=r"/calendar/v3/calendars/.*/events",
        status=503,
        reason="backendError",
        count=10,
    )
    before = list_calls(calendar_base)
    with pytest.raises(errors.Transient):
        api.list_events(ListEvents(calendar_id))
    assert list_calls(calendar_base) == before + 3
    assert len(sleeps.waits) == 2


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (403, "forbidden", errors.Forbidden),
        (403, "quotaExceeded", errors.QuotaExhausted),
        (400, "invalid", errors.BadRequest),
        (401, "authError", errors.AuthRevoked),
    ],
)
def test_final_errors_are_not_retried(
    calendar_base: str,
    api: GoogleCalendarApi,
    calendar_id: str,
    sleeps: SleepRecorder,
    status: int,
    reason: str,
    expected: type[errors.CalendarApiError],
) -> None:
    fault(calendar_base, method="GET", path=r"/calendar/v3/calendars/.*/events", status=status, reason=reason, count=5)
    before = list_calls(calendar_base)
    with pytest.raises(expected) as caught:
        api.list_events(ListEvents(calendar_id))
    assert caught.value.reason == reason
    assert list_calls(calendar_base) == before + 1
    assert sleeps.waits == []


def test_batch_results_in_order_with_per_item_failures(calendar_base: str, sleeps: SleepRecorder) -> None:
    api = api_for(calendar_base, sleeps, batch_size=50)
    calendar_id = api.insert_calendar("Sala 3", time_zone="America/Sao_Paulo")
    first = api.insert_event(calendar_id, event_body(0, id="ekisting0001"))
    ops = [
        BatchOp(kind="insert", calendar_id=calendar_id, body=event_body(i, id=f"batchevent{i:04d}"))
        for i in range(1, 120)
    ]
    ops.insert(60, BatchOp(kind="insert", calendar_id=calendar_id, body=event_body(0, id="ekisting0001")))
    ops.append(BatchOp(kind="delete", calendar_id=calendar_id, event_id=first.id, if_match='"stale"'))
    before = stats(calendar_base)
    results = api.execute_batch(ops)
    after = stats(calendar_base)

    assert len(results) == len(ops)
    assert [r.op for r in results] == ops
    assert isinstance(results[60].error, errors.Duplicate)
    assert isinstance(results[-1].error, errors.PreconditionFailed)
    created = [r for r in results if r.ok]
    assert len(created) == 119
    assert all(r.event is not None and r.event.id == r.op.body["id"] for r in created if r.op.body)
    assert after["batch"]["requests"] - before["batch"]["requests"] == 3  # 121 calls, 50 per batch
    assert after["batch"]["parts"] - before["batch"]["parts"] == 121


def test_batch_retries_rate_limited_parts(calendar_base: str, sleeps: SleepRecorder) -> None:
    api = api_for(calendar_base, sleeps, batch_size=10)
    calendar_id = api.insert_calendar("Sala 4", time_zone="America/Sao_Paulo")
    fault(
        calendar_base,
        method="POST",
        path=r"/calendar/v3/calendars/.*/events",
        status=429,
        reason="rateLimitExceeded",
        count=3,
    )
    ops = [
        BatchOp(kind="insert", calendar_id=calendar_id, body=event_body(i, id=f"retrqpart{i:04d}")) for i in range(10)
    ]
    results = api.execute_batch(ops)
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    assert len(sleeps.waits) >= 1
    ids = {e.id for e in api.list_events(ListEvents(calendar_id)).items}
    assert ids == {f"retrqpart{i:04d}" for i in range(10)}


def test_watch_and_stop_channel(api: GoogleCalendarApi, calendar_id: str) -> None:
    channel = api.watch_events(
        calendar_id, channel_id="chan-1", address="https://127.0.0.1:9/hook", token="nonce", ttl_s=3600
    )
    assert channel.id == "chan-1"
    assert channel.resource_id
    assert channel.expiration is not None
    assert timedelta(minutes=59) < channel.expiration - datetime.now(UTC) <= timedelta(hours=1, minutes=1)
    api.stop_channel(calendar_id, channel.id, channel.resource_id)
    with pytest.raises(errors.NotFound):
        api.stop_channel(calendar_id, channel.id, channel.resource_id)


def test_acl_and_calendar_get(api: GoogleCalendarApi, calendar_id: str) -> None:
    api.insert_acl(calendar_id, email="dr.ana@clinic.example", role="writer")
    assert api.get_calendar(calendar_id)["id"] == calendar_id


def test_revoked_refresh_token_is_auth_revoked(calendar_base: str, sleeps: SleepRecorder) -> None:
    refresh_token = "rt:dr.ana@clinic.example:1"
    credentials = Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=refresh_token,
        client_id="client",
        client_secret="secret",
        token_uri=f"{calendar_base}/token",
    )
    api = GoogleCalendarApi(
        credentials,
        api_endpoint=f"{calendar_base}/calendar/v3/",
        batch_uri=f"{calendar_base}/batch/calendar/v3",
        retry=RetryPolicy(max_attempts=3, sleep=sleeps),
    )
    calendar_id = api.insert_calendar("Agenda Ana", time_zone="America/Sao_Paulo")
    assert api.list_events(ListEvents(calendar_id)).next_sync_token is not None
    requests.post(
        f"{calendar_base}/_emulator/revoke", json={"refresh_token": refresh_token}, timeout=5
    ).raise_for_status()
    credentials.token = None  # the access token expires; the next call must refresh
    credentials.expiry = datetime(2000, 1, 1)
    with pytest.raises(errors.AuthRevoked):
        api.list_events(ListEvents(calendar_id))
    assert sleeps.waits == []
