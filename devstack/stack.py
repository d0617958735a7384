"""The local stack: every stand-in and the four functions on 127.0.0.1, started and stopped by pid.

``up`` starts Google's Firestore emulator, the Calendar emulator, the Cloud Tasks emulator (own venv),
the optional Secret Manager fake, each function under functions-framework and the local scheduler
loop; creates the control calendar and the Cloud Tasks queues; waits until each answers; then writes
``endpoints.json`` (what clients need) and ``pids.json`` (what ``down`` stops) in the state dir.

The state dir is ``.devstack/`` unless ``CALSYNC_DEVSTACK_DIR`` says otherwise; ports are
``CALSYNC_DEVSTACK_BASE_PORT`` plus a fixed offset per service (``0`` picks free ports), each
overridable with ``CALSYNC_DEVSTACK_PORT_<SERVICE>``. ``CALSYNC_DEVSTACK_USAGE_LIMITS=local|off``
(default ``local``) turns the Calendar emulator's per-account usage limits (``LOCAL_USAGE_LIMITS``) on or
off; the limits in force are written to ``endpoints.json``, with the writers calsync acts as. The
functions always pace each writer on the local limits (``budget_env``). ``down`` stops exactly the recorded processes:
a pid is only signalled while its kernel start time matches the one recorded, so a reused pid is
never hit.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import grpc  # grpcio ships no type hints (pyproject: ignore_missing_imports)
import requests
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport
from pydantic import BaseModel, Field

from calsync.adapters.cloud_tasks import CloudTasksQueue
from calsync.adapters.token_crypto import generate_key
from devstack import procs

PROJECT = "demo-calsync"
REGION = "southamerica-east1"
QUEUES = ("calsync-sync", "calsync-publish")
# calsync acts as a Workspace user through domain-wide delegation (Google refuses attendees and Meet
# links from a bare service account), signed without a key: the functions ask IAM (locally the
# Calendar emulator's signBlob) to sign the assertion as the delegation service account. The emulator
# also lets unauthenticated calls act as that user (its ``--default-user``), for tools and tests.
CALENDAR_USER = "agenda@clinic.example"
# The writer pool (issue 15): Google limits what one account creates, shares and invites, so calsync
# writes as several Workspace users; each calendar stays with the one that created it. The first is
# CALENDAR_USER, which owns the control calendar.
WRITERS = (CALENDAR_USER, "agenda-2@clinic.example")
DELEGATION_SERVICE_ACCOUNT = "calsync-calendar@demo-calsync.iam.gserviceaccount.com"
LOCAL_OAUTH_CLIENT_ID = "calsync-local.apps.googleusercontent.com"
FUNCTIONS = ("webhook", "sync", "renew", "publish")
# Chosen away from the usual dev ports (8080, 8081 Firestore, 8085 Pub/Sub, 9000, 5000, ...).
DEFAULT_BASE_PORT = 18460
PORT_OFFSETS: dict[str, int] = {
    "firestore": 0,
    "calendar": 1,
    "tasks": 2,
    "secrets": 3,
    "webhook": 4,
    "sync": 5,
    "renew": 6,
    "publish": 7,
    "scheduler": 8,
}
SECRETS_FAKE = procs.ROOT / "devstack" / "secret_manager_fake.py"
READY_TIMEOUT_S = 60.0
# Google's per-account Calendar usage limits ("Avoid Calendar use limits", support.google.com/a/answer/2905486)
# scaled for a run of minutes: Google publishes 25 calendars, 10,000 events and 100-300 external guests
# for accounts under the tighter limits (60, 100,000 and 10,000 for established paid accounts), no number
# for shares, a "short period" and "several hours" of read-only mode. Locally: the lowest published
# calendar and guest counts, events cut to a tenth so a scaled-down chain run reaches them, shares at
# twice what one demo clinic makes, a one-minute window and a 30-second lockout.
LOCAL_USAGE_LIMITS: dict[str, float | None] = {
    "calendars_created": 25,
    "events_created": 1_000,
    "acl_shares": 50,
    "external_invites": 100,
    "window_s": 60.0,
    "lockout_s": 30.0,
}
# calsync's budgets (``LOCAL_BUDGET``) keep every writer under these, so the stack runs with them on.
DEFAULT_USAGE_LIMITS = "local"
# calsync's side of the same limits: each writer uses this share of every local threshold per window,
# waits out a lockout as long as the emulator's, and lets one probe through after it.
LOCAL_USAGE_FRACTION = 0.8
LOCAL_PROBE_S = 5
PORT_CLOSE_TIMEOUT_S = 10.0


class StackError(RuntimeError):
    """The local stack could not be started, checked or stopped; the message says why."""


class ProcessRecord(BaseModel):
    """One process ``up`` started: enough to probe it and to stop exactly it."""

    name: str
    pid: int
    port: int
    probe: Literal["http", "grpc", "tcp"] = Field(description="How to check that it answers.")
    address: str = Field(description="URL (http) or host:port (grpc, tcp) to probe.")
    start_ticks: int | None = Field(default=None, description="Kernel start time, guards against pid reuse.")
    log: str


class PidsFile(BaseModel):
    """``pids.json``: the processes of one running stack, in start order."""

    started_at: str
    processes: list[ProcessRecord]


class Endpoints(BaseModel):
    """``endpoints.json``: where each part of the running stack answers."""

    calendar_api: str
    calendar_batch: str
    calendar_control: str
    calendar_token: str
    firestore_host: str
    tasks_host: str
    secret_manager_host: str | None = None
    project: str
    region: str
    admin_token: str
    functions: dict[str, str]
    scheduler: str
    logs: str
    usage_limits: dict[str, int | float | None] | None = Field(
        default=None, description="The Calendar emulator's per-account usage limits in force (None: off)."
    )
    writers: list[str] = Field(
        default_factory=list, description="The accounts calsync writes as; each calendar is read as its writer."
    )


@dataclass(frozen=True)
class StackConfig:
    """Where the stack keeps its state, which ports it uses (0 = pick a free port) and its usage limits."""

    state_dir: Path
    ports: Mapping[str, int]
    usage_limits: Mapping[str, float | None] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackConfig:
        """Read ``CALSYNC_DEVSTACK_DIR``, ``_BASE_PORT``, ``_PORT_*`` and ``_USAGE_LIMITS``."""
        source = os.environ if env is None else env
        state_dir = Path(source.get("CALSYNC_DEVSTACK_DIR") or procs.ROOT / ".devstack").resolve()
        base = _port_from(source, "CALSYNC_DEVSTACK_BASE_PORT", DEFAULT_BASE_PORT)
        if base and base + max(PORT_OFFSETS.values()) > 65535:
            raise StackError(f"CALSYNC_DEVSTACK_BASE_PORT={base} leaves no room for {len(PORT_OFFSETS)} ports")
        ports = {
            name: _port_from(source, f"CALSYNC_DEVSTACK_PORT_{name.upper()}", base + offset if base else 0)
            for name, offset in PORT_OFFSETS.items()
        }
        return cls(state_dir=state_dir, ports=ports, usage_limits=usage_limits_from(source))

    @property
    def pids_file(self) -> Path:
        """Record of the running processes."""
        return self.state_dir / "pids.json"

    @property
    def endpoints_file(self) -> Path:
        """Where clients find the running stack."""
        return self.state_dir / "endpoints.json"

    @property
    def log_dir(self) -> Path:
        """One log file per process."""
        return self.state_dir / "logs"


def _port_from(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"{var}={raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise StackError(f"{var}={port} is not a port number (0 picks a free one)")
    return port


def usage_limits_from(env: Mapping[str, str]) -> dict[str, float | None] | None:
    """Limits ``CALSYNC_DEVSTACK_USAGE_LIMITS`` asks for: ``local`` → ``LOCAL_USAGE_LIMITS``, ``off`` → None."""
    choice = (env.get("CALSYNC_DEVSTACK_USAGE_LIMITS") or DEFAULT_USAGE_LIMITS).strip().lower()
    if choice == "off":
        return None
    if choice == "local":
        return dict(LOCAL_USAGE_LIMITS)
    raise StackError(f"CALSYNC_DEVSTACK_USAGE_LIMITS={choice!r}: use 'local' or 'off'")


# --- Process identity and probes -------------------------------------------------------------------


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), if it exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start at field 3.
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_ours(record: ProcessRecord) -> bool:
    """True while the recorded process is alive and is still the one we started."""
    if not procs.pid_alive(record.pid):
        return False
    return record.start_ticks is None or start_ticks(record.pid) == record.start_ticks


def answers(record: ProcessRecord, timeout_s: float = 2.0) -> bool:
    """True when the process answers on its port (any HTTP status counts as an answer)."""
    if record.probe == "http":
        try:
            requests.get(record.address, timeout=timeout_s)
        except requests.RequestException:
            return False
        return True
    if record.probe == "grpc":
        return _tasks_answers(record.address, timeout_s)
    host, _, port = record.address.rpartition(":")
    return procs.port_open(int(port), host)


def _tasks_answers(host: str, timeout_s: float) -> bool:
    channel = grpc.insecure_channel(host)
    try:
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        client.list_queues(parent=f"projects/{PROJECT}/locations/{REGION}", timeout=timeout_s)
    except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.RetryError):
        return False
    except exceptions.GoogleAPICallError:
        return True  # it answered, even if with an error
    finally:
        channel.close()
    return True


def wait_until_answers(records: list[ProcessRecord], timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until every process answers; ``StackError`` names the ones that died or stayed silent."""
    deadline = time.monotonic() + timeout_s
    pending = list(records)
    while pending:
        for record in list(pending):
            if not procs.pid_alive(record.pid):
                raise StackError(f"{record.name} exited during start-up:\n{procs._tail(Path(record.log))}")
            if answers(record):
                pending.remove(record)
        if pending and time.monotonic() > deadline:
            names = ", ".join(r.name for r in pending)
            raise StackError(f"no answer within {timeout_s:.0f}s from: {names} (logs in {Path(records[0].log).parent})")
        if pending:
            time.sleep(0.1)


