"""The renew entry point (Cloud Scheduler jobs and renewal tasks) through functions-framework, on fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from calsync import errors
from calsync.bootstrap import Container, get_container, set_container
from calsync.job_results import AvailabilityRun, RenewRun
from calsync.model import Allocation, CalendarRecord, MirrorEvent, Professional
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue
from tests.functions.test_webhook_function import make_settings

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "renew" / "main.py"


@pytest.fixture
def wired() -> Iterator[tuple[Any, InMemoryStateStore, RecordingTaskQueue, FrozenClock, FakeCalendarApi]]:
    clock = FrozenClock()
    store = InMemoryStateStore()
    queue = RecordingTaskQueue()
    api = FakeCalendarApi(clock)
    api.add_calendar("room1@g")
    # A failed watch: what renew opens a channel for (poll syncs it meanwhile; it was never synced).
    store.put_calendar(
        CalendarRecord(key="room-1", google_calendar_id="room1@g", kind="room", status="webhook_expired")
    )
    container = Container(
        make_settings(renew_url="http://127.0.0.1:3/"), store=store, queue=queue, clock=clock, calendar_api=api
    )
    set_container(container)
    client = functions_framework.create_app(target="main", source=str(SOURCE)).test_client()
    try:
        yield client, store, queue, clock, api
    finally:
        set_container(None)


def test_renew_job_answers_its_typed_result_and_is_idempotent(wired) -> None:
    client, store, _, _, _ = wired
    first = client.post("/", json={"job": "renew"})
    assert first.status_code == 200
    assert RenewRun.model_validate(first.get_json()) == RenewRun(due=1, fanned_out=False, opened=1)
    second = client.post("/", json={"job": "renew"})
    assert RenewRun.model_validate(second.get_json()) == RenewRun(due=0, fanned_out=False)
    assert len(store.list_active_channels()) == 1


def test_renew_calendar_task(wired) -> None:
    client, _store, _, _, _ = wired
    response = client.post("/", json={"job": "renew_calendar", "calendar_id": "room-1"})
    assert response.get_json() == {"job": "renew_calendar", "calendar_id": "room-1", "outcome": "opened"}
    missing = client.post("/", json={"job": "renew_calendar", "calendar_id": "ghost"})
    assert missing.status_code == 404
    dropped = client.post(
        "/", json={"job": "renew_calendar", "calendar_id": "ghost"}, headers={"X-CloudTasks-TaskName": "t1"}
    )
    assert (dropped.status_code, dropped.get_json()) == (200, {"dropped": "not_found"})


def test_poll_job(wired) -> None:
    client, _, queue, _, _ = wired
    response = client.post("/", json={"job": "poll"})
    assert response.get_json() == {
        "job": "poll",
        "due": 1,
        "enqueued": 1,
        "already_queued": 0,
        "skipped": 0,
        "pages": 2,
    }
    assert [t.payload["reason"] for t in queue.tasks] == ["poll"]


def test_cleanup_job(wired) -> None:
    client, store, _, clock, _ = wired
    end = clock.now() - timedelta(days=200)
    store.put_events([MirrorEvent(calendar_key="room-1", external_id="e1", google_calendar_id="room1@g", end=end)])
    response = client.post("/", json={"job": "cleanup"})
    expired = dict.fromkeys(("plans", "allocations", "channels", "free_busy", "unknown_channels"), 0)
    assert response.get_json() == {
        "job": "cleanup",
        "mirror_events_deleted": 1,
        "people_content_scrubbed": 0,
        "conflicts_deleted": 0,
        "expired_deleted": expired,
        "unwatched": 0,
    }


@pytest.mark.parametrize("body", [b"", b"{}", b'{"job": "nope"}', b"not json", b'{"job": "renew", "x": 1}'])
def test_bad_body_is_400(wired, body: bytes) -> None:
    client = wired[0]
    assert client.post("/", data=body, content_type="application/json").status_code == 400


def test_queue_down_is_503_with_retry_after(wired) -> None:
    client = wired[0]

    class Down:
        def enqueue(self, task: object) -> bool:
            raise errors.QueueUnavailable("down")

    set_container(get_container().replace(queue=Down()))
    response = client.post("/", json={"job": "poll"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"


def test_availability_job_checks_every_clinic_with_professional_calendars(wired) -> None:
    client, store, _, clock, api = wired
    start = clock.now() + timedelta(days=1)
    store.put_calendar(CalendarRecord(key="c1-prof-p1", google_calendar_id="p1@g", kind="professional", clinic_id="c1"))
    store.replace_professionals("c1", [Professional(clinic_id="c1", id="p1", name="P1", email="dr.p1@clinic.example")])
    store.put_allocations(
        [
            Allocation(
                id="a1",
                clinic_id="c1",
                professional_id="p1",
                room_id="r1",
                start=start,
                end=start + timedelta(hours=1),
                status="reviewed",
            )
        ]
    )
    api.add_calendar("dr.p1@clinic.example")  # their own primary calendar, busy over the allocation
    api.insert_event(
        "dr.p1@clinic.example",
        {"start": {"dateTime": start.isoformat()}, "end": {"dateTime": (start + timedelta(hours=2)).isoformat()}},
    )

    first = client.post("/", json={"job": "availability"})
    again = client.post("/", json={"job": "availability"})

    assert first.status_code == 200, first.get_json()
    assert AvailabilityRun.model_validate(first.get_json()) == AvailabilityRun(
        clinics=1, collisions=1, conflicts_opened=1, conflicts_resolved=0, not_readable=0
    )
    assert again.get_json()["conflicts_opened"] == 0
