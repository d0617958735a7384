"""The chaos run's local stack and its instrumented ports.

``ChaosStack`` starts (or reuses) the three emulators and runs the ``webhook`` and ``sync`` functions
under functions-framework on 127.0.0.1 with a 1 s debounce and short retry budgets, so Google's push
path (emulator → webhook → Cloud Tasks → sync function → Firestore) runs for real next to the
in-process services the chaos driver calls. Everything it started is stopped by pid.

Instrumented ports (in-process only; ``shared/`` never sees this module):

- ``RecordingApi`` remembers every write calsync sends to Google (batch parts and single calls) with
  its outcome, so the checks know exactly what calsync wrote and can prove it never touched a person's
  or a past event;
- ``CrashingApi`` / ``CrashingStore`` raise ``ChaosCrash`` on the n-th call of one method (before the
  call for reads and store writes, *after* it for ``execute_batch``: Google has the writes, calsync
  never learns the outcome) — an exception mid-sync or mid-apply;
- ``ListQueue`` is an in-memory task queue whose publish tasks the driver runs (and retries) itself.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from google.cloud import firestore

from calsync import errors
from calsync.adapters.cloud_tasks import CloudTasksQueue
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.adapters.google_calendar import GoogleCalendarApi, RetryPolicy
from calsync.bootstrap import Container, bootstrap
from calsync.config import Settings
from calsync.ports import BatchOp, BatchResult, ListEvents, TaskRequest
from devstack import procs

PROJECT = "demo-calsync"
REGION = "southamerica-east1"
DEBOUNCE_S = 1
FUNCTION_PAGE_SIZE = 3  # small pages: a sync of a few events spans pages, so faults land mid-sync
FAST_RETRY = RetryPolicy(max_attempts=4, max_total_s=3.0, base_s=0.05, cap_s=0.3)


class ChaosCrash(RuntimeError):
    """An injected crash (a process dying mid-work); never a calsync error type."""


@dataclass
class ChaosStack:
    """URLs of the emulators and functions, plus the processes this object started."""

    calendar: str
    firestore_host: str
    tasks_host: str
    log_dir: Path
    sync_queue: str = ""
    webhook_url: str = ""
    sync_url: str = ""
    servers: list[procs.Server] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        log_dir: Path,
        *,
        calendar: str | None = None,
        firestore_host: str | None = None,
        tasks_host: str | None = None,
    ) -> ChaosStack:
        """Start what is not given (emulators), then the webhook and sync functions."""
        servers: list[procs.Server] = []
        try:
            if firestore_host is None:
                server = procs.start_firestore(procs.free_port(), log_dir)
                servers.append(server)
                firestore_host = f"{procs.HOST}:{server.port}"
            if calendar is None:
                server = procs.start_calendar_emulator(procs.free_port(), log_dir)
                servers.append(server)
                calendar = f"http://{procs.HOST}:{server.port}"
            if tasks_host is None:
                server = procs.start_tasks_emulator(procs.free_port(), log_dir)
                servers.append(server)
                tasks_host = f"{procs.HOST}:{server.port}"
            stack = cls(calendar, firestore_host, tasks_host, log_dir, servers=servers)
            stack._start_functions()
        except BaseException:
            for server in servers:
                server.stop()
            raise
        return stack

    def _start_functions(self) -> None:
        self.sync_queue = f"chaos-sync-{uuid.uuid4().hex[:8]}"
        queue = CloudTasksQueue.for_emulator(self.tasks_host, PROJECT, REGION)
        try:
            queue.ensure_queue(self.sync_queue)
        finally:
            queue.close()
        ports = {name: procs.free_port() for name in ("webhook", "sync")}
        urls = {name: f"http://{procs.HOST}:{port}/" for name, port in ports.items()}
        self.webhook_url, self.sync_url = urls["webhook"], urls["sync"]
        env = {
            "CALSYNC_ENVIRONMENT": "dev",
            # As the in-process use cases (SeedRun's settings): all-day dates are days of one zone.
            "CALSYNC_DISPLAY_TIME_ZONE": "UTC",
            "CALSYNC_GCP_PROJECT": PROJECT,
            "CALSYNC_REGION": REGION,
            "CALSYNC_CONTROL_CALENDAR_ID": "control@chaos.local",
            "CALSYNC_WEBHOOK_URL": self.webhook_url,
            "CALSYNC_SYNC_URL": self.sync_url,
            "CALSYNC_SYNC_QUEUE": self.sync_queue,
            "CALSYNC_RENEW_QUEUE": self.sync_queue,
            "CALSYNC_TASKS_EMULATOR_HOST": self.tasks_host,
            "CALSYNC_CALENDAR_API_ENDPOINT": f"{self.calendar}/calendar/v3/",
            "CALSYNC_CALENDAR_BATCH_URI": f"{self.calendar}/batch/calendar/v3",
            "CALSYNC_TOKEN_URI": f"{self.calendar}/token",
            "CALSYNC_CALENDAR_CREDENTIALS": "anonymous",
            "CALSYNC_SECRETS_BACKEND": "env",
            "CALSYNC_ADMIN_TOKEN": "chaos-admin-token-not-a-secret",
            "CALSYNC_DEBOUNCE_S": str(DEBOUNCE_S),
            "CALSYNC_PAGE_SIZE": str(FUNCTION_PAGE_SIZE),
            "CALSYNC_RETRY_MAX_ATTEMPTS": "4",
            "CALSYNC_RETRY_MAX_TOTAL_S": "3",
            "CALSYNC_LOCK_LEASE_S": "30",
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "PYTHONUNBUFFERED": "1",
        }
        for name, port in ports.items():
            self.servers.append(procs.start_function(name, port, self.log_dir, env))

    def stop(self) -> None:
        """Stop exactly the processes this stack started."""
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def function_logs(self) -> list[Path]:
        """The functions' stdout logs (what Cloud Logging would receive from them)."""
        return sorted(self.log_dir.glob("function-*.log"))

    # --- data reset and clients ------------------------------------------------------------------

    def reset(self) -> None:
        """Wipe the Calendar emulator (faults, push mode, quotas included) and every Firestore document."""
        requests.post(f"{self.calendar}/_emulator/reset", timeout=10).raise_for_status()
        url = f"http://{self.firestore_host}/emulator/v1/projects/{PROJECT}/databases/(default)/documents"
        requests.delete(url, timeout=10).raise_for_status()

    def control(self, path: str, body: Any = None, *, method: str = "POST") -> Any:
        """Call the Calendar emulator's control API."""
        answer = requests.request(method, f"{self.calendar}/_emulator/{path}", json=body, timeout=10)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def store(self) -> FirestoreStateStore:
        """A Firestore state store on the emulator (the ``dev`` namespace, as the functions use)."""
        os.environ["FIRESTORE_EMULATOR_HOST"] = self.firestore_host
        return FirestoreStateStore(firestore.Client(project=PROJECT), environment="dev")

    def api(self, *, page_size: int = 2500, batch_size: int = 50) -> GoogleCalendarApi:
        """calsync's Calendar adapter on the emulator (the default service account), fast retries."""
        return GoogleCalendarApi.for_emulator(
            self.calendar, page_size=page_size, batch_size=batch_size, retry=FAST_RETRY, timeout_s=20
        )

    def tasks(self) -> CloudTasksQueue:
        """The Cloud Tasks emulator (sync tasks go to the sync function)."""
        return CloudTasksQueue.for_emulator(self.tasks_host, PROJECT, REGION)

    def settings(self, **overrides: Any) -> Settings:
        """The settings of in-process use cases on this stack (the functions get the same by env)."""
        values: dict[str, Any] = {
            "environment": "dev",
            "gcp_project": PROJECT,
            "region": REGION,
            "control_calendar_id": "",
            "webhook_url": self.webhook_url,
            "sync_url": self.sync_url,
            "sync_queue": self.sync_queue,
            "tasks_emulator_host": self.tasks_host,
            "calendar_credentials": "anonymous",
            "secrets_backend": "env",
            "calendar_api_endpoint": f"{self.calendar}/calendar/v3/",
            "calendar_batch_uri": f"{self.calendar}/batch/calendar/v3",
        }
        return Settings(**(values | overrides))

    def container(self, settings: Settings, **ports: Any) -> Container:
        """The composition root on this stack: Firestore and Cloud Tasks emulators unless overridden."""
        os.environ["FIRESTORE_EMULATOR_HOST"] = self.firestore_host
        return bootstrap(settings, **ports)


