"""Fixtures of the Calendar emulator's tests (the server itself comes from ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import PushReceiver


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    """A push receiver on 127.0.0.1, stopped after the test."""
    server = PushReceiver().start()
    try:
        yield server
    finally:
        server.stop()
