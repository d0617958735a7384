"""``Settings`` of a dev environment on the local stand-ins, for tests that build configs through the
composition root (``calsync.bootstrap.sync_config(local_settings(...))``): the configs carry no
defaults of their own, so a test runs with the values production gets unless it names one."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from calsync.config import Settings

ADMIN_TOKEN = "test-admin-token-123"  # noqa: S105 - the local stand-ins' admin token, never deployed


def local_settings(**overrides: Any) -> Settings:
    """Dev settings with local URLs, keyless anonymous credentials and no ``.env`` file; ``overrides``
    by setting name (validated as in production)."""
    values: dict[str, Any] = {
        "environment": "dev",
        "gcp_project": "demo-calsync",
        "control_calendar_id": "control@group.calendar.google.com",
        "webhook_url": "http://127.0.0.1:1/webhook",
        "sync_url": "http://127.0.0.1:1/sync",
        "admin_token": SecretStr(ADMIN_TOKEN),
        "calendar_credentials": "anonymous",
        "secrets_backend": "env",
    }
    return Settings(**(values | overrides), _env_file=None)
