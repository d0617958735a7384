"""Publish apply end to end: the real Cloud Tasks emulator delivers paced chunk tasks to the publish function.

A private local stack (``python -m devstack up``, own state dir, free ports) runs the publish function
under functions-framework with Google's Firestore emulator, the Calendar emulator and the Cloud Tasks
emulator. Through the admin API only, the test loads a small clinic (3 professionals, 2 rooms, 30
allocations), provisions it, plans and applies; the emulator dispatches the per-calendar chunk tasks at
their ``schedule_time`` (600 requests/min pacing) to ``POST /publish/tasks/apply``. Then it reads every
calendar from the Calendar emulator over plain HTTP and checks each expected event exists exactly once,
with its deterministic id and tags; applying the plan again, and one chunk task delivered twice after a
simulated crash (the emulator does not deduplicate task names), add no event.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore

from calsync.adapters.cloud_tasks import CloudTasksQueue
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.model import TAG_ALLOCATION, TAG_ENV, TAG_SOURCE, TAG_SOURCE_VALUE
from calsync.ports import TaskRequest
from calsync.services.apply import TASK_ROUTE
from calsync.services.plan import (
    CONTROL_KEY,
    CalendarView,
    event_id,
    plan_actions,
    professional_key,
    room_key,
)
from calsync.services.plan_actions import action_dict
from calsync.services.tasks import publish_task_name as task_name
from devstack import procs, stack
from tests.e2e.system_clock import system_now

HTTP_TIMEOUT_S = 30.0
APPLY_WAIT_S = 60.0
ENV = "dev"  # the local stack's CALSYNC_ENVIRONMENT
CLINIC = "tasks-e2e"
PROFESSIONALS = ("p0", "p1", "p2")
ROOMS = ("r0", "r1")
ALLOCATIONS = 30


def devstack(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m devstack ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=procs.ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@dataclass(frozen=True)
class World:
    """The running stack, seen through the admin API and the Calendar emulator."""

    endpoints: stack.Endpoints

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One admin API call with the stack's token."""
        headers = {"Authorization": f"Bearer {self.endpoints.admin_token}"}
        url = f"{self.endpoints.functions['publish']}{path}"
        return requests.request(method, url, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs)

    def google_calendar_id(self, key: str) -> str:
        """The Google id of a registered calendar."""
        return str(self.calendar_state(key)["google_calendar_id"])

    def calendar_state(self, key: str) -> dict[str, Any]:
        """``GET /calendars/{key}``."""
        answer = self.admin("GET", f"calendars/{key}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def google_events(self, key: str) -> list[dict[str, Any]]:
        """Every event (cancelled ones too) of a calendar, straight from the emulator over HTTP, as its writer."""
        state = self.calendar_state(key)
        url = f"{self.endpoints.calendar_api}calendars/{state['google_calendar_id']}/events"
        as_writer = {"X-Emulator-User": state["writer"]} if state.get("writer") else {}
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"showDeleted": "true", "maxResults": 2500}
        while True:
            page = requests.get(url, params=params, headers=as_writer, timeout=HTTP_TIMEOUT_S)
            assert page.status_code == 200, page.text
            body = page.json()
            items.extend(body.get("items", []))
            if not body.get("nextPageToken"):
                return items
            params["pageToken"] = body["nextPageToken"]

    def wait_done(self, plan_id: str) -> dict[str, Any]:
        """Poll ``GET /publish/{plan_id}`` until the plan leaves ``running``."""
        deadline = time.monotonic() + APPLY_WAIT_S
        while True:
            progress = self.admin("GET", f"publish/{plan_id}")
            assert progress.status_code == 200, progress.text
            body: dict[str, Any] = progress.json()
            if body["status"] not in ("planned", "running") or time.monotonic() > deadline:
                return body
            time.sleep(0.5)

    def wait_provisioned(self, clinic_id: str) -> dict[str, Any]:
        """Poll ``GET /provision/{clinic_id}`` until every calendar of the clinic exists and is watched."""
        deadline = time.monotonic() + APPLY_WAIT_S
        while True:
            answer = self.admin("GET", f"provision/{clinic_id}")
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            if body["done"] or time.monotonic() > deadline:
                return body
            time.sleep(0.5)

    def task_requests(self) -> int:
        """How many requests reached the publish function's task route (its JSON log lines)."""
        text = (Path(self.endpoints.logs) / "function-publish.log").read_text()
        return text.count(f'"route": "{TASK_ROUTE}"')


