"""A container of fakes installed for in-process function tests (``create_app(...).test_client()``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import functions_framework

from calsync.bootstrap import Container, bootstrap
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue
from calsync.testing.settings import ADMIN_TOKEN, local_settings

__all__ = ["ADMIN_TOKEN", "client", "fake_container"]

ROOT = Path(__file__).resolve().parents[2]


def fake_container() -> Container:
    """A ``Container`` whose ports are the in-memory fakes."""
    settings = local_settings()
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
