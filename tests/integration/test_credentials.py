"""Credentials with real google-auth against the Calendar emulator's ``/token``; the encrypted token store
on Google's Firestore emulator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import RefreshError
from pydantic import SecretStr

from calsync import errors
from calsync.adapters.credentials import (
    CredentialsProvider,
    Delegation,
    OAuthClient,
    classify_refresh_error,
    delegated_credentials,
    refresh,
)
from calsync.adapters.secrets import EnvSecrets
from calsync.adapters.token_crypto import AesGcmTokenCipher, KeyRing, TokenDecryptionError, generate_key
from calsync.adapters.token_store import EncryptedTokenStore
from calsync.config import Settings
from devstack import procs

SA_EMAIL = "calsync-sa@demo-calsync.iam.gserviceaccount.com"
DR_ANA = "dr.ana@clinic.example"
REFRESH = f"rt:{DR_ANA}:consent-1"


OAUTH_CLIENT = json.dumps({"web": {"client_id": "calsync-web.apps.example", "client_secret": "GOCSPX-test"}})


def env_secrets(**extra: str) -> EnvSecrets:
    return EnvSecrets(
        {
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


# --- keyless domain-wide delegation ------------------------------------------------------------------


def delegation(base: str, **kw: str) -> Delegation:
    """Keyless delegation against the emulator: its IAM signs, its /token verifies."""
    urls = {"token_uri": f"{base}/token", "iam_endpoint": base} | kw
    return Delegation(signer_email=SA_EMAIL, source=AnonymousCredentials(), **urls)  # type: ignore[no-untyped-call]


def grants(base: str) -> dict[str, int]:
    stats: dict[str, Any] = requests.get(f"{base}/_emulator/stats", timeout=10).json()
    return dict(stats["token_grants"])


def test_keyless_delegation_acts_as_the_subject(calendar_base: str) -> None:
    before = grants(calendar_base).get("jwt_signed", 0)
    creds = delegation(calendar_base).credentials(DR_ANA)

    refresh(creds)

    # Google's IAM and token endpoints are unreachable here: success means both overrides held, and
    # the emulator verified the assertion against the key its signBlob used.
    assert whoami(calendar_base, creds.token) == DR_ANA
    assert grants(calendar_base).get("jwt_signed", 0) == before + 1


def test_keyless_delegation_from_settings(calendar_base: str) -> None:
    settings = Settings(
        environment="dev",
        gcp_project="demo-calsync",
        control_calendar_id="control",
        webhook_url="http://127.0.0.1:1/webhook",
        sync_url="http://127.0.0.1:2/",
        token_uri=f"{calendar_base}/token",
        iam_credentials_endpoint=calendar_base,
        delegation_service_account=SA_EMAIL,
        delegated_user=DR_ANA,
        _env_file=None,  # type: ignore[call-arg]
    )
    creds = delegated_credentials(settings)

    refresh(creds)

    assert whoami(calendar_base, creds.token) == DR_ANA


def test_signing_refused_without_token_creator_role(calendar_base: str) -> None:
    requests.post(
        f"{calendar_base}/_emulator/iam", json={"token_creators": {SA_EMAIL: ["ops@clinic.example"]}}, timeout=10
    )
    try:
        with pytest.raises(errors.Transient):  # google-auth reports IAM's 403 as a TransportError
            refresh(delegation(calendar_base).credentials(DR_ANA))
    finally:
        requests.post(f"{calendar_base}/_emulator/iam", json={"token_creators": None}, timeout=10)


@pytest.mark.parametrize("dead", ["iam", "token"])
def test_unreachable_iam_or_token_endpoint_is_transient(calendar_base: str, dead: str) -> None:
    nowhere = f"http://127.0.0.1:{procs.free_port()}"
    urls = {"iam_endpoint": nowhere} if dead == "iam" else {"token_uri": f"{nowhere}/token"}
    creds = delegation(calendar_base, **urls).credentials(DR_ANA)

    with pytest.raises(errors.Transient):
        refresh(creds)


# --- OAuth users: refresh-token grant, revocation ------------------------------------------------------


def test_refresh_token_grant(calendar_base: str, store: EncryptedTokenStore) -> None:
    store.put("prof-ana", SecretStr(REFRESH))
    provider = CredentialsProvider(
        env_secrets(),
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
    provider = CredentialsProvider(env_secrets(), oauth_client_secret="calsync-oauth-client", tokens=store)

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
