"""The ``calsync`` CLI against the real local stack: ``python -m devstack up`` in a private state dir.

The stack runs on free ports with its own ``CALSYNC_DEVSTACK_DIR``, so a developer's stack is never
touched; the CLI finds the publish function and the admin token through that dir's ``endpoints.json``
(no ``--url``/``--token``), exactly as an operator's ``calsync`` does after ``make up``. One stack is
shared by the module's tests and always stopped (``devstack down``) at the end, even on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from typer.testing import CliRunner, Result

from calsync.cli.app import app
from calsync.cli.client import ExitCode
from devstack import procs, stack
from tests.e2e.system_clock import system_now

HTTP_TIMEOUT_S = 30.0
SYNC_WAIT_S = 60.0
CALENDAR_KEY = "cli-e2e-professional"


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
class RunningStack:
    """A started private stack and the CLI environment pointing at it."""

    endpoints: stack.Endpoints
    cli_env: dict[str, str | None]
    calendar_id: str
    event_id: str

    def cli(self, *args: str, stdin: str | None = None, **env: str | None) -> Result:
        """``calsync ARGS`` in-process, configured only by the stack's endpoints.json."""
        return CliRunner(env={**self.cli_env, **env}).invoke(app, list(args), input=stdin)

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A direct admin API call (for set-up the CLI has no command for)."""
        headers = {"Authorization": f"Bearer {self.endpoints.admin_token}"}
        url = f"{self.endpoints.functions['publish']}{path}"
        return requests.request(method, url, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A private stack with one registered calendar holding one hand-made event; stopped afterwards."""
    base = tmp_path_factory.mktemp("cli-stack")
    state = base / "state"
    env = {
        **os.environ,
        "CALSYNC_DEVSTACK_DIR": str(state),
        "CALSYNC_DEVSTACK_BASE_PORT": "0",
        "CALSYNC_DEVSTACK_POLL_S": "60",
    }
    try:
        started = devstack(env, "up")
        assert started.returncode == 0, started.stdout + started.stderr
        endpoints = stack.Endpoints.model_validate_json((state / "endpoints.json").read_text())
        now = system_now(endpoints.functions["publish"], endpoints.admin_token)
        calendar_id, event_id = _calendar_with_event(endpoints.calendar_api, now)
        cli_env: dict[str, str | None] = {
            "CALSYNC_DEVSTACK_DIR": str(state),
            "CALSYNC_ADMIN_URL": None,
            "CALSYNC_ADMIN_TOKEN": None,
            "CALSYNC_CACHE_DIR": str(base / "plans"),
            "COLUMNS": "220",
        }
        world = RunningStack(endpoints, cli_env, calendar_id, event_id)
        registered = world.admin(
            "POST",
            "calendars",
            json={"key": CALENDAR_KEY, "google_calendar_id": calendar_id, "kind": "professional", "clinic_id": "c1"},
        )
        assert registered.status_code in (200, 201), registered.text
        yield world
    finally:
        stopped = devstack(env, "down")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def _calendar_with_event(api: str, now: datetime) -> tuple[str, str]:
    """A calendar on the emulator with one event a person made (untagged)."""
    created = requests.post(f"{api}calendars", json={"summary": "Dr. CLI"}, timeout=HTTP_TIMEOUT_S)
    created.raise_for_status()
    calendar_id = str(created.json()["id"])
    start = (now + timedelta(days=2)).replace(hour=13, minute=0, second=0, microsecond=0)
    event: dict[str, Any] = {
        "summary": "Booked by hand",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
    }
    answer = requests.post(f"{api}calendars/{calendar_id}/events", json=event, timeout=HTTP_TIMEOUT_S)
    answer.raise_for_status()
    return calendar_id, str(answer.json()["id"])


def _mirror_ids(world: RunningStack) -> set[str]:
    answer = world.admin("GET", "events", params={"calendar_id": CALENDAR_KEY})
    assert answer.status_code == 200, answer.text
    return {item["id"] for item in answer.json()["items"]}


