"""Interim ``make demo``: a fresh local stack, one real request through every function, then down.

The demo never touches a developer's running stack: it starts its own in a temporary state dir on
free ports (fresh emulator data every time, so the expected answers are exact) and always stops it.
Each step states what it expects and checks the function's real answer; the demo exits 0 only when
every step behaved as expected. The full demo (the publish issue) replaces this module's steps.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from devstack import stack

CALENDAR_KEY = "demo-professional"
# Short enough to watch the scheduler fire during the demo; Cloud Scheduler's is 10 min.
DEMO_POLL_S = "2"
SCHEDULER_WAIT_S = 15.0
HTTP_TIMEOUT_S = 60.0


@dataclass
class Step:
    """One demo step: what was sent, what was expected, what came back."""

    name: str
    request: str
    expected: str
    answer: str = ""
    ok: bool = False


class StepFailed(Exception):
    """A step's answer was not the expected one (the step records why)."""


class Demo:
    """Runs the steps against a started stack, recording each one."""

    def __init__(self, endpoints: stack.Endpoints, console: Console) -> None:
        """Drive the stack described by ``endpoints``; print progress on ``console``."""
        self.endpoints = endpoints
        self.console = console
        self.steps: list[Step] = []
        self.admin = {"Authorization": f"Bearer {endpoints.admin_token}"}

    def step(self, name: str, request: str, expected: str, check: Callable[[Step], None]) -> None:
        """Run ``check`` (which sends the request and fills in the answer), record and print it."""
        step = Step(name, request, expected)
        self.steps.append(step)
        try:
            check(step)
            step.ok = True
        except StepFailed:
            step.ok = False
        except requests.RequestException as exc:
            step.answer = f"no answer: {type(exc).__name__}"
        except (KeyError, ValueError, TypeError) as exc:
            step.answer = f"{step.answer} (unexpected body: {type(exc).__name__} {exc})".strip()
        mark = "[green]ok[/green]" if step.ok else "[red]FAILED[/red]"
        self.console.print(f"{mark}  {name}: {request} -> {step.answer} (expected {expected})")

    def run(self) -> None:
        """All steps, in order; later steps need earlier ones' results, so a failure skips dependents."""
        api = self.endpoints.calendar_api
        fn = self.endpoints.functions
        state: dict[str, str] = {}

        def create_calendar(step: Step) -> None:
            answer = requests.post(f"{api}calendars", json={"summary": "Dr. Demo"}, timeout=HTTP_TIMEOUT_S)
            body = _expect_status(step, answer, {200})
            state["calendar_id"] = str(body["id"])
            step.answer += f", id {state['calendar_id']}"

        def create_event(step: Step) -> None:
            start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=13, minute=0, second=0, microsecond=0)
            event: dict[str, Any] = {
                "summary": "Booked by hand in Google Calendar",
                "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
            }
            url = f"{api}calendars/{state['calendar_id']}/events"
            body = _expect_status(step, requests.post(url, json=event, timeout=HTTP_TIMEOUT_S), {200})
            state["event_id"] = str(body["id"])
            step.answer += f", id {state['event_id']}"

        def register(step: Step) -> None:
            payload = {
                "key": CALENDAR_KEY,
                "google_calendar_id": state["calendar_id"],
                "kind": "professional",
                "clinic_id": "demo-clinic",
                "owner_id": "demo-professional",
            }
            answer = requests.post(
                f"{fn['publish']}calendars", json=payload, headers=self.admin, timeout=HTTP_TIMEOUT_S
            )
            _expect_status(step, answer, {200, 201})

        def sync(step: Step) -> None:
            payload = {
                "calendar_id": CALENDAR_KEY,
                "reason": "admin",
                "requested_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            answer = requests.post(fn["sync"], json=payload, headers=self.admin, timeout=HTTP_TIMEOUT_S)
            body = _expect_status(step, answer, {200})
            summary = {key: body.get(key) for key in ("mode", "fetched", "written")}
            step.answer += f", {summary}"
            if summary != {"mode": "full", "fetched": 1, "written": 1}:
                raise StepFailed

        def mirror(step: Step) -> None:
            url = f"{fn['publish']}events"
            answer = requests.get(url, params={"calendar_id": CALENDAR_KEY}, headers=self.admin, timeout=HTTP_TIMEOUT_S)
            body = _expect_status(step, answer, {200})
            found = [item for item in body["items"] if item["id"] == state["event_id"]]
            origins = [item.get("origin") for item in found]
            step.answer += f", event found with origin {origins}"
            if origins != ["manual"]:
                raise StepFailed

        def webhook(step: Step) -> None:
            # What Google sends for a channel calsync does not know: headers only, empty body.
            headers = {
                "X-Goog-Channel-ID": "demo-unknown-channel",
                "X-Goog-Channel-Token": "not-a-calsync-token",
                "X-Goog-Resource-ID": "demo-unknown-resource",
                "X-Goog-Resource-URI": f"{api}calendars/unknown/events",
                "X-Goog-Resource-State": "exists",
                "X-Goog-Message-Number": "2",
                "User-Agent": "APIs-Google",
            }
            _expect_status(step, requests.post(fn["webhook"], headers=headers, timeout=HTTP_TIMEOUT_S), {403})

        def renew(step: Step) -> None:
            answer = requests.post(fn["renew"], json={"job": "poll"}, headers=self.admin, timeout=HTTP_TIMEOUT_S)
            _expect_status(step, answer, {200})

        def scheduler(step: Step) -> None:
            deadline = time.monotonic() + SCHEDULER_WAIT_S
            while True:
                jobs = requests.get(self.endpoints.scheduler, timeout=HTTP_TIMEOUT_S).json()["jobs"]
                poll = next(job for job in jobs if job["name"] == "poll")
                if poll["runs"] >= 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            step.answer = f"poll ran {poll['runs']}x, last answer {poll['last_status'] or poll['last_error']}"
            if poll["runs"] < 1 or poll["last_status"] != 200:
                raise StepFailed

        steps: list[tuple[str, str, str, Callable[[Step], None]]] = [
            ("calendar emulator", "POST calendar/v3/calendars", "200 + id", create_calendar),
            ("calendar emulator", "POST calendar/v3/calendars/{id}/events", "200 + id", create_event),
            ("publish", "POST /calendars (register it)", "200/201", register),
            ("sync", "POST / {calendar_id, reason: admin}", "200, full, fetched 1, written 1", sync),
            ("publish", "GET /events?calendar_id=…", "200, the event, origin manual", mirror),
            ("webhook", "POST / unknown channel", "403", webhook),
            ("renew", 'POST / {"job": "poll"}', "200", renew),
            ("scheduler", f"poll every {DEMO_POLL_S}s -> renew", "fired, renew answered 200", scheduler),
        ]
        for name, request, expected, check in steps:
            needed = _needs(check.__name__)
            if needed and not all(key in state for key in needed):
                self.steps.append(Step(name, request, expected, answer="skipped: an earlier step failed"))
                self.console.print(f"[red]SKIPPED[/red]  {name}: {request} (an earlier step failed)")
                continue
            self.step(name, request, expected, check)

    def table(self) -> Table:
        """The steps and their answers."""
        table = Table(title="calsync demo: one request through every function")
        for column in ("#", "function", "request", "expected", "answer", "ok"):
            table.add_column(column, overflow="fold")
        for number, step in enumerate(self.steps, 1):
            ok = "[green]yes[/green]" if step.ok else "[red]no[/red]"
            table.add_row(str(number), step.name, step.request, step.expected, step.answer, ok)
        return table


def _needs(check_name: str) -> tuple[str, ...]:
    """Which earlier results a step needs (so a failed prerequisite skips it instead of erroring)."""
    return {
        "create_event": ("calendar_id",),
        "register": ("calendar_id",),
        "mirror": ("event_id",),
    }.get(check_name, ())


def _expect_status(step: Step, answer: requests.Response, expected: set[int]) -> dict[str, Any]:
    """Record the answer's status (and error body); fail the step unless the status is expected."""
    step.answer = str(answer.status_code)
    if answer.status_code not in expected:
        step.answer += f" {answer.text[:200].strip()}"
        raise StepFailed
    if not answer.content:
        return {}
    body = answer.json()
    return body if isinstance(body, dict) else {"value": body}


def endpoints_table(endpoints: stack.Endpoints, processes: list[stack.ProcessRecord]) -> Table:
    """The running stack as a table: service, pid, where it answers."""
    table = Table(title="calsync local stack")
    table.add_column("service")
    table.add_column("pid", justify="right")
    table.add_column("address")
    for record in processes:
        table.add_row(record.name, str(record.pid), record.address)
    table.caption = (
        f"Calendar API {endpoints.calendar_api} · project {endpoints.project} · "
        f"logs {endpoints.logs} · admin token in endpoints.json"
    )
    return table


def run(console: Console) -> int:
    """The whole demo; returns the exit code (0 only if every step, and the shutdown, went as expected)."""
    state_dir = Path(tempfile.mkdtemp(prefix="calsync-demo-"))
    config = stack.StackConfig(state_dir=state_dir, ports=dict.fromkeys(stack.PORT_OFFSETS, 0))
    os.environ.setdefault("CALSYNC_DEVSTACK_POLL_S", DEMO_POLL_S)
    console.print(f"Starting a fresh stack for the demo (state in {state_dir}, free ports).")
    try:
        result = stack.up(config, say=console.print)
    except Exception as exc:
        console.print(f"[red]The stack did not start:[/red] {exc}")
        return 1
    console.print(endpoints_table(result.endpoints, result.processes))
    demo = Demo(result.endpoints, console)
    try:
        demo.run()
    finally:
        stopped = stack.down(config) or []
        clean = all(item.outcome in ("stopped", "already gone") for item in stopped)
        dead = not any(stack.is_ours(item.record) for item in stopped)
        demo.steps.append(
            Step(
                "stack",
                "down",
                "every process stopped, every port closed",
                answer=", ".join(sorted({item.outcome for item in stopped})),
                ok=clean and dead,
            )
        )
    console.print(demo.table())
    failed = [step for step in demo.steps if not step.ok]
    if failed:
        console.print(f"[red]{len(failed)} of {len(demo.steps)} steps did not behave as expected.[/red]")
        console.print(f"Logs kept in {config.log_dir}")
        return 1
    shutil.rmtree(state_dir, ignore_errors=True)
    console.print(f"[green]All {len(demo.steps)} steps behaved as expected.[/green]")
    return 0