# --- State files -----------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(config: StackConfig) -> Iterator[None]:
    """Serialise ``up``/``down`` on one state dir (two ``make up`` at once must not both start)."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_pids(config: StackConfig) -> PidsFile | None:
    """The recorded stack, or None when nothing was started from this state dir."""
    if not config.pids_file.exists():
        return None
    return PidsFile.model_validate_json(config.pids_file.read_text())


def read_endpoints(config: StackConfig) -> Endpoints | None:
    """The running stack's endpoints, or None."""
    if not config.endpoints_file.exists():
        return None
    return Endpoints.model_validate_json(config.endpoints_file.read_text())


def _write_json(path: Path, model: BaseModel) -> None:
    # Write then rename, so a reader never sees half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(model.model_dump_json(indent=2) + "\n")
    if path.name == "endpoints.json":
        tmp.chmod(0o600)  # it holds the admin token
    tmp.replace(path)


# --- up --------------------------------------------------------------------------------------------


@dataclass
class UpResult:
    """What ``up`` did: the endpoints, the processes and whether they were already running."""

    endpoints: Endpoints
    processes: list[ProcessRecord]
    already_running: bool


def up(config: StackConfig, say: Callable[[str], None] = print) -> UpResult:
    """Start the stack, or verify and return the one already running from this state dir."""
    with locked(config):
        existing = read_pids(config)
        endpoints = read_endpoints(config)
        if existing is not None:
            healthy = endpoints is not None and all(is_ours(r) and answers(r) for r in existing.processes)
            if healthy and endpoints is not None:
                return UpResult(endpoints, existing.processes, already_running=True)
            say("The recorded stack is not fully running any more; stopping what is left of it.")
            _stop_records(existing.processes)
            _remove_state(config)
        return _start(config, say)