@contextmanager
def running_stack(state: Path, **extra_env: str) -> Iterator[World]:
    """A private stack in ``state`` (free ports); always stopped by ``devstack down``."""
    env = {**os.environ, "CALSYNC_DEVSTACK_DIR": str(state), "CALSYNC_DEVSTACK_BASE_PORT": "0", **extra_env}
    try:
        started = devstack(env, "up")
        assert started.returncode == 0, started.stdout + started.stderr
        yield World(stack.Endpoints.model_validate_json((state / "endpoints.json").read_text()))
    finally:
        stopped = devstack(env, "down")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A private stack for this module."""
    with running_stack(tmp_path_factory.mktemp("publish-tasks-stack") / "state", CALSYNC_DEVSTACK_POLL_S="60") as w:
        yield w


def _allocations(start: datetime) -> list[dict[str, Any]]:
    """30 reviewed allocations over two days, spread over the professionals and rooms."""
    out = []
    for i in range(ALLOCATIONS):
        begins = start + timedelta(days=i // 15, hours=i % 15 // 2, minutes=30 * (i % 2))
        out.append(
            {
                "id": f"alloc-{i:02d}",
                "clinic_id": CLINIC,
                "professional_id": PROFESSIONALS[i % len(PROFESSIONALS)],
                "room_id": ROOMS[i % len(ROOMS)],
                "start": begins.isoformat(),
                "end": (begins + timedelta(minutes=30)).isoformat(),
                "status": "reviewed",
                "title": f"consulta {i}",
                "attendees": [],
                "revision": 1,
            }
        )
    return out


def _expected(allocations: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Calendar key -> {deterministic event id: allocation id}: professional, room and control calendars."""
    expected: dict[str, dict[str, str]] = {}
    for a in allocations:
        for key in (professional_key(CLINIC, a["professional_id"]), room_key(CLINIC, a["room_id"]), CONTROL_KEY):
            expected.setdefault(key, {})[event_id(ENV, a["id"], key)] = a["id"]
    return expected


def _assert_each_event_once(world: World, expected: dict[str, dict[str, str]]) -> None:
    for key, wanted in expected.items():
        events = world.google_events(key)
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids)), key
        assert sorted(ids) == sorted(wanted), key  # exactly the expected events, none twice, nothing else
        for event in events:
            assert event.get("status") == "confirmed", (key, event["id"])
            tags = event["extendedProperties"]["private"]
            assert tags[TAG_SOURCE] == TAG_SOURCE_VALUE
            assert tags[TAG_ENV] == ENV
            assert tags[TAG_ALLOCATION] == wanted[event["id"]]


