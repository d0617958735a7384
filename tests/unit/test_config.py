"""Settings: what is refused outside dev (anything that only makes sense on the local stand-ins)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from calsync.config import Settings, strong_secret


def deployed(**over: Any) -> Settings:
    """Settings as Terraform sets them for a deployed environment (prod unless overridden)."""
    values: dict[str, Any] = {
        "environment": "prod",
        "gcp_project": "p",
        "control_calendar_id": "control@group.calendar.google.com",
        "webhook_url": "https://calsync-prod-webhook-x.a.run.app",
        "sync_url": "https://calsync-prod-sync-x.a.run.app",
        "renew_url": "https://calsync-prod-renew-x.a.run.app",
        "publish_url": "https://calsync-prod-publish-x.a.run.app",
        "admin_emails": ["boss@clinic.test"],
        "delegation_service_account": "calsync-prod-calendar@p.iam.gserviceaccount.com",
    }
    return Settings(**{**values, **over}, _env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("environment", ["stg", "prod"])
def test_a_deployed_configuration_is_accepted(environment: str) -> None:
    assert deployed(environment=environment).environment == environment


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"tasks_emulator_host": "127.0.0.1:8123"}, "emulator hosts"),
        ({"calendar_credentials": "anonymous"}, "anonymous"),
        ({"secrets_backend": "env"}, "secrets_backend"),
        ({"token_uri": "https://evil.example/token"}, "token_uri"),
        ({"token_uri": "http://127.0.0.1:9/token"}, "token_uri"),
        ({"calendar_api_endpoint": "http://127.0.0.1:9/calendar/v3/"}, "calendar_api_endpoint"),
        ({"calendar_batch_uri": "http://127.0.0.1:9/batch/calendar/v3"}, "calendar_batch_uri"),
        ({"sync_url": "http://127.0.0.1:9/"}, "sync_url"),
        ({"renew_url": "http://calsync-renew/"}, "renew_url"),
        ({"publish_url": "http://127.0.0.1:9/"}, "publish_url"),
        ({"publish_url": ""}, "publish_url is required"),
        ({"webhook_url": "http://127.0.0.1:9/"}, "webhook_url"),
        ({"admin_id_token_audiences": ["32555940559.apps.googleusercontent.com"]}, "audiences"),
        ({"admin_token": SecretStr("changeme")}, "placeholder"),
        ({"oauth_authorize_uri": "http://127.0.0.1:9/o/oauth2/v2/auth"}, "oauth_authorize_uri"),
        ({"oauth_revoke_uri": "https://evil.example/revoke"}, "oauth_revoke_uri"),
    ],
)
@pytest.mark.parametrize("environment", ["stg", "prod"])
def test_local_only_settings_are_refused_outside_dev(environment: str, over: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        deployed(environment=environment, **over)


def test_with_kms_no_token_key_secret_is_named() -> None:
    """stg/prod as Terraform sets them with KMS on: the token key secret does not exist."""
    kms = "projects/p/locations/europe-west1/keyRings/calsync-prod-tokens/cryptoKeys/calsync-prod-token-key"
    assert deployed(kms_token_key=kms, secret_token_key="").kms_token_key == kms


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_refresh_tokens_need_a_key(environment: str) -> None:
    """Neither a KMS key nor a token key secret: stored refresh tokens could be neither sealed nor read."""
    with pytest.raises(ValidationError, match="kms_token_key or secret_token_key"):
        deployed(environment=environment, kms_token_key="", secret_token_key="")


def test_the_emulator_variable_the_firestore_client_obeys_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080")
    with pytest.raises(ValidationError, match="emulator hosts"):
        deployed()


def test_dev_keeps_the_local_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080")
    local = deployed(
        environment="dev",
        tasks_emulator_host="127.0.0.1:8123",
        calendar_credentials="anonymous",
        secrets_backend="env",
        token_uri="http://127.0.0.1:9/token",
        calendar_api_endpoint="http://127.0.0.1:9/calendar/v3/",
        publish_url="http://127.0.0.1:9/",
        admin_id_token_audiences=["32555940559.apps.googleusercontent.com"],
        admin_token=SecretStr("dev"),
    )
    assert local.firestore_emulator_host == "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("value", "strong"),
    [
        ("Zq3v-9Lk2_xW8rT1pYb7Nc4Hd6Jf0GsA", True),
        ("3f9a1c0e7b2d4a6f8e1c3b5d7f9a0c2e", True),  # 128 random bits in hex
        ("changeme", False),
        ("Zq3v-9Lk2_xW8rT1pYb7Nc4Hd6", False),  # too short
        ("a" * 64, False),
        ("ab" * 32, False),
        ("changeme-changeme-changeme-changeme", False),
        ("PLACEHOLDER", False),
    ],
)
def test_strong_secret(value: str, strong: bool) -> None:
    assert strong_secret(value) is strong
