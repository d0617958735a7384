"""``CloudTasksQueue`` against ``gcloud-tasks-emulator`` (its own venv) and a local HTTP receiver.

The emulator has no task-name dedup (same name twice is dispatched twice), so the
``AlreadyExists`` → ``False`` mapping (and outage retries) are tested against a scripted stand-in for
the client's ``create_task``, at the third-party edge; on Google's service a second task of the same
name is refused with exactly that error.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

from calsync import errors
from calsync.adapters.cloud_tasks import CloudTasksQueue, default_retry, task_id
from calsync.ports import TaskRequest

PROJECT = "demo-calsync"
LOCATION = "southamerica-east1"
DELIVERY_TIMEOUT_S = 10.0


@dataclass
class Received:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: datetime


class Receiver:
    """A 127.0.0.1 HTTP server standing in for a function: records every POST, answers 200."""

    def __init__(self) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        inbox = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                # Header names are case-insensitive (the emulator sends "X-cloudtasks-taskname").
                headers = {k.lower(): v for k, v in self.headers.items()}
                inbox.put(Received(self.path, headers, body, datetime.now(UTC)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def next(self, timeout_s: float = DELIVERY_TIMEOUT_S) -> Received:
        return self.requests.get(timeout=timeout_s)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture
def tasks(tasks_emulator: str) -> Iterator[CloudTasksQueue]:
    adapter = CloudTasksQueue.for_emulator(tasks_emulator, PROJECT, LOCATION)
    yield adapter
    adapter.close()


@pytest.fixture
def queue_id(tasks: CloudTasksQueue) -> str:
    """A fresh queue per test (the emulator keeps queues for the whole session)."""
    name = f"q-{uuid.uuid4().hex[:10]}"
    tasks.ensure_queue(name)
    return name


def test_emulator_listens_on_loopback_only(tasks_emulator: str) -> None:
    port = tasks_emulator.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True)
    addresses = [line.split()[3].rsplit(":", 1)[0] for line in out.stdout.splitlines() if line.strip()]
    assert addresses, out.stdout
    assert all(addr in {"127.0.0.1", "[::ffff:127.0.0.1]"} for addr in addresses), addresses


def test_enqueue_posts_json_with_task_name(tasks: CloudTasksQueue, queue_id: str, receiver: Receiver) -> None:
    payload = {"calendar_key": "prof-1", "reason": "webhook", "count": 3}
    created = tasks.enqueue(
        TaskRequest(queue=queue_id, url=f"{receiver.url}/sync", payload=payload, name="sync-prof-1-000001")
    )

    assert created is True
    got = receiver.next()
    assert got.path == "/sync"
    assert json.loads(got.body) == payload
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-cloudtasks-taskname"] == "sync-prof-1-000001"
    assert got.headers["x-cloudtasks-queuename"] == tasks.queue_path(queue_id)


def test_unnamed_task_and_extra_headers(tasks: CloudTasksQueue, queue_id: str, receiver: Receiver) -> None:
    created = tasks.enqueue(
        TaskRequest(queue=queue_id, url=receiver.url, payload={"a": 1}, headers={"X-Calsync-Reason": "poll"})
    )

    assert created is True
    got = receiver.next()
    assert got.headers["x-calsync-reason"] == "poll"
    assert got.headers["x-cloudtasks-taskname"]  # the service names it


def test_name_is_sanitised_for_cloud_tasks(tasks: CloudTasksQueue, queue_id: str, receiver: Receiver) -> None:
    tasks.enqueue(TaskRequest(queue=queue_id, url=receiver.url, payload={}, name="sync:prof/1@2026.01"))

    got = receiver.next()
    name = got.headers["x-cloudtasks-taskname"]
    assert name == task_id("sync:prof/1@2026.01")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,500}", name)


def test_schedule_time_is_honoured(tasks: CloudTasksQueue, queue_id: str, receiver: Receiver) -> None:
    when = datetime.now(UTC) + timedelta(seconds=1.5)
    tasks.enqueue(TaskRequest(queue=queue_id, url=receiver.url, payload={"late": True}, schedule_time=when))

    got = receiver.next()
    assert got.at >= when
    assert float(got.headers["x-cloudtasks-tasketa"]) == pytest.approx(when.timestamp(), abs=1e-3)


def test_oidc_token_is_attached_when_configured(tasks_emulator: str) -> None:
    adapter = CloudTasksQueue.for_emulator(
        tasks_emulator, PROJECT, LOCATION, invoker_service_account="invoker@demo.iam.gserviceaccount.com"
    )
    try:
        task = adapter.build_task(TaskRequest(queue="q", url="https://sync-xyz.a.run.app/", payload={"x": 1}))
    finally:
        adapter.close()

    token = task.http_request.oidc_token
    assert token.service_account_email == "invoker@demo.iam.gserviceaccount.com"
    assert token.audience == "https://sync-xyz.a.run.app/"


def test_each_target_gets_its_own_invoker(tasks_emulator: str) -> None:
    invokers = {
        "https://r-p.cloudfunctions.net/calsync-prod-sync": "sync-inv@demo.iam.gserviceaccount.com",
        "https://r-p.cloudfunctions.net/calsync-prod-publish": "publish-inv@demo.iam.gserviceaccount.com",
    }
    adapter = CloudTasksQueue(PROJECT, LOCATION, emulator_host=tasks_emulator, invokers_by_url=invokers)
    try:
        to_sync = adapter.build_task(TaskRequest(queue="q", url=f"{next(iter(invokers))}/", payload={}))
        to_publish = adapter.build_task(
            TaskRequest(
                queue="q", url="https://r-p.cloudfunctions.net/calsync-prod-publish/publish/tasks/apply", payload={}
            )
        )
        elsewhere = adapter.build_task(TaskRequest(queue="q", url="https://r-p.cloudfunctions.net/other", payload={}))
    finally:
        adapter.close()

    assert to_sync.http_request.oidc_token.service_account_email == "sync-inv@demo.iam.gserviceaccount.com"
    assert to_publish.http_request.oidc_token.service_account_email == "publish-inv@demo.iam.gserviceaccount.com"
    assert "oidc_token" not in elsewhere.http_request


def test_no_oidc_token_without_invoker(tasks: CloudTasksQueue) -> None:
    task = tasks.build_task(TaskRequest(queue="q", url="http://127.0.0.1:1/", payload={}))

    assert "oidc_token" not in task.http_request


def test_enqueue_to_missing_queue_is_queue_unavailable(tasks: CloudTasksQueue) -> None:
    # The emulator answers FAILED_PRECONDITION (Google: NOT_FOUND); both mean "not now" to the caller.
    with pytest.raises(errors.QueueUnavailable):
        tasks.enqueue(TaskRequest(queue=f"missing-{uuid.uuid4().hex[:6]}", url="http://127.0.0.1:1/", payload={}))


def test_ensure_queue_twice_is_harmless(tasks: CloudTasksQueue) -> None:
    name = f"q-{uuid.uuid4().hex[:10]}"

    assert tasks.ensure_queue(name) == tasks.ensure_queue(name) == tasks.queue_path(name)


def test_emulator_does_not_dedup_names(tasks: CloudTasksQueue, queue_id: str, receiver: Receiver) -> None:
    """Documents the emulator gap: the same name is accepted twice and dispatched twice."""
    req = TaskRequest(queue=queue_id, url=receiver.url, payload={"n": 1}, name="same-name")

    assert tasks.enqueue(req) is True
    assert tasks.enqueue(req) is True
    assert receiver.next().headers["x-cloudtasks-taskname"] == "same-name"
    assert receiver.next().headers["x-cloudtasks-taskname"] == "same-name"


# --- Google's behaviours the emulator lacks: a client raising what Google raises ---------------------


class ScriptedClient:
    """Stands in for ``tasks_v2.CloudTasksClient.create_task``: raises or returns scripted outcomes.

    Used only for what Google's service does and the emulator cannot (AlreadyExists, outages).
    """

    def __init__(self, *outcomes: BaseException | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[dict[str, Any]] = []

    def create_task(self, **kwargs: Any) -> tasks_v2.Task:
        self.calls.append(kwargs)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if outcome is not None:
            raise outcome
        return tasks_v2.Task(kwargs["task"])


def _adapter_with(client: ScriptedClient, *, total_s: float = 10.0) -> CloudTasksQueue:
    return CloudTasksQueue(PROJECT, LOCATION, client=client, retry=default_retry(total_s))  # type: ignore[arg-type]


def test_already_exists_means_already_queued() -> None:
    client = ScriptedClient(gexc.AlreadyExists("Requested entity already exists"))

    assert _adapter_with(client).enqueue(TaskRequest(queue="q", url="https://x/", payload={}, name="n-1")) is False
    (sent,) = client.calls
    assert sent["parent"] == f"projects/{PROJECT}/locations/{LOCATION}/queues/q"
    assert sent["task"].name == f"projects/{PROJECT}/locations/{LOCATION}/queues/q/tasks/n-1"


def test_transient_errors_are_retried_then_succeed() -> None:
    client = ScriptedClient(gexc.ServiceUnavailable("down"), gexc.DeadlineExceeded("slow"), None)

    assert _adapter_with(client).enqueue(TaskRequest(queue="q", url="https://x/", payload={}, name="n-2")) is True
    assert len(client.calls) == 3


def test_retry_after_lost_reply_meets_already_exists() -> None:
    client = ScriptedClient(gexc.ServiceUnavailable("reply lost"), gexc.AlreadyExists("exists"))

    assert _adapter_with(client).enqueue(TaskRequest(queue="q", url="https://x/", payload={}, name="n")) is False
    assert len(client.calls) == 2


def test_persistent_transient_errors_become_queue_unavailable() -> None:
    client = ScriptedClient(gexc.ResourceExhausted("quota"))

    with pytest.raises(errors.QueueUnavailable) as info:
        _adapter_with(client, total_s=0.5).enqueue(TaskRequest(queue="q", url="https://x/", payload={}))
    assert info.value.retryable is True
    assert len(client.calls) >= 2


def test_invalid_argument_is_invalid_request() -> None:
    client = ScriptedClient(gexc.InvalidArgument("schedule_time too far"))

    with pytest.raises(errors.InvalidRequest):
        _adapter_with(client).enqueue(TaskRequest(queue="q", url="https://x/", payload={}))
    assert len(client.calls) == 1


def test_task_id_rules() -> None:
    assert task_id("sync-prof_1") == "sync-prof_1"
    assert task_id("a:b") != task_id("a.b")
    long = task_id("x" * 600)
    assert len(long) <= 500
    assert re.fullmatch(r"[A-Za-z0-9_-]+", long)
    assert task_id("x" * 600) == long  # deterministic
    with pytest.raises(errors.InvalidRequest):
        task_id("")
