"""Local stand-in for Cloud Scheduler: POSTs the renew function's jobs on their schedules.

Production registers three Cloud Scheduler jobs against the renew function (see
``infra/terraform``): ``{"job": "renew"}`` every 6 h, ``{"job": "poll"}`` every 10 min and
``{"job": "cleanup"}`` daily. Peers lost every push channel because such a job was never registered,
so the local stack runs the same schedule while it is up. Like Cloud Scheduler, a job first fires one
interval after the start, never at start.

Intervals are configurable for tests and the demo: ``CALSYNC_DEVSTACK_RENEW_S``,
``CALSYNC_DEVSTACK_POLL_S``, ``CALSYNC_DEVSTACK_CLEANUP_S`` (seconds). The admin token, if any, is
read from ``CALSYNC_ADMIN_TOKEN`` (never from argv, which ``ps`` shows) and sent as a bearer token in
place of Cloud Scheduler's OIDC token.

``GET /`` on ``--port`` answers with each job's interval, run count and last answer, so the stack can
check the loop is alive and tests can watch it fire.

    python -m devstack.scheduler --port PORT --target http://127.0.0.1:P/
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

import requests

HOST = "127.0.0.1"
RENEW_EVERY_S = 6 * 3600
POLL_EVERY_S = 10 * 60
CLEANUP_EVERY_S = 24 * 3600
# Cloud Scheduler's default attempt deadline for HTTP targets.
ATTEMPT_DEADLINE_S = 180.0


@dataclass
class Job:
    """One scheduled call: its body's ``job`` name, interval and the outcome of its last run."""

    name: str
    interval_s: float
    next_due: float
    runs: int = 0
    last_status: int | None = None
    last_error: str | None = None
    last_run_at: float | None = None


def jobs_from_env(now: float, env: dict[str, str] | None = None) -> list[Job]:
    """The three jobs with intervals from the environment (defaults: Cloud Scheduler's schedule)."""
    source = os.environ if env is None else env

    def interval(var: str, default: float) -> float:
        value = float(source.get(var, default))
        if value <= 0:
            raise ValueError(f"{var} must be a positive number of seconds")
        return value

    specs = [
        ("renew", interval("CALSYNC_DEVSTACK_RENEW_S", RENEW_EVERY_S)),
        ("poll", interval("CALSYNC_DEVSTACK_POLL_S", POLL_EVERY_S)),
        ("cleanup", interval("CALSYNC_DEVSTACK_CLEANUP_S", CLEANUP_EVERY_S)),
    ]
    return [Job(name=name, interval_s=every, next_due=now + every) for name, every in specs]


class Scheduler:
    """Fires due jobs at ``target`` until stopped; thread-safe snapshot for the status endpoint."""

    def __init__(self, target: str, jobs: list[Job], admin_token: str | None) -> None:
        """Schedule ``jobs`` against the renew function at ``target``."""
        self.target = target
        self.jobs = jobs
        self._admin_token = admin_token
        self._lock = threading.Lock()
        self.stopped = threading.Event()

    def snapshot(self) -> dict[str, object]:
        """The jobs' state as JSON-ready data."""
        now = time.monotonic()
        with self._lock:
            jobs = [asdict(job) for job in self.jobs]
        for job in jobs:
            # Monotonic clock values mean nothing outside this process: show the time left instead.
            job["next_in_s"] = round(max(0.0, job.pop("next_due") - now), 1)
        return {"target": self.target, "jobs": jobs}

    def fire(self, job: Job) -> None:
        """POST ``{"job": name}`` once, as Cloud Scheduler would, and record the answer."""
        headers = {"Content-Type": "application/json", "User-Agent": "Google-Cloud-Scheduler"}
        if self._admin_token:
            headers["Authorization"] = f"Bearer {self._admin_token}"
        status: int | None = None
        error: str | None = None
        try:
            answer = requests.post(self.target, json={"job": job.name}, headers=headers, timeout=ATTEMPT_DEADLINE_S)
            status = answer.status_code
        except requests.RequestException as exc:
            error = type(exc).__name__
        with self._lock:
            job.runs += 1
            job.last_status = status
            job.last_error = error
            job.last_run_at = time.time()
        print(f"job={job.name} status={status} error={error}", flush=True)

    def run(self) -> None:
        """Loop until ``stopped``: sleep to the next due job, fire it, reschedule it."""
        while not self.stopped.is_set():
            job = min(self.jobs, key=lambda j: j.next_due)
            if self.stopped.wait(max(0.0, job.next_due - time.monotonic())):
                return
            self.fire(job)
            # Schedule from the due time, not from now, so a slow call does not drift the schedule.
            job.next_due = max(job.next_due + job.interval_s, time.monotonic())


def _status_handler(scheduler: Scheduler) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(scheduler.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Silence per-request access lines; the job lines are the log."""

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Run the scheduler loop and its status endpoint until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="status endpoint port on 127.0.0.1")
    parser.add_argument("--target", required=True, help="URL of the renew function")
    args = parser.parse_args(argv)

    jobs = jobs_from_env(time.monotonic())
    scheduler = Scheduler(args.target, jobs, os.environ.get("CALSYNC_ADMIN_TOKEN") or None)
    server = ThreadingHTTPServer((HOST, args.port), _status_handler(scheduler))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        scheduler.stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    every = ", ".join(f"{job.name} every {job.interval_s:g}s" for job in jobs)
    print(f"scheduler listening on http://{HOST}:{args.port} -> {args.target} ({every})", flush=True)
    scheduler.run()
    server.shutdown()


if __name__ == "__main__":
    main()