def test_sync_enqueues_a_sync_that_fills_the_mirror(running: RunningStack) -> None:
    result = running.cli("sync", CALENDAR_KEY, "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["calendar_id"] == CALENDAR_KEY
    assert answer["enqueued"] is True
    # The Cloud Tasks emulator delivers the task to the sync function, which mirrors the event.
    deadline = time.monotonic() + SYNC_WAIT_S
    while running.event_id not in _mirror_ids(running) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running.event_id in _mirror_ids(running)

    table = running.cli("sync", CALENDAR_KEY)
    assert table.exit_code == 0, table.output
    assert f"Sync of {CALENDAR_KEY}" in table.stdout


def test_sync_of_an_unknown_calendar_is_a_clean_404(running: RunningStack) -> None:
    result = running.cli("sync", "no-such-calendar")

    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    assert "unknown calendar no-such-calendar" in result.stderr
    assert "Traceback" not in result.output


def test_conflicts_lists_none_on_a_fresh_stack(running: RunningStack) -> None:
    table = running.cli("conflicts", "--calendar", CALENDAR_KEY, "--status", "open")
    raw = running.cli("conflicts", "--json")
    unknown = running.cli("conflicts", "--calendar", "no-such-calendar")

    assert table.exit_code == 0, table.output
    assert "No conflicts." in table.stdout
    assert raw.exit_code == 0, raw.output
    assert json.loads(raw.stdout)["items"] == []
    assert unknown.exit_code == ExitCode.NOT_FOUND, unknown.output


def test_a_wrong_token_is_refused_with_exit_4(running: RunningStack) -> None:
    result = running.cli("conflicts", "--token", "not-the-admin-token")

    assert result.exit_code == ExitCode.AUTH, result.output
    assert "HTTP 401" in result.stderr
    assert "not-the-admin-token" not in result.output


def test_a_stopped_function_is_unreachable_with_exit_3(running: RunningStack) -> None:
    closed = procs.free_port()
    result = running.cli("conflicts", "--url", f"http://127.0.0.1:{closed}/")

    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert "connection refused" in result.stderr
    assert "Traceback" not in result.output


# --- Routes of the publish issue (skipped, naming the route, while the function lacks them) ----------

CLINIC = "cli-e2e-clinic"


def _require_route(world: RunningStack, method: str, path: str) -> None:
    """Skip (saying which route) when the publish function does not serve ``method /path`` yet."""
    answer = world.admin(method, path, json={})
    routing_misses = {"no such route", "method not allowed on this route"}  # the router's own 404/405
    if answer.status_code in (404, 405) and answer.json().get("error", {}).get("message") in routing_misses:
        pytest.skip(f"{method} /{path} is not served by the publish function yet")


def test_health_shows_the_registered_calendar(running: RunningStack) -> None:
    _require_route(running, "GET", "health")

    table = running.cli("health")
    raw = running.cli("health", "--json")

    assert table.exit_code == 0, table.output
    assert "Overall:" in table.stdout
    assert CALENDAR_KEY in table.stdout
    answer = json.loads(raw.stdout)
    assert answer["status"] in ("ok", "degraded", "failing")
    assert CALENDAR_KEY in {row["key"] for row in answer["calendars"]}


def test_provision_plan_apply_publish_a_week(running: RunningStack) -> None:
    for method, path in (
        ("PUT", f"clinics/{CLINIC}/professionals"),
        ("PUT", f"clinics/{CLINIC}/rooms"),
        ("PUT", "allocations"),
        ("POST", "provision"),
        ("POST", "publish/plan"),
        ("POST", "publish/apply"),
    ):
        _require_route(running, method, path)
    professionals = [{"id": "p1", "name": "Dr. One", "email": "one@example.org"}]
    rooms = [{"id": "r1", "name": "Room 1"}]
    for path, items in ((f"clinics/{CLINIC}/professionals", professionals), (f"clinics/{CLINIC}/rooms", rooms)):
        put = running.admin("PUT", path, json={"items": items})
        assert put.status_code == 200, put.text

    first = running.cli("provision", "--clinic", CLINIC, "--json")
    again = running.cli("provision", "--clinic", CLINIC, "--json")

    assert first.exit_code == 0, first.output
    assert (json.loads(first.stdout)["created"], json.loads(first.stdout)["done"]) == (2, True)  # followed to the end
    assert again.exit_code == 0, again.output
    assert (json.loads(again.stdout)["scheduled"], json.loads(again.stdout)["created"]) == (0, 2)  # idempotent

    day = (
        system_now(running.endpoints.functions["publish"], running.endpoints.admin_token) + timedelta(days=3)
    ).replace(hour=12, minute=0, second=0, microsecond=0)
    allocations = [
        {
            "id": f"a{n}",
            "clinic_id": CLINIC,
            "professional_id": "p1",
            "room_id": "r1",
            "start": (day + timedelta(hours=n)).isoformat(),
            "end": (day + timedelta(hours=n, minutes=50)).isoformat(),
            "status": "reviewed",
            "title": "Consulta",
            "attendees": [],
            "revision": 1,
        }
        for n in range(3)
    ]
    put = running.admin("PUT", "allocations", json={"items": allocations})
    assert put.status_code == 200, put.text

    window = ["--from", (day - timedelta(days=1)).isoformat(), "--to", (day + timedelta(days=1)).isoformat()]
    planned = running.cli("plan", "--clinic", CLINIC, *window)
    assert planned.exit_code == 0, planned.output
    plan_id = next(line.split()[-1] for line in planned.stdout.splitlines() if line.startswith("Apply with:"))
    total = next(line for line in planned.stdout.splitlines() if "total" in line)
    creates = int([cell.strip() for cell in total.strip("│ ").split("│")][1])
    assert creates == 9  # three allocations on the professional's, the room's and the control calendar

    applied = running.cli("apply", plan_id, "--poll-interval", "0.2", "--wait-timeout", "120", stdin="y\n")
    assert applied.exit_code == 0, applied.output
    assert "done" in applied.stdout

    final = json.loads(running.cli("status", plan_id, "--json").stdout)
    assert final["status"] == "done"
    assert final["done"] == final["total"] == creates
    assert final == running.admin("GET", f"publish/{plan_id}").json()  # --json is the API's own answer

    replanned = running.cli("plan", "--clinic", CLINIC, *window, "--json")
    assert replanned.exit_code == 0, replanned.output
    assert json.loads(replanned.stdout)["totals"]["create"] == 0  # everything is published: nothing to redo

    # A person moves one published event in Google; `sync --event` reprocesses it and opens a conflict.
    key = next(k for k in json.loads(first.stdout)["calendars"] if "p1" in k)
    state = running.admin("GET", f"calendars/{key}")
    assert state.status_code == 200, state.text
    google_id = state.json()["google_calendar_id"]
    as_writer = {"X-Emulator-User": state.json()["writer"]}  # the calendar's owner: the writer that created it
    events = requests.get(
        f"{running.endpoints.calendar_api}calendars/{google_id}/events", headers=as_writer, timeout=HTTP_TIMEOUT_S
    )
    published = events.json()["items"]
    assert len(published) == 3
    moved = published[0]
    later = {
        "start": {"dateTime": (day + timedelta(days=1)).isoformat()},
        "end": {"dateTime": (day + timedelta(days=1, minutes=50)).isoformat()},
    }
    patched = requests.patch(
        f"{running.endpoints.calendar_api}calendars/{google_id}/events/{moved['id']}",
        json=later,
        headers=as_writer,
        timeout=HTTP_TIMEOUT_S,
    )
    assert patched.status_code == 200, patched.text

    resynced = running.cli("sync", key, "--event", moved["id"], "--json")
    assert resynced.exit_code == 0, resynced.output
    assert json.loads(resynced.stdout)["event_id"] == moved["id"]

    listed = running.cli("conflicts", "--calendar", key, "--status", "open", "--json")
    assert listed.exit_code == 0, listed.output
    (conflict,) = json.loads(listed.stdout)["items"]
    assert conflict["event_id"] == moved["id"]
    direct = running.admin("GET", "conflicts", params={"calendar_id": key, "status": "open"})
    assert json.loads(listed.stdout) == direct.json()  # the times read back and dumped exactly as the API does
    shown = running.cli("conflicts", "--calendar", key)
    assert conflict["id"] in shown.stdout

    resolved = running.cli("resolve", conflict["id"], "--action", "accept_google", "--json")
    assert resolved.exit_code == 0, resolved.output
    assert json.loads(resolved.stdout)["status"] == "resolved"
    assert json.loads(running.cli("conflicts", "--calendar", key, "--status", "open", "--json").stdout)["items"] == []

    # clear_future: the API refuses the first token alone (400), and declining the second prompt sends nothing.
    cleared = running.cli("plan", "--clinic", CLINIC, *window, "--clear-future", "--json")
    assert cleared.exit_code == 0, cleared.output
    clear_plan = json.loads(cleared.stdout)
    assert clear_plan["confirm_clear_future_token"]
    alone = running.cli(
        "apply",
        clear_plan["plan_id"],
        "--yes",
        "--confirm",
        clear_plan["confirm_token"],
        CALSYNC_CACHE_DIR="/nonexistent",
    )
    assert alone.exit_code == ExitCode.API_ERROR, alone.output
    assert "HTTP 400" in alone.stderr
    assert "second confirmation" in alone.stderr
    declined = running.cli("apply", clear_plan["plan_id"], stdin="y\nn\n")
    assert declined.exit_code == ExitCode.ABORTED, declined.output
    still = json.loads(running.cli("status", clear_plan["plan_id"], "--json").stdout)
    assert still["status"] == "planned"
