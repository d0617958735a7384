"""Settings of keyless delegation: a delegation account outside dev, Google's IAM endpoint only."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from calsync.config import GOOGLE_IAM_CREDENTIALS, Settings

BASE: dict[str, Any] = {
    "gcp_project": "p",
    "control_calendar_id": "control@group.calendar.google.com",
    "webhook_url": "https://example.test/webhook",
    "sync_url": "https://example.test/sync",
    "publish_url": "https://example.test/publish",
}
ACCOUNT = "calsync-prod-calendar@p.iam.gserviceaccount.com"


def settings(**values: Any) -> Settings:
    return Settings(**(BASE | values), _env_file=None)  # type: ignore[call-arg]


def test_delegated_is_the_default_and_needs_no_key_secret() -> None:
    prod = settings(environment="prod", delegation_service_account=ACCOUNT)
    assert (prod.calendar_credentials, prod.iam_credentials_endpoint) == ("delegated", GOOGLE_IAM_CREDENTIALS)
    assert not any("service_account_key" in name for name in Settings.model_fields)


@pytest.mark.parametrize("environment", ["stg", "prod"])
def test_outside_dev_the_delegation_account_is_required(environment: str) -> None:
    with pytest.raises(ValidationError, match="delegation_service_account is required"):
        settings(environment=environment)


@pytest.mark.parametrize("environment", ["stg", "prod"])
def test_outside_dev_iam_is_googles(environment: str) -> None:
    with pytest.raises(ValidationError, match="iam_credentials_endpoint"):
        settings(
            environment=environment, delegation_service_account=ACCOUNT, iam_credentials_endpoint="http://127.0.0.1:1"
        )


def test_dev_may_point_iam_at_the_emulator() -> None:
    dev = settings(environment="dev", iam_credentials_endpoint="http://127.0.0.1:8089")
    assert dev.iam_credentials_endpoint == "http://127.0.0.1:8089"
