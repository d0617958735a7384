"""Credentials with real google-auth against the Calendar emulator's ``/token``; the encrypted token store
on Google's Firestore emulator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.exceptions import RefreshError
from pydantic import SecretStr

from calsync import errors
from calsync.adapters.credentials import (
    CredentialsProvider,
    OAuthClient,
    classify_refresh_error,
    refresh,
    service_account_credentials,
    service_account_from_key,
)
from calsync.adapters.secrets import EnvSecrets
from calsync.adapters.token_crypto import AesGcmTokenCipher, KeyRing, TokenDecryptionError, generate_key
from calsync.adapters.token_store import EncryptedTokenStore
from calsync.config import Settings
from devstack import procs

SA_EMAIL = "calsync-sa@demo-calsync.iam.gserviceaccount.com"
DR_ANA = "dr.ana@clinic.example"
REFRESH = f"rt:{DR_ANA}:consent-1"


def sa_key_json() -> str:
    """A service-account key JSON with an RSA key made for this test (token_uri: Google's)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "demo-calsync",
            "private_key_id": "test-key-1",
            "private_key": pem,
            "client_email": SA_EMAIL,
            "client_id": "1234567890",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


SA_KEY = sa_key_json()
OAUTH_CLIENT = json.dumps({"web": {"client_id": "calsync-web.apps.example", "client_secret": "GOCSPX-test"}})


def env_secrets(**extra: str) -> EnvSecrets:
    return EnvSecrets(
        {
            "CALSYNC_SECRET_CALSYNC_SA_KEY": SA_KEY,
            "CALSYNC_SECRET_CALSYNC_OAUTH_CLIENT": OAUTH_CLIENT,
            "CALSYNC_SECRET_CALSYNC_TOKEN_KEY": generate_key(),
            **extra,
        },
        env_file=None,
    )


def whoami(base: str, token: str) -> Any:
    """The caller's primary calendar id, as the emulator's Calendar API sees the bearer token."""
    resp = requests.get(
        f"{base}/calendar/v3/calendars/primary", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    resp.raise_for_status()
    return resp.json()["id"]


@pytest.fixture
def cipher() -> AesGcmTokenCipher:
    return AesGcmTokenCipher(KeyRing.parse(SecretStr(generate_key())))


@pytest.fixture
def store(firestore_client: Any, cipher: AesGcmTokenCipher) -> EncryptedTokenStore:
    return EncryptedTokenStore(firestore_client, cipher, environment="dev")


# --- service account --------------------------------------------------------------------------------


def test_service_account_jwt_grant(calendar_base: str) -> None:
    provider = CredentialsProvider(
        env_secrets(), service_account_secret="calsync-sa-key", token_uri=f"{calendar_base}/token"
    )
    creds = provider.service_account()

    refresh(creds)

    # The key names Google's token_uri, which no machine here reaches: success means the override won.
    assert creds.valid
    assert whoami(calendar_base, creds.token) == SA_EMAIL


def test_service_account_domain_wide_delegation(calendar_base: str) -> None:
    provider = CredentialsProvider(
        env_secrets(),
        service_account_secret="calsync-sa-key",
        token_uri=f"{calendar_base}/token",
        delegated_user=DR_ANA,
    )
    creds = provider.service_account()

    refresh(creds)

    assert whoami(calendar_base, creds.token) == DR_ANA
    assert provider.service_account() is creds  # built once per instance


def test_service_account_from_settings(calendar_base: str) -> None:
    settings = Settings(
        environment="dev",
        gcp_project="demo-calsync",
        control_calendar_id="control",
        webhook_url="http://127.0.0.1:1/webhook",
        sync_url="http://127.0.0.1:2/",
        token_uri=f"{calendar_base}/token",
        delegated_user=DR_ANA,
        _env_file=None,  # type: ignore[call-arg]
    )
    creds = service_account_credentials(settings, env_secrets())

    refresh(creds)

    assert whoami(calendar_base, creds.token) == DR_ANA


def test_malformed_service_account_key_is_unavailable() -> None:
    with pytest.raises(errors.SecretUnavailable) as info:
        service_account_from_key(SecretStr('{"type": "service_account", "private_key": "-----BEGIN x"}'))
    assert "BEGIN" not in str(info.value)
    assert info.value.__cause__ is None


def test_unreachable_token_endpoint_is_transient() -> None:
    creds = service_account_from_key(SecretStr(SA_KEY), token_uri=f"http://127.0.0.1:{procs.free_port()}/token")

    with pytest.raises(errors.Transient):
        refresh(creds)


# --- OAuth users: refresh-token grant, revocation ------------------------------------------------------


def test_refresh_token_grant(calendar_base: str, store: EncryptedTokenStore) -> None:
    store.put("prof-ana", SecretStr(REFRESH))
    provider = CredentialsProvider(
        env_secrets(),
        service_account_secret="calsync-sa-key",
        oauth_client_secret="calsync-oauth-client",
        token_uri=f"{calendar_base}/token",
        tokens=store,
    )
    creds = provider.for_calendar("prof-ana")

    refresh(creds)

    assert creds.valid
    assert creds.client_id == "calsync-web.apps.example"
    assert whoami(calendar_base, creds.token) == DR_ANA


def test_revoked_refresh_token_is_auth_revoked(calendar_base: str, store: EncryptedTokenStore) -> None:
    store.put("prof-ana", SecretStr(REFRESH))
    provider = CredentialsProvider(
        env_secrets(),
        service_account_secret="calsync-sa-key",
        oauth_client_secret="calsync-oauth-client",
        token_uri=f"{calendar_base}/token",
        tokens=store,
    )
    requests.post(f"{calendar_base}/_emulator/revoke", json={"refresh_token": REFRESH}, timeout=10).raise_for_status()

    with pytest.raises(errors.AuthRevoked) as info:
        refresh(provider.for_calendar("prof-ana"))
    assert info.value.reason == "invalid_grant"
    assert info.value.retryable is False
    assert REFRESH not in str(info.value)


def test_calendar_without_token_is_auth_revoked(store: EncryptedTokenStore) -> None:
    provider = CredentialsProvider(
        env_secrets(), service_account_secret="calsync-sa-key", oauth_client_secret="calsync-oauth-client", tokens=store
    )

    with pytest.raises(errors.AuthRevoked) as info:
        provider.for_calendar("never-authorised")
    assert info.value.reason == "no_refresh_token"


def test_undecryptable_token_is_auth_revoked(firestore_client: Any, store: EncryptedTokenStore) -> None:
    store.put("prof-ana", SecretStr(REFRESH))
    other_key = EncryptedTokenStore(
        firestore_client, AesGcmTokenCipher(KeyRing.parse(SecretStr(generate_key()))), environment="dev"
    )
    provider = CredentialsProvider(
        env_secrets(),
        service_account_secret="calsync-sa-key",
        oauth_client_secret="calsync-oauth-client",
        tokens=other_key,
    )

    with pytest.raises(errors.AuthRevoked) as info:
        provider.for_calendar("prof-ana")
    assert info.value.reason == "token_undecryptable"


@pytest.mark.parametrize(
    ("exc", "expected", "reason"),
    [
        (RefreshError("invalid_grant: Bad Request", {"error": "invalid_grant"}), errors.AuthRevoked, "invalid_grant"),
        (
            RefreshError("unauthorized_client: x", {"error": "unauthorized_client"}),
            errors.AuthRevoked,
            "unauthorized_client",
        ),
        (RefreshError("invalid_client: The OAuth client was not found."), errors.AuthRevoked, "invalid_client"),
        (
            RefreshError("internal_failure: x", {"error": "internal_failure"}, retryable=True),
            errors.Transient,
            "internal_failure",
        ),
        (RefreshError("No access token in response."), errors.BadRequest, "refresh_failed"),
        (RefreshError("invalid_scope: x", {"error": "invalid_scope"}), errors.BadRequest, "invalid_scope"),
    ],
)
def test_classify_refresh_error(exc: RefreshError, expected: type[errors.CalendarApiError], reason: str) -> None:
    classified = classify_refresh_error(exc)

    assert type(classified) is expected
    assert classified.reason == reason


def test_oauth_client_formats() -> None:
    flat = OAuthClient.parse(SecretStr('{"client_id": "a", "client_secret": "b"}'))
    installed = OAuthClient.parse(SecretStr('{"installed": {"client_id": "a", "client_secret": "b"}}'))

    assert flat.client_id == installed.client_id == "a"
    with pytest.raises(errors.SecretUnavailable) as info:
        OAuthClient.parse(SecretStr('{"web": {"client_id": "only-id-and-SECRETISH"}}'))
    assert "SECRETISH" not in str(info.value)


# --- encrypted token store ----------------------------------------------------------------------------


def test_store_round_trip_keeps_only_ciphertext(firestore_client: Any, store: EncryptedTokenStore) -> None:
    store.put("prof-ana", SecretStr(REFRESH))

    assert store.get("prof-ana") == SecretStr(REFRESH)
    doc = firestore_client.collection("dev_oauth_tokens").document("prof-ana").get().to_dict()
    assert REFRESH not in json.dumps(doc, default=str)
    assert set(doc) == {"ciphertext", "key_id", "schema_version", "updated_at"}
    assert store.get("nobody") is None


def test_store_ciphertext_is_bound_to_calendar_and_environment(
    firestore_client: Any, store: EncryptedTokenStore, cipher: AesGcmTokenCipher
) -> None:
    store.put("prof-ana", SecretStr(REFRESH))
    doc = firestore_client.collection("dev_oauth_tokens").document("prof-ana").get().to_dict()
    firestore_client.collection("dev_oauth_tokens").document("prof-bob").set(doc)
    firestore_client.collection("prod_oauth_tokens").document("prof-ana").set(doc)
    prod = EncryptedTokenStore(firestore_client, cipher, environment="prod")

    with pytest.raises(TokenDecryptionError):
        store.get("prof-bob")
    with pytest.raises(TokenDecryptionError):
        prod.get("prof-ana")


def test_store_rotates_to_primary_key_on_read(firestore_client: Any) -> None:
    k1, k2 = generate_key(), generate_key()
    ring1 = KeyRing.parse(SecretStr(json.dumps({"primary": "k1", "keys": {"k1": k1}})))
    ring2 = KeyRing.parse(SecretStr(json.dumps({"primary": "k2", "keys": {"k1": k1, "k2": k2}})))
    EncryptedTokenStore(firestore_client, AesGcmTokenCipher(ring1), environment="dev").put("p", SecretStr(REFRESH))
    rotated = EncryptedTokenStore(firestore_client, AesGcmTokenCipher(ring2), environment="dev")

    assert rotated.get("p") == SecretStr(REFRESH)

    doc = firestore_client.collection("dev_oauth_tokens").document("p").get().to_dict()
    assert doc["key_id"] == "k2"
    assert doc["ciphertext"].startswith("v1.k2.")
    assert rotated.get("p") == SecretStr(REFRESH)


def test_store_delete_and_invalid_keys(store: EncryptedTokenStore) -> None:
    store.put("prof-ana", SecretStr(REFRESH))
    store.delete("prof-ana")

    assert store.get("prof-ana") is None
    with pytest.raises(errors.InvalidRequest):
        store.put("a/b", SecretStr(REFRESH))