def _preflight(ports: Mapping[str, int]) -> None:
    """Fail before starting anything: busy ports, missing Java/emulator/venv/function."""
    busy = [f"{procs.HOST}:{port} ({name})" for name, port in ports.items() if procs.port_open(port)]
    if busy:
        raise StackError(
            "ports already in use: "
            + ", ".join(busy)
            + ". Stop whatever listens there, or choose other ports with CALSYNC_DEVSTACK_BASE_PORT"
            " (0 = free ports) or CALSYNC_DEVSTACK_PORT_<SERVICE>."
        )
    procs.firestore_jar()  # raises ServerError with install instructions
    procs.tasks_python()
    missing = [
        str(procs.ROOT / "functions" / name / "main.py")
        for name in FUNCTIONS
        if not (procs.ROOT / "functions" / name / "main.py").is_file()
    ]
    if missing:
        raise StackError("function entry points are missing: " + ", ".join(missing))
    if not (procs.ROOT / "devstack" / "tasks_emulator.py").is_file():
        raise StackError("devstack/tasks_emulator.py (the Cloud Tasks emulator wrapper) is missing")


def _resolve_ports(config: StackConfig) -> dict[str, int]:
    ports = dict(config.ports)
    taken = {p for p in ports.values() if p}
    for name, port in ports.items():
        if port == 0:
            while (port := procs.free_port()) in taken:
                pass
            ports[name] = port
            taken.add(port)
    if len(set(ports.values())) != len(ports):
        raise StackError(f"two services were given the same port: {ports}")
    return ports


