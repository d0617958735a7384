"""Settings: what is refused outside dev (anything that only makes sense on the local stand-ins)."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from calsync import bootstrap
from calsync.config import Settings, strong_secret
from calsync.services.channels import ChannelConfig
from calsync.services.maintenance import JobsConfig
from calsync.services.plan import PublishConfig
from calsync.services.push import PushConfig
from calsync.services.sync import SyncConfig


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


@pytest.mark.parametrize(
    ("config", "build"),
    [
        (SyncConfig, bootstrap.sync_config),
        (PublishConfig, bootstrap.publish_config),
        (ChannelConfig, bootstrap.channel_config),
        (JobsConfig, bootstrap.jobs_config),
        (PushConfig, bootstrap.push_config),
    ],
    ids=lambda c: getattr(c, "__name__", ""),
)
def test_configs_of_settings_take_every_value_from_settings(config: type, build: Any) -> None:
    """Each default is stated once, in ``Settings``: the use cases' configs have none of their own, and
    the composition root fills every field from a settings value (a changed setting reaches it)."""
    assert [f.name for f in fields(config) if f.default is not MISSING or f.default_factory is not MISSING] == []
    built = build(deployed())
    assert isinstance(built, config)
    changed = build(
        deployed(
            environment="stg",
            display_time_zone="UTC",
            sync_url="https://sync.example/",
            sync_queue="q-sync",
            sync_past_days=31,
            sync_future_days=90,
            sync_window_refresh_days=3,
            lock_lease_s=30,
            sync_run_budget_s=60,
            publish_queue="q-publish",
            publish_url="https://publish.example/",
            batch_size=7,
            invite_patients=["c9"],
            control_calendar_id="other@group.calendar.google.com",
            webhook_url="https://hook.example/",
            channel_ttl_s=7200,
            renew_margin_s=900,
            renew_url="https://renew.example/",
            renew_queue="q-renew",
            renew_inline_max=2,
            poll_limit=9,
            poll_stale_s=120,
            poll_interval_s=30,
            mirror_retention_days=5,
            conflict_retention_days=6,
            cleanup_batch=8,
            debounce_s=5,
            unknown_channel_interval_s=11,
            unknown_channel_retention_s=7201,
            unknown_channel_max=12,
            unknown_channel_cache_s=13,
        )
    )
    same = [
        f.name for f in fields(config) if f.name != "channel" and getattr(changed, f.name) == getattr(built, f.name)
    ]
    assert same == []
