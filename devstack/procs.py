"""Start and stop local servers by their own pid, bound to 127.0.0.1.

Used by the local stack (``python -m devstack up``) and by the pytest fixtures. Each server runs in
its own session (process group), writes its output to a log file, and counts as ready when a line of
its output matches or its port accepts connections. Stopping kills exactly that process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"

INSTALL_FIRESTORE_HINT = (
    "Google's Firestore emulator is missing. Install Java 17+ and the emulator: "
    "'apt-get install google-cloud-cli-firestore-emulator openjdk-17-jre-headless' "
    "(from Google's Cloud SDK apt repository) or 'gcloud components install cloud-firestore-emulator'."
)


class ServerError(RuntimeError):
    """A local server could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Server:
    """A started server: its pid (a process-group leader), port and log file."""

    name: str
    pid: int
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        """True while the process exists."""
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the server's process group, then kill it if it lingers."""
        stop_pid(self.pid, timeout_s=timeout_s)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)


def pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def exit_on_sigterm() -> None:
    """Make SIGTERM a ``SystemExit``, so ``finally`` blocks stop the servers a command started.

    Python's default for SIGTERM ends the process at once, leaving its emulators and functions behind.
    """
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def start(
    name: str,
    argv: list[str],
    *,
    port: int,
    log_dir: Path,
    ready_pattern: str | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    cwd: Path = ROOT,
) -> Server:
    """Start ``argv`` in its own process group and wait until it is ready.

    Ready means a line of its output matches ``ready_pattern`` (when given) and ``port`` accepts
    connections. On failure the process is stopped and ``ServerError`` carries the log's tail.
    """
    if port_open(port):
        raise ServerError(f"{name}: port {port} on {HOST} is already in use")
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd, start_new_session=True
        )
    server = Server(name=name, pid=proc.pid, port=port, log=log, proc=proc)
    pattern = re.compile(ready_pattern) if ready_pattern else None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{name} exited with {proc.returncode}:\n{_tail(log)}")
        text_ok = pattern is None or bool(pattern.search(log.read_text(errors="replace")))
        if text_ok and port_open(port):
            return server
        time.sleep(0.05)
    server.stop()
    raise ServerError(f"{name} was not ready within {timeout_s:.0f}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


# --- The stand-ins ---------------------------------------------------------------------------------


def firestore_jar() -> Path:
    """Path of Google's Firestore emulator jar, or ``ServerError`` with install instructions."""
    if shutil.which("java") is None:
        raise ServerError("Java is missing. " + INSTALL_FIRESTORE_HINT)
    candidates = []
    if env_root := os.environ.get("CLOUDSDK_ROOT_DIR"):
        candidates.append(Path(env_root))
    candidates += [Path("/usr/lib/google-cloud-sdk"), Path("/usr/share/google-cloud-sdk")]
    if gcloud := shutil.which("gcloud"):
        candidates.append(Path(gcloud).resolve().parent.parent)
    for root in candidates:
        jar = root / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
        if jar.is_file():
            return jar
    raise ServerError(INSTALL_FIRESTORE_HINT)


def start_firestore(port: int, log_dir: Path) -> Server:
    """Google's Firestore emulator, started as ``java`` itself so its pid is the one to stop."""
    jar = firestore_jar()
    argv = [
        "java",
        "-Duser.language=en",
        "-cp",
        str(jar),
        FIRESTORE_MAIN_CLASS,
        "start",
        f"--host={HOST}",
        f"--port={port}",
    ]
    return start("firestore", argv, port=port, log_dir=log_dir, ready_pattern=r"Dev App Server is now running")


def start_calendar_emulator(
    port: int,
    log_dir: Path,
    *,
    python: str = sys.executable,
    default_user: str | None = None,
    usage_limits: Mapping[str, float | None] | None = None,
) -> Server:
    """Our Calendar API emulator (``python -m devstack.calendar_emulator``).

    ``default_user`` is who unauthenticated requests act as (the emulator's default: the service
    account, which Google refuses attendees and Meet links without domain-wide delegation).
    ``usage_limits`` (the body of ``POST /_emulator/usage-limits``) are in force from the start.
    """
    argv = [python, "-m", "devstack.calendar_emulator", "--host", HOST, "--port", str(port)]
    if default_user:
        argv += ["--default-user", default_user]
    if usage_limits is not None:
        argv += ["--usage-limits", json.dumps(dict(usage_limits))]
    return start("calendar-emulator", argv, port=port, log_dir=log_dir, ready_pattern=r"calendar-emulator listening on")


def tasks_python() -> Path:
    """The interpreter of the Cloud Tasks emulator's own venv."""
    python = ROOT / ".venv-tasks" / "bin" / "python"
    if not python.exists():
        raise ServerError("The Cloud Tasks emulator venv is missing: run 'make setup'.")
    return python


def start_tasks_emulator(port: int, log_dir: Path) -> Server:
    """The Cloud Tasks emulator in its own venv, bound to 127.0.0.1 by ``devstack/tasks_emulator.py``."""
    argv = [str(tasks_python()), str(ROOT / "devstack" / "tasks_emulator.py"), "--port", str(port)]
    return start("tasks-emulator", argv, port=port, log_dir=log_dir)


def start_function(name: str, port: int, log_dir: Path, env: dict[str, str], *, python: str = sys.executable) -> Server:
    """One Cloud Function under functions-framework (target ``main`` in ``functions/<name>``)."""
    argv = [
        python,
        "-m",
        "functions_framework",
        "--target=main",
        f"--source={ROOT / 'functions' / name / 'main.py'}",
        f"--host={HOST}",
        f"--port={port}",
    ]
    return start(f"function-{name}", argv, port=port, log_dir=log_dir, env=env)