def function_env(
    ports: Mapping[str, int], *, control_calendar_id: str, admin_token: str, token_key: str = ""
) -> dict[str, str]:
    """The environment each function runs with: Settings pointed at the local stand-ins."""
    calendar = f"http://{procs.HOST}:{ports['calendar']}"
    urls = function_urls(ports)
    return {
        "CALSYNC_ENVIRONMENT": "dev",
        "CALSYNC_GCP_PROJECT": PROJECT,
        "CALSYNC_REGION": REGION,
        "CALSYNC_CONTROL_CALENDAR_ID": control_calendar_id,
        "CALSYNC_WEBHOOK_URL": urls["webhook"],
        "CALSYNC_SYNC_URL": urls["sync"],
        "CALSYNC_RENEW_URL": urls["renew"],
        "CALSYNC_PUBLISH_URL": urls["publish"],
        "CALSYNC_SYNC_QUEUE": QUEUES[0],
        "CALSYNC_PUBLISH_QUEUE": QUEUES[1],
        "CALSYNC_TASKS_EMULATOR_HOST": f"{procs.HOST}:{ports['tasks']}",
        "CALSYNC_CALENDAR_API_ENDPOINT": f"{calendar}/calendar/v3/",
        "CALSYNC_CALENDAR_BATCH_URI": f"{calendar}/batch/calendar/v3",
        "CALSYNC_TOKEN_URI": f"{calendar}/token",
        # Keyless delegation as in production: the emulator's IAM signs the assertion, /token verifies it.
        "CALSYNC_CALENDAR_CREDENTIALS": "delegated",
        "CALSYNC_IAM_CREDENTIALS_ENDPOINT": calendar,
        "CALSYNC_DELEGATION_SERVICE_ACCOUNT": DELEGATION_SERVICE_ACCOUNT,
        "CALSYNC_DELEGATED_USER": CALENDAR_USER,
        "CALSYNC_WRITERS": json.dumps(list(WRITERS)),
        **budget_env(LOCAL_USAGE_LIMITS),
        "CALSYNC_SECRETS_BACKEND": "env",
        "CALSYNC_ADMIN_TOKEN": admin_token,
        # Clinic connections (OAuth): the emulator's consent screen, a local OAuth client and token key.
        "CALSYNC_OAUTH_AUTHORIZE_URI": f"{calendar}/o/oauth2/v2/auth",
        "CALSYNC_OAUTH_REVOKE_URI": f"{calendar}/revoke",
        "CALSYNC_SECRET_CALSYNC_OAUTH_CLIENT": json.dumps(
            {"web": {"client_id": LOCAL_OAUTH_CLIENT_ID, "client_secret": admin_token + "-oauth-client"}}
        ),
        "CALSYNC_SECRET_CALSYNC_TOKEN_KEY": token_key or generate_key(),
        "FIRESTORE_EMULATOR_HOST": f"{procs.HOST}:{ports['firestore']}",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PYTHONUNBUFFERED": "1",
    }


def budget_env(limits: Mapping[str, float | None]) -> dict[str, str]:
    """calsync's usage budgets and lockout for the local limits (the same whether the emulator enforces them)."""
    names = {
        "calendars_created": "CALSYNC_USAGE_CALENDARS",
        "acl_shares": "CALSYNC_USAGE_SHARES",
        "events_created": "CALSYNC_USAGE_EVENTS",
        "external_invites": "CALSYNC_USAGE_EXTERNAL_INVITES",
    }
    env = {name: str(int(value)) for key, name in names.items() if (value := limits.get(key)) is not None}
    return env | {
        "CALSYNC_USAGE_WINDOW_S": str(int(limits["window_s"] or 60)),
        "CALSYNC_USAGE_FRACTION": str(LOCAL_USAGE_FRACTION),
        "CALSYNC_WRITER_LOCKOUT_S": str(max(1, int(limits["lockout_s"] or 1))),
        "CALSYNC_WRITER_PROBE_S": str(LOCAL_PROBE_S),
    }


