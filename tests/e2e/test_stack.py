"""The local stack end to end: ``python -m devstack up|status|down`` as a developer runs it.

Each test uses its own state dir (``CALSYNC_DEVSTACK_DIR``) and free ports (``CALSYNC_DEVSTACK_BASE_PORT=0``),
so a developer's running stack is never touched. One stack is started for the whole lifecycle test
to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from devstack import procs, stack


def devstack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m devstack ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=procs.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a private stack; whatever it started is stopped afterwards, even on failure."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "CALSYNC_DEVSTACK_USAGE_LIMITS"},  # its default
        "CALSYNC_DEVSTACK_DIR": str(tmp_path / "state"),
        "CALSYNC_DEVSTACK_BASE_PORT": "0",
        "CALSYNC_DEVSTACK_POLL_S": "1",
        "COLUMNS": "200",
    }
    yield env
    devstack(env, "down")


def test_up_twice_status_and_down_leave_nothing_behind(stack_env: dict[str, str]) -> None:
    state = Path(stack_env["CALSYNC_DEVSTACK_DIR"])

    started = devstack(stack_env, "up")
    assert started.returncode == 0, started.stdout + started.stderr

    endpoints = stack.Endpoints.model_validate_json((state / "endpoints.json").read_text())
    assert endpoints.calendar_api.endswith("/calendar/v3/")
    assert endpoints.calendar_batch.endswith("/batch/calendar/v3")
    assert endpoints.calendar_control.endswith("/_emulator/")
    assert set(endpoints.functions) == {"webhook", "sync", "renew", "publish"}
    assert endpoints.project == "demo-calsync"
    assert len(endpoints.admin_token) >= 24
    # Usage limits are on by default (calsync paces its writers under them), and the emulator agrees;
    # the writers calsync acts as are listed.
    assert json.loads((state / "endpoints.json").read_text())["usage_limits"] == stack.LOCAL_USAGE_LIMITS
    assert requests.get(f"{endpoints.calendar_control}usage-limits", timeout=10).json() == stack.LOCAL_USAGE_LIMITS
    assert endpoints.writers == list(stack.WRITERS)
    assert len(endpoints.writers) >= 2
    urls = [*endpoints.functions.values(), endpoints.scheduler, f"http://{endpoints.firestore_host}/"]
    urls += [endpoints.calendar_api, endpoints.calendar_batch, endpoints.calendar_control]
    for url in urls:
        assert url.startswith(f"http://{procs.HOST}:"), url
        requests.get(url, timeout=10)  # any HTTP answer counts; a refused connection raises
    calendars = requests.get(f"{endpoints.calendar_api}users/me/calendarList", timeout=10)
    assert calendars.status_code == 200  # the control calendar was created by `up`
    assert calendars.json()["items"]
    assert requests.get(f"http://{endpoints.firestore_host}/", timeout=10).status_code == 200
    assert _queue_ids(endpoints.tasks_host) >= {"calsync-sync", "calsync-publish"}

    pids = stack.PidsFile.model_validate_json((state / "pids.json").read_text())
    names = {record.name for record in pids.processes}
    assert {"firestore", "calendar-emulator", "tasks-emulator", "scheduler"} <= names
    assert {f"function-{name}" for name in endpoints.functions} <= names
    assert all(record.start_ticks is not None for record in pids.processes)

    again = devstack(stack_env, "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout
    assert stack.PidsFile.model_validate_json((state / "pids.json").read_text()) == pids

    shown = devstack(stack_env, "status")
    assert shown.returncode == 0, shown.stdout
    assert "function-publish" in shown.stdout

    poll = _wait_for_poll(endpoints.scheduler)
    assert poll["runs"] >= 1
    assert poll["last_status"] is not None, poll  # the renew function answered the scheduler's POST

    stopped = devstack(stack_env, "down")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for record in pids.processes:
        assert not procs.pid_alive(record.pid), record.name
        assert not procs.port_open(record.port), record.name
    assert not (state / "pids.json").exists()
    assert not (state / "endpoints.json").exists()

    nothing = devstack(stack_env, "down")
    assert nothing.returncode == 0
    assert "Nothing running" in nothing.stdout
    assert devstack(stack_env, "status").returncode == 3


def test_busy_port_is_named_and_nothing_starts(stack_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind((procs.HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**stack_env, "CALSYNC_DEVSTACK_PORT_SYNC": str(port)}
        result = devstack(env, "up")
    assert result.returncode == 1
    assert f"{procs.HOST}:{port} (sync)" in result.stdout
    assert "already in use" in result.stdout
    assert not (Path(stack_env["CALSYNC_DEVSTACK_DIR"]) / "pids.json").exists()


def test_missing_java_says_how_to_install_and_fails(stack_env: dict[str, str], tmp_path: Path) -> None:
    env = {**stack_env, "PATH": str(tmp_path)}  # no java, no gcloud on this PATH
    result = devstack(env, "up")
    assert result.returncode == 1
    assert "Java is missing" in result.stdout
    assert "google-cloud-cli-firestore-emulator" in result.stdout
    assert not (Path(stack_env["CALSYNC_DEVSTACK_DIR"]) / "pids.json").exists()


def _queue_ids(tasks_host: str) -> set[str]:
    channel = grpc.insecure_channel(tasks_host)
    try:
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        parent = f"projects/{stack.PROJECT}/locations/{stack.REGION}"
        return {queue.name.rsplit("/", 1)[1] for queue in client.list_queues(parent=parent, timeout=10)}
    finally:
        channel.close()


def _wait_for_poll(scheduler: str, timeout_s: float = 20.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = requests.get(scheduler, timeout=10).json()["jobs"]
        poll: dict[str, object] = next(job for job in jobs if job["name"] == "poll")
        if (poll["runs"] and poll["last_status"] is not None) or time.monotonic() > deadline:
            return poll
        time.sleep(0.2)
