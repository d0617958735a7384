"""Admin routes of the publish function in-process: auth, register, state, events, conflicts, sync."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calsync.bootstrap import Container, set_container
from calsync.model import Conflict, MirrorEvent
from tests.functions.function_world import ADMIN_TOKEN, client, fake_container

GCAL = "prof@group.calendar.google.com"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def container() -> Iterator[Container]:
    c = fake_container()
    c.calendar_api.add_calendar(GCAL)  # type: ignore[attr-defined]
    set_container(c)
    yield c
    set_container(None)


@pytest.fixture
def api(container: Container) -> Any:
    return client("publish")


def register(api: Any) -> Any:
    return api.post(
        "/calendars",
        json={"key": "prof-1", "google_calendar_id": GCAL, "kind": "professional", "clinic_id": "c1", "owner_id": "p1"},
        headers=AUTH,
    )


def test_requires_admin_token(api: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ADMIN_TOKEN}"}):
        response = api.get("/calendars/prof-1", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthenticated"
    assert api.get("/nowhere", headers=AUTH).status_code == 404
    assert api.delete("/events", headers=AUTH).status_code == 405


def test_register_and_get_state(api: Any) -> None:
    created = register(api)
    assert created.status_code == 201
    assert register(api).status_code == 201  # idempotent
    state = api.get("/calendars/prof-1", headers=AUTH).get_json()
    assert {
        k: state[k]
        for k in (
            "key",
            "google_calendar_id",
            "kind",
            "status",
            "last_synced_at",
            "error_message",
            "channel_expires_at",
        )
    } == {
        "key": "prof-1",
        "google_calendar_id": GCAL,
        "kind": "professional",
        "status": "ok",
        "last_synced_at": None,
        "error_message": None,
        "channel_expires_at": None,
    }
    assert api.get("/calendars/other", headers=AUTH).status_code == 404


def test_register_validates(api: Any) -> None:
    bad = api.post("/calendars", json={"key": "x", "kind": "boat"}, headers=AUTH)
    assert bad.status_code == 400
    assert set(bad.get_json()["error"]["details"]["fields"]) == {"google_calendar_id", "kind"}
    missing = api.post("/calendars", json={"key": "x", "google_calendar_id": "nope", "kind": "room"}, headers=AUTH)
    assert missing.status_code == 404
    taken = register(api)
    assert taken.status_code == 201
    clash = api.post("/calendars", json={"key": "prof-1", "google_calendar_id": "other", "kind": "room"}, headers=AUTH)
    assert clash.status_code == 409


def test_events_pages_and_excludes_cancelled(container: Container, api: Any) -> None:
    register(api)
    container.store.put_events(
        [
            MirrorEvent(
                calendar_key="prof-1",
                external_id=f"ev{i}",
                google_calendar_id=GCAL,
                etag='"1"',
                start=T0 + timedelta(hours=i),
                end=T0 + timedelta(hours=i, minutes=30),
                status="cancelled" if i == 1 else "confirmed",
            )
            for i in range(5)
        ]
    )
    ids: list[str] = []
    token = None
    while True:
        query = {
            "calendar_id": "prof-1",
            "time_min": "2026-03-03T00:00:00Z",
            "time_max": "2026-03-04T00:00:00Z",
            "page_size": "2",
            **({"page_token": token} if token else {}),
        }
        body = api.get("/events", query_string=query, headers=AUTH).get_json()
        ids.extend(item["id"] for item in body["items"])
        for item in body["items"]:
            assert {
                "id",
                "calendar_id",
                "status",
                "start",
                "end",
                "origin",
                "source_of_truth",
                "allocation_id",
                "etag",
            } <= set(item)
        token = body["next_page_token"]
        if token is None:
            break
    assert ids == ["ev0", "ev2", "ev3", "ev4"]
    assert api.get("/events", query_string={"calendar_id": "zz"}, headers=AUTH).status_code == 404
    assert api.get("/events", headers=AUTH).status_code == 400


def test_conflicts_filter_by_status(container: Container, api: Any) -> None:
    register(api)
    container.store.put_conflicts(
        [
            Conflict(
                id=f"c{i}",
                kind="moved_in_google",
                calendar_key="prof-1",
                event_id=f"e{i}",
                allocation_id="a",
                suggestion="move",
                detected_at=T0,
                status="open" if i else "resolved",
            )
            for i in range(3)
        ]
    )
    body = api.get("/conflicts", query_string={"calendar_id": "prof-1", "status": "open"}, headers=AUTH).get_json()
    assert [c["id"] for c in body["items"]] == ["c1", "c2"]
    assert set(body["items"][0]) >= {
        "id",
        "kind",
        "calendar_id",
        "event_id",
        "allocation_id",
        "suggestion",
        "status",
        "detected_at",
    }
    assert body["next_page_token"] is None


def test_force_sync_enqueues_admin_task(container: Container, api: Any) -> None:
    register(api)
    response = api.post("/sync", json={"calendar_id": "prof-1"}, headers=AUTH)
    assert response.status_code == 202
    tasks = container.queue.tasks  # type: ignore[attr-defined]
    assert [t.payload["reason"] for t in tasks] == ["admin"]
    assert tasks[0].payload["calendar_id"] == "prof-1"
    assert tasks[0].url == container.settings.sync_url
    assert api.post("/sync", json={"calendar_id": "zz"}, headers=AUTH).status_code == 404