def function_urls(ports: Mapping[str, int]) -> dict[str, str]:
    """Base URL of each function."""
    return {name: f"http://{procs.HOST}:{ports[name]}/" for name in FUNCTIONS}


def _start(config: StackConfig, say: Callable[[str], None]) -> UpResult:
    ports = _resolve_ports(config)
    if not SECRETS_FAKE.is_file():
        del ports["secrets"]  # optional stand-in: its port need not be free when it is not started
    _preflight(ports)
    log_dir = config.log_dir
    admin_token = secrets.token_urlsafe(24)
    started: list[ProcessRecord] = []
    pids = PidsFile(started_at=datetime.now(UTC).isoformat(timespec="seconds"), processes=started)
    calendar = f"http://{procs.HOST}:{ports['calendar']}"
    firestore_host = f"{procs.HOST}:{ports['firestore']}"
    tasks_host = f"{procs.HOST}:{ports['tasks']}"
    scheduler_url = f"http://{procs.HOST}:{ports['scheduler']}/"
    try:
        emulators: dict[str, tuple[Callable[[], procs.Server], Literal["http", "grpc", "tcp"], str]] = {
            "firestore": (
                lambda: procs.start_firestore(ports["firestore"], log_dir),
                "http",
                f"http://{firestore_host}/",
            ),
            "calendar-emulator": (
                lambda: procs.start_calendar_emulator(
                    ports["calendar"], log_dir, default_user=CALENDAR_USER, usage_limits=config.usage_limits
                ),
                "http",
                f"{calendar}/_emulator/stats",
            ),
            "tasks-emulator": (lambda: procs.start_tasks_emulator(ports["tasks"], log_dir), "grpc", tasks_host),
        }
        secrets_host: str | None = None
        if SECRETS_FAKE.is_file():
            secrets_host = f"{procs.HOST}:{ports['secrets']}"
            argv = [sys.executable, "-m", "devstack.secret_manager_fake", "--port", str(ports["secrets"])]
            argv += ["--project", PROJECT]
            emulators["secret-manager"] = (
                lambda: procs.start(
                    "secret-manager",
                    argv,
                    port=ports["secrets"],
                    log_dir=log_dir,
                    ready_pattern="secret-manager-fake listening on",
                ),
                "tcp",
                secrets_host,
            )
        say("Starting the emulators: " + ", ".join(emulators))
        _start_all(emulators, started, config, pids)

        control_calendar_id = _create_control_calendar(calendar)
        _ensure_queues(tasks_host)
        say(f"Created the control calendar and the queues {', '.join(QUEUES)}.")

        env = function_env(ports, control_calendar_id=control_calendar_id, admin_token=admin_token)
        urls = function_urls(ports)
        services: dict[str, tuple[Callable[[], procs.Server], Literal["http", "grpc", "tcp"], str]] = {}
        for name in FUNCTIONS:
            services[f"function-{name}"] = (
                functools.partial(procs.start_function, name, ports[name], log_dir, env),
                "http",
                urls[name],
            )
        scheduler_argv = [sys.executable, "-m", "devstack.scheduler", "--port", str(ports["scheduler"])]
        scheduler_argv += ["--target", urls["renew"]]
        services["scheduler"] = (
            lambda: procs.start(
                "scheduler",
                scheduler_argv,
                port=ports["scheduler"],
                log_dir=log_dir,
                ready_pattern="scheduler listening on",
                env={"CALSYNC_ADMIN_TOKEN": admin_token},
            ),
            "http",
            scheduler_url,
        )
        say("Starting the functions under functions-framework and the scheduler loop.")
        _start_all(services, started, config, pids)
        wait_until_answers(started)

        endpoints = Endpoints(
            calendar_api=f"{calendar}/calendar/v3/",
            calendar_batch=f"{calendar}/batch/calendar/v3",
            calendar_control=f"{calendar}/_emulator/",
            calendar_token=f"{calendar}/token",
            firestore_host=firestore_host,
            tasks_host=tasks_host,
            secret_manager_host=secrets_host,
            project=PROJECT,
            region=REGION,
            admin_token=admin_token,
            functions=urls,
            scheduler=scheduler_url,
            logs=str(log_dir),
            usage_limits=None if config.usage_limits is None else dict(config.usage_limits),
            writers=list(WRITERS),
        )
        _write_json(config.endpoints_file, endpoints)
        return UpResult(endpoints, started, already_running=False)
    except BaseException:
        # Leave nothing behind: a half-started stack is stopped, and Ctrl-C lands here too.
        _stop_records(list(started))
        _remove_state(config)
        raise


