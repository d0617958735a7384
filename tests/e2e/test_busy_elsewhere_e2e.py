"""Busy elsewhere, on the local stack: professionals' own calendars read through free/busy.

Through the admin API (the publish function under functions-framework, Google's Firestore emulator)
and the Calendar emulator, each professional marks time on their **own** primary calendar, as a
person does in Google Calendar, and shares its free/busy with calsync's acting user (or not). Then
``POST /clinics/{id}/availability`` runs the check: a weekly busy block, an all-day busy day and an
out-of-office each give exactly one open ``busy_elsewhere`` conflict naming the allocation; a
transparent all-day marker, a "free" event and an empty slot give none; an unshared calendar gives
none and health says it is not readable; moving the instance away resolves its conflict.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from devstack import stack
from tests.e2e.system_clock import system_now
from tests.e2e.test_publish_tasks_e2e import HTTP_TIMEOUT_S, World, running_stack

CLINIC = "busy-e2e"
ACTING_USER = stack.CALENDAR_USER
# professional id → what they put on their own calendar over their allocation
CASES = {
    "weekly": "a weekly busy block (an instance of a series)",
    "dayoff": "an all-day busy day",
    "ooo": "an out-of-office",
    "marker": "a transparent all-day marker",
    "free": 'a timed event shown as "free"',
    "empty": "nothing",
    "hidden": "a busy event on a calendar not shared with calsync",
}
COLLIDING = ("weekly", "dayoff", "ooo")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A private stack for this module."""
    with running_stack(tmp_path_factory.mktemp("busy-stack") / "state") as w:
        yield w


def email(pid: str) -> str:
    return f"dr.{pid}@clinic.example"


def as_person(world: World, pid: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """A Calendar API call on the professional's own primary calendar, as that person."""
    url = f"{world.endpoints.calendar_api}calendars/primary/{path}"
    answer = requests.request(method, url, json=body, headers={"X-Emulator-User": email(pid)}, timeout=HTTP_TIMEOUT_S)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


def timed(start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "summary": "private",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": end.isoformat()},
        **extra,
    }


def open_conflicts(world: World) -> dict[str, dict[str, Any]]:
    """Open ``busy_elsewhere`` conflicts by allocation id."""
    answer = world.admin("GET", "conflicts", params={"status": "open", "page_size": 200})
    assert answer.status_code == 200, answer.text
    items = [c for c in answer.json()["items"] if c["kind"] == "busy_elsewhere"]
    by_allocation = {c["allocation_id"]: c for c in items}
    assert len(by_allocation) == len(items), "one conflict per allocation"
    return by_allocation


def test_busy_time_on_own_calendars_gives_one_conflict_each_and_nothing_else(world: World) -> None:
    now = system_now(world.endpoints.functions["publish"], world.endpoints.admin_token)
    day = (now + timedelta(days=2)).replace(hour=13, minute=0, second=0, microsecond=0)  # UTC
    slot = {
        pid: (day + timedelta(hours=i % 3), day + timedelta(hours=i % 3, minutes=50)) for i, pid in enumerate(CASES)
    }
    professionals = [{"id": pid, "name": f"Dr {pid}", "email": email(pid)} for pid in CASES]
    assert world.admin("PUT", f"clinics/{CLINIC}/professionals", json={"items": professionals}).status_code == 200
    allocations = [
        {
            "id": f"alloc-{pid}",
            "clinic_id": CLINIC,
            "professional_id": pid,
            "room_id": "r1",
            "start": start.isoformat(),
            "end": end.isoformat(),
            "status": "reviewed",
            "title": "consulta",
            "attendees": [],
            "revision": 1,
        }
        for pid, (start, end) in slot.items()
    ]
    rooms = {"items": [{"id": "r1", "name": "Sala 1"}]}
    assert world.admin("PUT", f"clinics/{CLINIC}/rooms", json=rooms).status_code == 200
    loaded = world.admin("PUT", "allocations", json={"items": allocations})
    assert loaded.status_code == 200, loaded.text

    start, end = slot["weekly"]
    first = start - timedelta(days=7, minutes=10)  # began last week; this week's instance covers the allocation
    weekly = {
        "summary": "Almoço",
        "start": {"dateTime": first.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (end - timedelta(days=7)).isoformat(), "timeZone": "UTC"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6"],
    }
    series = as_person(world, "weekly", "POST", "events", weekly)
    dayoff = slot["dayoff"][0].date()
    as_person(
        world,
        "dayoff",
        "POST",
        "events",
        {
            "summary": "Folga",
            "start": {"date": dayoff.isoformat()},
            "end": {"date": (dayoff + timedelta(days=1)).isoformat()},
        },
    )
    start, end = slot["ooo"]
    as_person(
        world,
        "ooo",
        "POST",
        "events",
        timed(
            start - timedelta(hours=1),
            end + timedelta(hours=1),
            eventType="outOfOffice",
            outOfOfficeProperties={"autoDeclineMode": "declineNone"},
        ),
    )
    marker = slot["marker"][0].date()
    as_person(
        world,
        "marker",
        "POST",
        "events",
        {
            "summary": "Plantão",
            "transparency": "transparent",
            "start": {"date": marker.isoformat()},
            "end": {"date": (marker + timedelta(days=1)).isoformat()},
        },
    )
    as_person(world, "free", "POST", "events", timed(*slot["free"], transparency="transparent"))
    as_person(world, "hidden", "POST", "events", timed(*slot["hidden"]))
    for pid in CASES:
        if pid != "hidden":
            share = {"role": "freeBusyReader", "scope": {"type": "user", "value": ACTING_USER}}
            as_person(world, pid, "POST", "acl", share)

    checked = world.admin("POST", f"clinics/{CLINIC}/availability")
    assert checked.status_code == 200, checked.text
    assert checked.json()["not_readable"] == ["hidden"]

    conflicts = open_conflicts(world)
    assert sorted(conflicts) == sorted(f"alloc-{pid}" for pid in COLLIDING)
    for pid in COLLIDING:
        assert f"alloc-{pid}" in conflicts[f"alloc-{pid}"]["suggestion"]
    health = world.admin("GET", "health").json()
    readable = {(f["professional_id"], f["readable"]) for f in health["free_busy"] if f["clinic_id"] == CLINIC}
    assert readable == {(pid, pid != "hidden") for pid in CASES}

    again = world.admin("POST", f"clinics/{CLINIC}/availability").json()
    assert (again["conflicts_opened"], again["conflicts_resolved"]) == (0, 0)  # a re-run changes nothing

    # The person moves this week's occurrence away: its conflict resolves, the others stay.
    instance = f"{series['id']}_{(first + timedelta(days=7)).strftime('%Y%m%dT%H%M%SZ')}"
    later = slot["weekly"][1] + timedelta(hours=3)
    as_person(world, "weekly", "PATCH", f"events/{instance}", timed(later, later + timedelta(hours=1)))
    moved = world.admin("POST", f"clinics/{CLINIC}/availability").json()
    assert (moved["conflicts_opened"], moved["conflicts_resolved"]) == (0, 1)
    assert sorted(open_conflicts(world)) == ["alloc-dayoff", "alloc-ooo"]