def test_apply_through_cloud_tasks_writes_each_event_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    professionals = [{"id": p, "name": f"Dr {p}", "email": f"{p}@clinic.example"} for p in PROFESSIONALS]
    rooms = [{"id": r, "name": f"Sala {r}"} for r in ROOMS]
    assert world.admin("PUT", f"clinics/{CLINIC}/professionals", json={"items": professionals}).status_code == 200
    assert world.admin("PUT", f"clinics/{CLINIC}/rooms", json={"items": rooms}).status_code == 200
    provisioned = world.admin("POST", "provision", json={"clinic_id": CLINIC})
    assert provisioned.status_code == 200, provisioned.text
    assert world.wait_provisioned(CLINIC)["created"] == len(PROFESSIONALS) + len(ROOMS)
    now = system_now(world.endpoints.functions["publish"], world.endpoints.admin_token)
    start = (now + timedelta(days=2)).replace(hour=11, minute=0, second=0, microsecond=0)
    allocations = _allocations(start)
    loaded = world.admin("PUT", "allocations", json={"items": allocations})
    assert loaded.status_code == 200, loaded.text
    expected = _expected(allocations)
    window = {"clinic_id": CLINIC, "from": start.isoformat(), "to": (start + timedelta(days=3)).isoformat()}

    planned = world.admin("POST", "publish/plan", json=window)
    assert planned.status_code == 201, planned.text
    plan = planned.json()
    assert plan["totals"] == {"create": 3 * ALLOCATIONS, "update": 0, "delete": 0, "skip": 0}
    apply_body = {"plan_id": plan["plan_id"], "confirm": plan["confirm_token"]}
    started = world.admin("POST", "publish/apply", json=apply_body)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running"

    progress = world.wait_done(plan["plan_id"])
    assert progress["status"] == "done", progress
    assert (progress["done"], progress["total"], progress["errors"]) == (3 * ALLOCATIONS, 3 * ALLOCATIONS, [])
    assert {c["calendar_id"] for c in progress["calendars"]} == set(expected)
    _assert_each_event_once(world, expected)

    # The same plan applied again: answered from its state, nothing re-sent.
    again = world.admin("POST", "publish/apply", json=apply_body)
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "done"
    # And a new plan of the same window finds Google already in line with the schedule.
    replanned = world.admin("POST", "publish/plan", json=window)
    assert replanned.status_code == 201, replanned.text
    assert replanned.json()["totals"] == {"create": 0, "update": 0, "delete": 0, "skip": 0}

    # A chunk task that crashed after its batch reached Google (progress not saved), then delivered
    # twice: the emulator does not deduplicate names, so both deliveries reach the function.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", world.endpoints.firestore_host)
    store = FirestoreStateStore(firestore.Client(project=world.endpoints.project), environment=ENV)
    key = professional_key(CLINIC, PROFESSIONALS[0])
    chunk = store.get_plan_progress(plan["plan_id"], key, 0)
    assert chunk is not None
    assert chunk.finished
    assert chunk.actions == []  # a finished chunk keeps no titles or attendees
    # As the crash left it: unfinished, with the actions the plan gave it (the planner's, for this calendar).
    record = store.get_calendar(key)
    assert record is not None
    planned = plan_actions(
        env=ENV,
        clinic_id=CLINIC,
        now=datetime.fromisoformat(plan["planned_at"]),
        allocations=store.list_allocations(CLINIC, start, start + timedelta(days=3)),
        calendars={key: CalendarView(record)},
        time_min=start,
        time_max=start + timedelta(days=3),
        clear_future=False,
    )
    actions = [action_dict(a) for a in planned if a.action != "skip"][: chunk.total]
    store.put_plan_progress(
        chunk.model_copy(update={"finished": False, "done": 0, "updated_at": None, "actions": actions})
    )
    task = TaskRequest(
        queue=stack.QUEUES[1],
        url=world.endpoints.functions["publish"].rstrip("/") + TASK_ROUTE,
        payload={"plan_id": plan["plan_id"], "calendar_key": key, "chunk": 0},
        name=task_name(ENV, plan["plan_id"], key, 0),
    )
    before = world.task_requests()
    queue = CloudTasksQueue.for_emulator(world.endpoints.tasks_host, world.endpoints.project, world.endpoints.region)
    try:
        assert queue.enqueue(task)
        assert queue.enqueue(task)  # same name, accepted again by the emulator
    finally:
        queue.close()
    deadline = time.monotonic() + APPLY_WAIT_S
    while world.task_requests() < before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert world.task_requests() == before + 2

    redone = store.get_plan_progress(plan["plan_id"], key, 0)
    assert redone is not None
    # Every insert met 409 duplicate, was read back, found ours and counted as done.
    assert (redone.finished, redone.done, redone.failed) == (True, chunk.total, 0)
    _assert_each_event_once(world, expected)