def _start_all(
    starters: Mapping[str, tuple[Callable[[], procs.Server], Literal["http", "grpc", "tcp"], str]],
    started: list[ProcessRecord],
    config: StackConfig,
    pids: PidsFile,
) -> None:
    """Start servers in parallel, record each one that started, then raise the first failure."""
    with ThreadPoolExecutor(max_workers=len(starters)) as pool:
        futures = {name: pool.submit(start) for name, (start, _, _) in starters.items()}
    errors: list[str] = []
    for name, future in futures.items():
        error = future.exception()
        if error is not None:
            errors.append(f"{name}: {error}")
            continue
        server = future.result()
        _, probe, address = starters[name]
        started.append(
            ProcessRecord(
                name=server.name,
                pid=server.pid,
                port=server.port,
                probe=probe,
                address=address,
                start_ticks=start_ticks(server.pid),
                log=str(server.log),
            )
        )
    # Record before raising, so even a crash of this process leaves `down` something to stop.
    pids.processes = started
    _write_json(config.pids_file, pids)
    if errors:
        raise StackError("could not start:\n" + "\n".join(errors))


def _create_control_calendar(calendar: str) -> str:
    """Create this stack's control calendar in the (fresh, in-memory) Calendar emulator."""
    answer = requests.post(f"{calendar}/calendar/v3/calendars", json={"summary": "calsync control (dev)"}, timeout=10)
    if answer.status_code != 200:
        raise StackError(f"the Calendar emulator refused calendars.insert: {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["id"])


def _ensure_queues(tasks_host: str) -> None:
    """Create the Cloud Tasks queues through calsync's own adapter."""
    queues = CloudTasksQueue.for_emulator(tasks_host, PROJECT, REGION)
    try:
        for name in QUEUES:
            queues.ensure_queue(name)
    finally:
        queues.close()


# --- down ------------------------------------------------------------------------------------------


@dataclass
class Stopped:
    """The outcome of stopping one recorded process."""

    record: ProcessRecord
    outcome: Literal["stopped", "already gone", "pid reused, not touched", "port still open"]


def down(config: StackConfig) -> list[Stopped] | None:
    """Stop every recorded process; None when nothing was recorded."""
    with locked(config):
        pids = read_pids(config)
        if pids is None:
            return None
        result = _stop_records(pids.processes)
        _remove_state(config)
        return result


def _stop_records(records: list[ProcessRecord]) -> list[Stopped]:
    # Everything stops at once (gunicorn and java each take ~0.3 s to exit), ports are checked after.
    with ThreadPoolExecutor(max_workers=max(1, len(records))) as pool:
        result = list(pool.map(_stop_one, records))
    deadline = time.monotonic() + PORT_CLOSE_TIMEOUT_S
    for stopped in result:
        while procs.port_open(stopped.record.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if stopped.outcome == "stopped" and procs.port_open(stopped.record.port):
            stopped.outcome = "port still open"
    return result


def _stop_one(record: ProcessRecord) -> Stopped:
    outcome: Literal["stopped", "already gone", "pid reused, not touched", "port still open"]
    if not procs.pid_alive(record.pid):
        outcome = "already gone"
    elif not is_ours(record):
        outcome = "pid reused, not touched"
    else:
        procs.stop_pid(record.pid)
        outcome = "stopped"
    _reap(record.pid)
    return Stopped(record, outcome)


def _reap(pid: int) -> None:
    # When this process started the server (the demo), collect its exit status so it is not a zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _remove_state(config: StackConfig) -> None:
    for path in (config.pids_file, config.endpoints_file):
        path.unlink(missing_ok=True)


# --- status ----------------------------------------------------------------------------------------


@dataclass
class Health:
    """One recorded process's liveness and whether it answers."""

    record: ProcessRecord
    alive: bool
    answering: bool


def status(config: StackConfig) -> list[Health] | None:
    """Check every recorded process; None when no stack is recorded."""
    pids = read_pids(config)
    if pids is None:
        return None
    return [
        Health(record, alive=(alive := is_ours(record)), answering=alive and answers(record))
        for record in pids.processes
    ]
