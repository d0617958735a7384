"""Session-wide fixtures: the real local stand-ins, each started once on a free 127.0.0.1 port.

- ``firestore_emulator``: Google's own Firestore emulator (java), data wiped per test by
  ``firestore_client``.
- ``calendar_emulator``: calsync's Calendar API v3 emulator, reset per test by ``calendar_base``.
- ``tasks_emulator``: ``gcloud-tasks-emulator`` from its own venv.

Each server is stopped by its own pid when the session ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from google.cloud import firestore

from devstack import procs

PROJECT = "demo-calsync"


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for the stand-ins' logs (shown when one fails to start)."""
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def firestore_emulator(server_logs: Path) -> Iterator[str]:
    """``host:port`` of a running Firestore emulator; ``FIRESTORE_EMULATOR_HOST`` is set to it."""
    server = procs.start_firestore(procs.free_port(), server_logs)
    host = f"{procs.HOST}:{server.port}"
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        yield host
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous


def reset_firestore(host: str, project: str = PROJECT) -> None:
    """Delete every document of ``project`` in the emulator."""
    url = f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    requests.delete(url, timeout=60).raise_for_status()


@pytest.fixture
def firestore_client(firestore_emulator: str) -> Iterator[object]:
    """A real ``google.cloud.firestore.Client`` on the emulator, with the data wiped before the test."""
    reset_firestore(firestore_emulator)
    client = firestore.Client(project=PROJECT)
    yield client
    client.close()


@pytest.fixture(scope="session")
def calendar_emulator_server(server_logs: Path) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT``) of a running Calendar emulator."""
    server = procs.start_calendar_emulator(procs.free_port(), server_logs)
    try:
        yield f"http://{procs.HOST}:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def calendar_base(calendar_emulator_server: str) -> str:
    """The Calendar emulator's base URL, with all state, faults, quotas and stats reset."""
    requests.post(f"{calendar_emulator_server}/_emulator/reset", timeout=10).raise_for_status()
    return calendar_emulator_server


@pytest.fixture(scope="session")
def tasks_emulator(server_logs: Path) -> Iterator[str]:
    """``host:port`` of a running Cloud Tasks emulator (gRPC)."""
    server = procs.start_tasks_emulator(procs.free_port(), server_logs)
    try:
        yield f"{procs.HOST}:{server.port}"
    finally:
        server.stop()
