"""A container of fakes installed for in-process function tests (``create_app(...).test_client()``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import functions_framework
from pydantic import SecretStr

from calsync.bootstrap import Container, bootstrap
from calsync.config import Settings
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token-123"


def fake_container() -> Container:
    """A ``Container`` whose ports are the in-memory fakes."""
    settings = Settings(
        environment="dev",
        gcp_project="demo-calsync",
        control_calendar_id="control@group.calendar.google.com",
        webhook_url="http://127.0.0.1:1/webhook",
        sync_url="http://127.0.0.1:1/sync",
        admin_token=SecretStr(ADMIN_TOKEN),
        calendar_credentials="anonymous",
        secrets_backend="env",
    )
    clock = FrozenClock()
    return bootstrap(
        settings,
        clock=clock,
        calendar_api=FakeCalendarApi(clock),
        store=InMemoryStateStore(),
        queue=RecordingTaskQueue(),
    )


def client(function: str) -> Any:
    """The functions-framework test client of ``functions/<function>/main.py``."""
    app = functions_framework.create_app(target="main", source=str(ROOT / "functions" / function / "main.py"))
    return app.test_client()
