"""Clinic connections (``adapters.oauth_connect``) against the Calendar emulator's consent screen and
``/token``, with the refresh token stored on Google's Firestore emulator.

The state's age is judged by the injected clock (never the wall clock): a link is refused once the
clock has moved past ``STATE_MAX_AGE_S``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pydantic import SecretStr

from calsync.adapters.credentials import OAuthClient
from calsync.adapters.oauth_connect import (
    CONNECT_SCOPES,
    STATE_MAX_AGE_S,
    ClinicConnections,
    ConnectionRefused,
    OAuthEndpoints,
)
from calsync.adapters.token_crypto import AesGcmTokenCipher, KeyRing, TokenDecryptionError, generate_key
from calsync.adapters.token_store import EncryptedTokenStore
from calsync.testing import FrozenClock

CLIENT = OAuthClient(client_id="calsync-web.apps.example", client_secret=SecretStr("GOCSPX-test"))
CALLBACK = "http://127.0.0.1:9/oauth/callback"
ACCOUNT = "agenda@gmail.example"


@pytest.fixture(autouse=True)
def plain_http_emulator() -> Iterator[None]:
    """oauthlib refuses http:// unless told; the emulator is plain HTTP (``ClinicAccounts`` does the same in dev)."""
    previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    yield
    if previous is None:
        os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
    else:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = previous


@pytest.fixture
def cipher() -> AesGcmTokenCipher:
    return AesGcmTokenCipher(KeyRing.parse(SecretStr(generate_key())))


def connections(
    base: str, firestore_client: Any, cipher: AesGcmTokenCipher, clock: FrozenClock, environment: str = "dev"
) -> ClinicConnections:
    return ClinicConnections(
        client=CLIENT,
        tokens=EncryptedTokenStore(firestore_client, cipher, environment=environment),
        cipher=cipher,
        endpoints=OAuthEndpoints(
            authorize_uri=f"{base}/o/oauth2/v2/auth",
            token_uri=f"{base}/token",
            revoke_uri=f"{base}/revoke",
            redirect_uri=CALLBACK,
        ),
        clock=clock,
    )


def consent(url: str) -> dict[str, str]:
    """The callback's query after the emulator's consent screen."""
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_consent_url_asks_for_the_two_scopes_offline_with_pkce(
    calendar_base: str, firestore_client: Any, cipher: AesGcmTokenCipher
) -> None:
    started = connections(calendar_base, firestore_client, cipher, FrozenClock()).start("c1", login_hint=ACCOUNT)
    query = parse_qs(urlsplit(started.consent_url).query)
    assert query["scope"] == [" ".join(CONNECT_SCOPES)]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["access_type"] == ["offline"]
    assert query["prompt"] == ["consent"]
    assert "v" not in query, "the PKCE verifier never travels in the clear"


def test_callback_stores_the_refresh_token_encrypted_and_bound_to_the_clinic(
    calendar_base: str, firestore_client: Any, cipher: AesGcmTokenCipher
) -> None:
    conn = connections(calendar_base, firestore_client, cipher, FrozenClock())
    back = consent(conn.start("c1", login_hint=ACCOUNT).consent_url)
    assert conn.complete(state=back["state"], code=back["code"]) == "c1"
    document = firestore_client.collection("dev_oauth_tokens").document("c1").get().to_dict()
    assert document["ciphertext"].startswith("v1.")
    assert ACCOUNT not in str(document)
    store = EncryptedTokenStore(firestore_client, cipher, environment="dev")
    token = store.get("c1")
    assert token is not None
    assert token.get_secret_value().startswith(f"rt:{ACCOUNT}:")
    # Copied onto another clinic or environment, the ciphertext does not decrypt.
    firestore_client.collection("dev_oauth_tokens").document("c2").set(document)
    with pytest.raises(TokenDecryptionError):
        store.get("c2")
    firestore_client.collection("stg_oauth_tokens").document("c1").set(document)
    with pytest.raises(TokenDecryptionError):
        EncryptedTokenStore(firestore_client, cipher, environment="stg").get("c1")


def test_a_link_older_than_its_max_age_is_refused(
    calendar_base: str, firestore_client: Any, cipher: AesGcmTokenCipher
) -> None:
    clock = FrozenClock()
    conn = connections(calendar_base, firestore_client, cipher, clock)
    back = consent(conn.start("c1").consent_url)
    clock.advance(STATE_MAX_AGE_S + 1)
    with pytest.raises(ConnectionRefused, match="expired"):
        conn.complete(state=back["state"], code=back["code"])
    assert firestore_client.collection("dev_oauth_tokens").document("c1").get().exists is False


def test_a_state_of_another_environment_or_altered_is_refused(
    calendar_base: str, firestore_client: Any, cipher: AesGcmTokenCipher
) -> None:
    clock = FrozenClock()
    back = consent(connections(calendar_base, firestore_client, cipher, clock, "stg").start("c1").consent_url)
    dev = connections(calendar_base, firestore_client, cipher, clock)
    with pytest.raises(ConnectionRefused, match="another environment"):
        dev.complete(state=back["state"], code=back["code"])
    head, _, signature = back["state"].rpartition(".")
    with pytest.raises(ConnectionRefused, match="not ours"):
        dev.complete(state=f"{head}.{signature[::-1]}", code=back["code"])


def test_consent_denied_and_a_replayed_code_are_refused(
    calendar_base: str, firestore_client: Any, cipher: AesGcmTokenCipher
) -> None:
    conn = connections(calendar_base, firestore_client, cipher, FrozenClock())
    back = consent(conn.start("c1").consent_url)
    with pytest.raises(ConnectionRefused, match="access_denied"):
        conn.complete(state=back["state"], error="access_denied")
    conn.complete(state=back["state"], code=back["code"])
    with pytest.raises(ConnectionRefused, match="invalid_grant"):
        conn.complete(state=back["state"], code=back["code"])


def test_the_code_needs_the_verifier_of_its_challenge(calendar_base: str) -> None:
    url = (
        f"{calendar_base}/o/oauth2/v2/auth?client_id=c&redirect_uri={CALLBACK}&response_type=code"
        "&scope=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    )
    code = consent(url)["code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": "c", "redirect_uri": CALLBACK}
    wrong = requests.post(f"{calendar_base}/token", data={**form, "code_verifier": "x" * 43}, timeout=10)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # RFC 7636 appendix B's verifier for that challenge (the refused attempt used the code up).
    code = consent(url)["code"]
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    right = requests.post(f"{calendar_base}/token", data={**form, "code": code, "code_verifier": verifier}, timeout=10)
    assert right.status_code == 200, right.text
    assert right.json()["refresh_token"].startswith("rt:")


def test_disconnect_revokes_the_grant_and_forgets_the_token(
    calendar_base: str, firestore_client: Any, cipher: AesGcmTokenCipher
) -> None:
    conn = connections(calendar_base, firestore_client, cipher, FrozenClock())
    back = consent(conn.start("c1", login_hint=ACCOUNT).consent_url)
    conn.complete(state=back["state"], code=back["code"])
    refresh_token = EncryptedTokenStore(firestore_client, cipher, environment="dev").get("c1")
    assert refresh_token is not None
    assert conn.disconnect("c1") is True
    assert conn.connected("c1") is False
    refused = requests.post(
        f"{calendar_base}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value(), "client_id": "x"},
        timeout=10,
    )
    assert refused.json()["error"] == "invalid_grant"
    assert conn.disconnect("c1") is False
