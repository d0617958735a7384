"""Shared plumbing of the benchmarks: the local stack, emulator control, counters, percentiles, tables.

Every server is started on a free 127.0.0.1 port through ``devstack.procs`` and stopped by its pid
when the ``BenchStack`` context ends, on failure too.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from calsync import logs
from calsync.bootstrap import Container, bootstrap
from calsync.config import Settings
from calsync.model import Conflict, MirrorEvent
from calsync.ports import StateStore
from calsync.ports.queries import MirrorQuery
from devstack import procs

PROJECT = "demo-calsync"
REGION = "southamerica-east1"
RESULTS = Path(__file__).resolve().parent / "results"
BARE_FUNCTION = Path(__file__).resolve().parent / "bare_function" / "main.py"


# --- figures -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(ours: float | None, theirs: float | None) -> str:
    """``theirs / ours`` as ``"12.3x"`` (how many times fewer/faster calsync is); ``"—"`` when undefined."""
    if ours is None or theirs is None or ours == 0:
        return "—"
    return f"{theirs / ours:.3g}x"


@dataclass
class Row:
    """One line of the results table."""

    bench: str
    metric: str
    calsync: str
    reference: str = "—"
    ratio: str = "—"
    note: str = ""


def fmt(value: float | int | None, digits: int = 3) -> str:
    """A figure for the table: integers with thousands separators, floats to ``digits`` significant digits."""
    if value is None:
        return "—"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return f"{int(value):,}"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a GitHub markdown table (pipes in cells escaped)."""
    header = ["bench", "metric", "calsync", "reference", "ratio", "note"]

    def cells(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    lines = [cells(header), "| " + " | ".join("---" for _ in header) + " |"]
    lines += [cells([r.bench, r.metric, r.calsync, r.reference, r.ratio, r.note]) for r in rows]
    return "\n".join(lines)


def machine() -> str:
    """What the figures were measured on."""
    return (
        f"{platform.system()} {platform.machine()}, nproc={os.cpu_count()}, "
        f"Python {platform.python_version()}; a shared machine with other jobs running (noisy: "
        f"compare ratios, not absolute times)"
    )


class Stopwatch:
    """Wall time of a ``with`` block, in seconds (``elapsed``)."""

    def __enter__(self) -> Stopwatch:
        self.started = time.monotonic()
        self.elapsed = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.started


def wait_for(condition: Callable[[], Any], *, timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")


# --- counting mirror store -----------------------------------------------------------------------


class CountingStore:
    """Wraps a ``StateStore`` and counts mirror documents read (by id or by query) and written."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def reset(self) -> None:
        """Zero the counters."""
        self.counts.clear()

    def get_events(self, calendar_key: str, event_ids: Sequence[str]) -> dict[str, MirrorEvent]:
        """Counted ``get_events``."""
        self.counts["mirror_reads"] += len(event_ids)
        return self.inner.get_events(calendar_key, event_ids)

    def put_events(self, events: Sequence[MirrorEvent]) -> None:
        """Counted ``put_events``."""
        self.counts["mirror_writes"] += len(events)
        self.inner.put_events(events)

    def merge_observed_events(self, events: Sequence[MirrorEvent]) -> None:
        """Counted ``merge_observed_events`` (the sync's mirror writes)."""
        self.counts["mirror_writes"] += len(events)
        self.inner.merge_observed_events(events)

    def record_published(self, events: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Counted ``record_published`` (the publisher's mirror writes)."""
        self.counts["mirror_writes"] += len(events)
        return self.inner.record_published(events)

    def system_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Counted overlap query (documents read)."""
        found = self.inner.system_events_overlapping(calendar_key, time_min, time_max)
        self.counts["mirror_reads"] += len(found)
        return found

    def manual_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Counted overlap query (documents read)."""
        found = self.inner.manual_events_overlapping(calendar_key, time_min, time_max)
        self.counts["mirror_reads"] += len(found)
        return found

    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Counted ``put_conflicts``."""
        self.counts["conflict_writes"] += len(conflicts)
        self.inner.put_conflicts(conflicts)

    def window_event_ids(self, calendar_key: str, time_min: datetime, time_max: datetime) -> set[str]:
        """Counted window query (ids read from the mirror)."""
        ids = self.inner.window_event_ids(calendar_key, time_min, time_max)
        self.counts["mirror_reads"] += len(ids)
        return ids

    def list_mirror_events(self, spec: MirrorQuery) -> tuple[list[MirrorEvent], str | None]:
        """Counted page of the mirror."""
        page, token = self.inner.list_mirror_events(spec)
        self.counts["mirror_reads"] += len(page)
        return page, token

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# --- the Calendar emulator's control API ---------------------------------------------------------


@dataclass
class Emulator:
    """The Calendar emulator's control API (``/_emulator/*``)."""

    base: str

    def control(self, path: str, body: Any = None, method: str = "POST") -> Any:
        """Call a control endpoint and return its JSON."""
        response = requests.request(method, f"{self.base}/_emulator/{path}", json=body, timeout=600)
        response.raise_for_status()
        return response.json() if response.content else None

    def stats(self) -> dict[str, Any]:
        """The request counters."""
        return dict(self.control("stats", method="GET"))

    def reset_stats(self) -> None:
        """Zero the request counters."""
        self.control("stats/reset")

    def calls(self) -> int:
        """API calls since the last stats reset (batch parts counted one each, envelopes not)."""
        return sum(int(v) for v in self.stats()["methods"].values())

    def quota(self, **settings: Any) -> None:
        """Set quota settings (omitted ones keep their value)."""
        self.control("quota", settings)

    def unlimited(self) -> None:
        """Raise the quotas so setup and non-quota benchmarks are never throttled."""
        self.quota(per_user_per_minute=10**9, per_project_per_minute=10**9, rate_429=0.0)


# --- the stack -----------------------------------------------------------------------------------


@dataclass
class BenchStack:
    """Firestore emulator, Calendar emulator and Cloud Tasks emulator, plus functions on demand."""

    state_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="calsync-bench-")))
    servers: list[procs.Server] = field(default_factory=list)
    firestore_host: str = ""
    calendar_base: str = ""
    tasks_host: str = ""
    keep_logs: bool = False

    @property
    def logs(self) -> Path:
        """One log file per server."""
        return self.state_dir / "logs"

    @property
    def emulator(self) -> Emulator:
        """The Calendar emulator's control API."""
        return Emulator(self.calendar_base)

    def __enter__(self) -> BenchStack:
        try:
            firestore = self._keep(procs.start_firestore(procs.free_port(), self.logs))
            self.firestore_host = f"{procs.HOST}:{firestore.port}"
            os.environ["FIRESTORE_EMULATOR_HOST"] = self.firestore_host
            os.environ.setdefault("GOOGLE_CLOUD_PROJECT", PROJECT)
            calendar = self._keep(procs.start_calendar_emulator(procs.free_port(), self.logs))
            self.calendar_base = f"http://{procs.HOST}:{calendar.port}"
            tasks = self._keep(procs.start_tasks_emulator(procs.free_port(), self.logs))
            self.tasks_host = f"{procs.HOST}:{tasks.port}"
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _keep(self, server: procs.Server) -> procs.Server:
        self.servers.append(server)
        return server

    def stop(self) -> None:
        """Stop every server this stack started, by pid, newest first."""
        while self.servers:
            server = self.servers.pop()
            with contextlib.suppress(Exception):
                server.stop()
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        if self.keep_logs:
            print(f"[bench] server logs kept in {self.logs}", file=sys.stderr)
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def stop_server(self, server: procs.Server) -> None:
        """Stop one server started by this stack."""
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    def reset(self) -> None:
        """Wipe Firestore's documents and the Calendar emulator's state."""
        url = f"http://{self.firestore_host}/emulator/v1/projects/{PROJECT}/databases/(default)/documents"
        requests.delete(url, timeout=60).raise_for_status()
        self.emulator.control("reset")
        self.emulator.unlimited()

    def function_env(self, **overrides: str) -> dict[str, str]:
        """The environment a calsync function needs on this stack (``overrides`` are ``CALSYNC_*`` values)."""
        env = {
            "CALSYNC_ENVIRONMENT": "dev",
            "CALSYNC_GCP_PROJECT": PROJECT,
            "CALSYNC_REGION": REGION,
            "CALSYNC_CONTROL_CALENDAR_ID": "control@local",
            # Placeholders for the functions a benchmark does not run (Settings requires every URL).
            "CALSYNC_WEBHOOK_URL": "http://127.0.0.1:9/",
            "CALSYNC_SYNC_URL": "http://127.0.0.1:9/",
            "CALSYNC_RENEW_URL": "http://127.0.0.1:9/",
            "CALSYNC_PUBLISH_URL": "http://127.0.0.1:9/",
            "CALSYNC_TASKS_EMULATOR_HOST": self.tasks_host,
            "CALSYNC_CALENDAR_API_ENDPOINT": f"{self.calendar_base}/calendar/v3/",
            "CALSYNC_CALENDAR_BATCH_URI": f"{self.calendar_base}/batch/calendar/v3",
            "CALSYNC_TOKEN_URI": f"{self.calendar_base}/token",
            "CALSYNC_CALENDAR_CREDENTIALS": "anonymous",
            "CALSYNC_SECRETS_BACKEND": "env",
            "CALSYNC_ADMIN_TOKEN": "bench-admin-token-not-a-secret",
            "CALSYNC_LOG_LEVEL": "WARNING",
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "PYTHONUNBUFFERED": "1",
        }
        env.update({f"CALSYNC_{k.upper()}": v for k, v in overrides.items()})
        return env

    def container(self, settings: Mapping[str, Any] | None = None, **ports: Any) -> Container:
        """The composition root on this stack (the functions' settings, ``settings`` over them).

        Ports not given in ``ports`` are the emulators': Firestore, the Calendar emulator with
        anonymous credentials, the Cloud Tasks emulator.
        """
        values: dict[str, Any] = {
            key.removeprefix("CALSYNC_").lower(): value
            for key, value in self.function_env().items()
            if key.startswith("CALSYNC_")
        }
        values["display_time_zone"] = "UTC"
        os.environ["FIRESTORE_EMULATOR_HOST"] = self.firestore_host
        return bootstrap(Settings(**(values | dict(settings or {}))), **ports)

    def start_function(self, name: str, env: Mapping[str, str], port: int = 0) -> tuple[procs.Server, str]:
        """A calsync function under functions-framework (on ``port``, or a free one); the server and its URL."""
        port = port or procs.free_port()
        server = self._keep(procs.start_function(name, port, self.logs, dict(env)))
        return server, f"http://{procs.HOST}:{port}/"

    def start_bare_function(self) -> tuple[procs.Server, str]:
        """The P3 reference function (only answers 200); the server and its URL."""
        port = procs.free_port()
        argv = [
            sys.executable,
            "-m",
            "functions_framework",
            "--target=main",
            f"--source={BARE_FUNCTION}",
            f"--host={procs.HOST}",
            f"--port={port}",
        ]
        server = self._keep(procs.start("function-bare", argv, port=port, log_dir=self.logs))
        return server, f"http://{procs.HOST}:{port}/"


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """calsync's in-process logs at ERROR on stderr, so stdout stays the results table."""
    logs.configure("ERROR", stream=sys.stderr)
    yield
