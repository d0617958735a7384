"""Unit tests run on fakes: no emulator variable leaks into them from a session that started one."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_firestore_emulator_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings refuses FIRESTORE_EMULATOR_HOST outside dev, as the Firestore client would obey it."""
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
