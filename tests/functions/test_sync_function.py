"""The sync function in-process: 400, 404, 200 and 503 paths, and Cloud Tasks acknowledgement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from calsync import errors
from calsync.bootstrap import Container, set_container
from calsync.model import CalendarRecord
from tests.functions.function_world import client, fake_container

GCAL = "room@group.calendar.google.com"


@pytest.fixture
def container() -> Iterator[Container]:
    c = fake_container()
    c.calendar_api.add_calendar(GCAL)  # type: ignore[attr-defined]
    c.store.put_calendar(CalendarRecord(key="room-1", google_calendar_id=GCAL, kind="room"))
    set_container(c)
    yield c
    set_container(None)


@pytest.fixture
def sync_client(container: Container) -> Any:
    return client("sync")


def post(c: Any, body: Any, **headers: str) -> Any:
    return c.post("/", json=body, headers=headers)


def test_sync_ok_returns_summary(container: Container, sync_client: Any) -> None:
    start = container.clock.now() + timedelta(days=1)
    container.calendar_api.insert_event(
        GCAL,
        {
            "id": "ev001",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        },
    )
    response = post(sync_client, {"calendar_id": "room-1", "reason": "webhook", "requested_at": "2026-03-02T12:00:00Z"})
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("calendar_id", "mode", "pages", "fetched", "written")} == {
        "calendar_id": "room-1",
        "mode": "full",
        "pages": 1,
        "fetched": 1,
        "written": 1,
    }
    for key in ("unchanged", "tombstoned", "conflicts_opened", "conflicts_resolved", "duration_ms"):
        assert key in body


def test_malformed_body_is_400_direct_and_acknowledged_from_tasks(sync_client: Any) -> None:
    direct = post(sync_client, {"calendar_id": "room-1", "reason": "nonsense"})
    assert direct.status_code == 400
    assert direct.get_json()["error"]["code"] == "invalid_request"
    queued = post(sync_client, {"reason": "poll"}, **{"X-CloudTasks-TaskName": "t1"})
    assert queued.status_code == 200
    assert queued.get_json() == {"dropped": "invalid_request"}


def test_unknown_calendar_is_404_direct_and_acknowledged_from_tasks(sync_client: Any) -> None:
    direct = post(sync_client, {"calendar_id": "nope", "reason": "poll"})
    assert direct.status_code == 404
    assert direct.get_json()["error"]["code"] == "not_found"
    queued = post(sync_client, {"calendar_id": "nope", "reason": "poll"}, **{"X-CloudTasks-TaskName": "t2"})
    assert (queued.status_code, queued.get_json()) == (200, {"dropped": "not_found"})


def test_transient_upstream_is_503_with_retry_after(container: Container, sync_client: Any) -> None:
    container.calendar_api.fail_next("list_events", errors.Transient("backend", status=503))  # type: ignore[attr-defined]
    response = post(sync_client, {"calendar_id": "room-1", "reason": "poll"}, **{"X-CloudTasks-TaskName": "t3"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert container.store.locks == {}  # type: ignore[attr-defined]


def test_rate_limited_is_429_with_upstream_retry_after(container: Container, sync_client: Any) -> None:
    container.calendar_api.fail_next(  # type: ignore[attr-defined]
        "list_events", errors.RateLimited("slow down", status=429, retry_after_s=12.5)
    )
    response = post(sync_client, {"calendar_id": "room-1", "reason": "poll"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "13"


def test_revoked_auth_is_acknowledged_with_needs_reauth(container: Container, sync_client: Any) -> None:
    container.calendar_api.fail_next(  # type: ignore[attr-defined]
        "list_events", errors.AuthRevoked("invalid_grant", status=401, reason="invalid_grant")
    )
    response = post(sync_client, {"calendar_id": "room-1", "reason": "poll"}, **{"X-CloudTasks-TaskName": "t4"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "needs_reauth"
    assert container.store.get_calendar("room-1").status == "needs_reauth"  # type: ignore[union-attr]


def _insert(container: Container, event_id: str, hours: int) -> None:
    start = container.clock.now() + timedelta(days=1, hours=hours)
    container.calendar_api.insert_event(
        GCAL,
        {
            "id": event_id,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        },
    )


def test_a_trigger_while_a_dead_holders_lease_lives_is_retried_after_it(container: Container, sync_client: Any) -> None:
    _insert(container, "ev001", 0)
    lease_s = container.settings.lock_lease_s
    container.store.acquire_lock("room-1", "dead-run", lease_s=lease_s, now=container.clock.now())
    container.clock.advance(30)  # type: ignore[attr-defined]
    task = {"X-CloudTasks-TaskName": "sync-webhook-1"}
    held = post(sync_client, {"calendar_id": "room-1", "reason": "webhook"}, **task)
    assert held.status_code == 429  # not acknowledged: Cloud Tasks keeps the task and retries it
    assert held.headers["Retry-After"] == str(lease_s - 30)
    assert held.get_json()["error"]["code"] == "lock_held"
    assert container.store.locks["room-1"]["pending"]  # type: ignore[attr-defined]
    container.clock.advance(lease_s - 30)  # type: ignore[attr-defined]
    retried = post(sync_client, {"calendar_id": "room-1", "reason": "webhook"}, **task)
    assert retried.status_code == 200
    assert {k: retried.get_json()[k] for k in ("mode", "written")} == {"mode": "full", "written": 1}
    assert container.store.locks == {}  # type: ignore[attr-defined]


def test_a_trigger_while_a_live_holder_runs_is_honoured_and_retried(container: Container, sync_client: Any) -> None:
    _insert(container, "ev001", 0)
    assert post(sync_client, {"calendar_id": "room-1", "reason": "poll"}).status_code == 200
    answers: list[Any] = []

    def trigger_during_the_pass(_: str, n: int) -> None:
        if not answers:
            _insert(container, "ev002", 2)  # a change, and its notification's task, during the pass
            answers.append(post(sync_client, {"calendar_id": "room-1", "reason": "webhook"}))

    container.calendar_api.on_list = trigger_during_the_pass  # type: ignore[attr-defined]
    holder = post(sync_client, {"calendar_id": "room-1", "reason": "poll"})
    assert answers[0].status_code == 429
    assert holder.status_code == 200
    assert holder.get_json()["pages"] == 2  # the holder ran the pass the trigger asked for
    assert container.store.get_events("room-1", ["ev002"])  # it saw the change made during its first pass
    container.calendar_api.on_list = None  # type: ignore[attr-defined]
    retried = post(sync_client, {"calendar_id": "room-1", "reason": "webhook"})
    assert (retried.status_code, retried.get_json()["written"]) == (200, 0)  # already covered: a cheap pass