# --- instrumented ports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteRecord:
    """One write calsync sent to Google and what came of it."""

    kind: str  # insert | update | delete
    calendar_id: str
    event_id: str
    body: dict[str, Any] | None
    ok: bool
    error_code: str | None
    if_match: str | None = None


class RecordingApi:
    """Forwards to a ``CalendarApi`` and records every event write (thread-safe)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[WriteRecord] = []
        self.tokens: set[str] = set()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _record(self, record: WriteRecord) -> None:
        with self._lock:
            self.writes.append(record)

    def list_events(self, query: ListEvents) -> Any:
        """events.list, remembering the page and sync tokens Google handed out (for the log audit)."""
        page = self.inner.list_events(query)
        with self._lock:
            self.tokens.update(t for t in (page.next_page_token, page.next_sync_token) if t)
        return page

    def execute_batch(self, ops: list[BatchOp]) -> list[BatchResult]:
        """Batch writes (the publish path)."""
        results: list[BatchResult] = self.inner.execute_batch(ops)
        for result in results:
            op = result.op
            if op.kind in ("insert", "update", "delete"):
                event_id = op.event_id or str((op.body or {}).get("id", ""))
                self._record(
                    WriteRecord(
                        op.kind,
                        op.calendar_id,
                        event_id,
                        dict(op.body) if op.body is not None else None,
                        result.error is None,
                        result.error.code if result.error is not None else None,
                        op.if_match,
                    )
                )
        return results

    def _single(self, kind: str, calendar_id: str, event_id: str, body: Any, call: Callable[[], Any]) -> Any:
        try:
            out = call()
        except errors.CalsyncError as exc:
            self._record(WriteRecord(kind, calendar_id, event_id, body, False, exc.code))
            raise
        self._record(WriteRecord(kind, calendar_id, event_id, body, True, None))
        return out

    def execute_op(self, op: BatchOp) -> Any:
        """One write as its own request (a wrapper such as the writer gate sends its writes here)."""
        if op.kind == "get":
            return self.inner.execute_op(op)
        event_id = op.event_id or str((op.body or {}).get("id", ""))
        body = dict(op.body) if op.body is not None else None
        return self._single(op.kind, op.calendar_id, event_id, body, lambda: self.inner.execute_op(op))

    def insert_event(self, calendar_id: str, body: Any, **kwargs: Any) -> Any:
        """events.insert."""
        event_id = str(body.get("id", ""))
        return self._single(
            "insert", calendar_id, event_id, dict(body), lambda: self.inner.insert_event(calendar_id, body, **kwargs)
        )

    def update_event(self, calendar_id: str, event_id: str, body: Any, **kwargs: Any) -> Any:
        """events.update."""
        return self._single(
            "update",
            calendar_id,
            event_id,
            dict(body),
            lambda: self.inner.update_event(calendar_id, event_id, body, **kwargs),
        )

    def delete_event(self, calendar_id: str, event_id: str, **kwargs: Any) -> Any:
        """events.delete."""
        return self._single(
            "delete", calendar_id, event_id, None, lambda: self.inner.delete_event(calendar_id, event_id, **kwargs)
        )


class CrashingApi:
    """Forwards to a ``CalendarApi``; the ``at``-th call of ``method`` crashes (once)."""

    def __init__(self, inner: Any, method: str, at: int) -> None:
        self.inner = inner
        self.method = method
        self.at = at
        self.calls = 0
        self.crashed = False
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name != self.method:
            return target

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
                hit = self.calls == self.at and not self.crashed
                if hit:
                    self.crashed = True
            if hit and name != "execute_batch":
                raise ChaosCrash(f"injected crash before {name} #{self.at}")
            out = target(*args, **kwargs)
            if hit:
                raise ChaosCrash(f"injected crash after {name} #{self.at}")
            return out

        return wrapped


class CrashingStore:
    """Forwards to a state store; the ``at``-th call of ``method`` crashes before it runs (once)."""

    def __init__(self, inner: Any, method: str, at: int) -> None:
        self.inner = inner
        self.method = method
        self.at = at
        self.calls = 0
        self.crashed = False
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name != self.method:
            return target

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls += 1
                hit = self.calls == self.at and not self.crashed
                if hit:
                    self.crashed = True
            if hit:
                raise ChaosCrash(f"injected crash before {name} #{self.at}")
            return target(*args, **kwargs)

        return wrapped


class ListQueue:
    """An in-memory ``TaskQueue`` (deduplicated by name, like Cloud Tasks); the driver runs its tasks."""

    def __init__(self) -> None:
        self.tasks: list[TaskRequest] = []
        self._names: set[str] = set()
        self._lock = threading.Lock()

    def enqueue(self, task: TaskRequest) -> bool:
        """Record the task; False when its name was already used."""
        with self._lock:
            if task.name is not None:
                if task.name in self._names:
                    return False
                self._names.add(task.name)
            self.tasks.append(task)
            return True

    def pop_all(self) -> list[TaskRequest]:
        """Take the queued tasks."""
        with self._lock:
            tasks, self.tasks = self.tasks, []
            return tasks
