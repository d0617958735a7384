"""The stack's own clock, for tests that place allocations relative to "now".

A test must not read a second wall clock and compare it with what the system decided; it asks the
publish function for the instant it judges by (``GET /health`` answers ``checked_at``).
"""

from __future__ import annotations

from datetime import datetime

import requests

HTTP_TIMEOUT_S = 30


def system_now(publish_url: str, admin_token: str) -> datetime:
    """The publish function's current instant (its ``Clock``), read through ``GET /health``."""
    answer = requests.get(
        f"{publish_url}health", headers={"Authorization": f"Bearer {admin_token}"}, timeout=HTTP_TIMEOUT_S
    )
    answer.raise_for_status()
    return datetime.fromisoformat(str(answer.json()["checked_at"]))
