"""Point 1: identity and tokens — bearer tokens from /token (real google-auth), X-Emulator-User, default SA."""

from __future__ import annotations

import datetime as dt

import google.auth.exceptions
import google.auth.transport.requests
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import iam
from google.auth.credentials import AnonymousCredentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from googleapiclient.errors import HttpError

from .helpers import calendar, control, timed_event

SCOPE = "https://www.googleapis.com/auth/calendar"
SA_EMAIL = "robot@demo-calsync.iam.gserviceaccount.com"
EVENT = timed_event("Consulta", "2030-01-07T10:00:00Z", "2030-01-07T11:00:00Z")


def _service_account_info(base: str) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "demo-calsync",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": SA_EMAIL,
        "client_id": "1234567890",
        "token_uri": f"{base}/token",
    }


def _oauth(base: str, refresh_token: str) -> user_credentials.Credentials:
    return user_credentials.Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=refresh_token,
        token_uri=f"{base}/token",
        client_id="client-id.apps.googleusercontent.com",
        client_secret="client-secret",
        scopes=[SCOPE],
    )


def test_refresh_token_grant_identifies_the_person(calendar_base: str) -> None:
    creds = _oauth(calendar_base, "rt:alice@clinic.example:1")
    api = calendar(calendar_base, credentials=creds)
    created = api.events().insert(calendarId="primary", body=EVENT).execute()
    assert creds.token
    assert creds.token.startswith("ya29.")
    assert created["creator"]["email"] == "alice@clinic.example"
    assert created["organizer"]["email"] == "alice@clinic.example"
    assert api.calendars().get(calendarId="primary").execute()["id"] == "alice@clinic.example"


def test_revoked_refresh_token_answers_invalid_grant(calendar_base: str) -> None:
    refresh = "rt:bob@clinic.example:2"
    api = calendar(calendar_base, credentials=_oauth(calendar_base, refresh))
    api.calendars().get(calendarId="primary").execute()
    control(calendar_base, "revoke", {"refresh_token": refresh})
    # Its access tokens die with it: the client gets 401, refreshes, and the refresh is refused.
    with pytest.raises(google.auth.exceptions.RefreshError) as err:
        api.calendars().get(calendarId="primary").execute()
    assert "invalid_grant" in str(err.value)
    assert "Token has been expired or revoked." in str(err.value)
    fresh = calendar(calendar_base, credentials=_oauth(calendar_base, refresh))
    with pytest.raises(google.auth.exceptions.RefreshError):
        fresh.calendars().get(calendarId="primary").execute()


def test_service_account_jwt_grant(calendar_base: str) -> None:
    creds = service_account.Credentials.from_service_account_info(_service_account_info(calendar_base), scopes=[SCOPE])  # type: ignore[no-untyped-call]
    api = calendar(calendar_base, credentials=creds)
    created = api.events().insert(calendarId="primary", body=EVENT).execute()
    assert created["creator"]["email"] == SA_EMAIL
    assert creds.expiry is not None
    assert creds.expiry > dt.datetime.now(dt.UTC).replace(tzinfo=None)


def test_service_account_with_subject_acts_as_that_person(calendar_base: str) -> None:
    creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        _service_account_info(calendar_base), scopes=[SCOPE], subject="carol@clinic.example"
    )
    created = calendar(calendar_base, credentials=creds).events().insert(calendarId="primary", body=EVENT).execute()
    assert created["creator"]["email"] == "carol@clinic.example"


def test_unknown_bearer_token_is_401(calendar_base: str) -> None:
    api = calendar(calendar_base, headers={"Authorization": "Bearer ya29.not-issued-here"})
    with pytest.raises(HttpError) as err:
        api.calendarList().list().execute()
    assert err.value.resp.status == 401
    assert err.value.error_details[0]["reason"] == "authError"


def test_header_user_and_default_service_account(calendar_base: str) -> None:
    as_dana = calendar(calendar_base, user="dana@clinic.example")
    assert as_dana.events().insert(calendarId="primary", body=EVENT).execute()["creator"]["email"] == (
        "dana@clinic.example"
    )
    anonymous = calendar(calendar_base)
    created = anonymous.events().insert(calendarId="primary", body=EVENT).execute()
    assert created["creator"]["email"] == "calsync-sa@demo-calsync.iam.gserviceaccount.com"


# --- keyless delegation: IAM signBlob and verified assertions -------------------------------------------

KEYLESS_SA = "keyless@demo-calsync.iam.gserviceaccount.com"


def _iam_signed(base: str, subject: str) -> service_account.Credentials:
    class _Local(google.auth.transport.requests.Request):
        def __call__(self, url: str, *args: object, **kwargs: object) -> object:
            return super().__call__(url.replace("https://iamcredentials.googleapis.com", base), *args, **kwargs)

    signer = iam.Signer(_Local(), AnonymousCredentials(), KEYLESS_SA)  # type: ignore[no-untyped-call]
    return service_account.Credentials(signer, KEYLESS_SA, f"{base}/token", scopes=[SCOPE], subject=subject)  # type: ignore[no-untyped-call]


def test_sign_blob_mints_a_verified_delegation_token(calendar_base: str) -> None:
    creds = _iam_signed(calendar_base, "dana@clinic.example")
    api = calendar(calendar_base, credentials=creds)

    created = api.events().insert(calendarId="primary", body=EVENT).execute()

    assert created["creator"]["email"] == "dana@clinic.example"
    stats = control(calendar_base, "stats", method="GET")
    assert stats["token_grants"].get("jwt_signed", 0) >= 1
    assert stats["iam_signed"] >= 1


def test_forged_assertion_for_an_iam_signed_account_is_refused(calendar_base: str) -> None:
    _iam_signed(calendar_base, "dana@clinic.example").refresh(google.auth.transport.requests.Request())
    forged_info = _service_account_info(calendar_base) | {"client_email": KEYLESS_SA}
    forged = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        forged_info, scopes=[SCOPE], subject="dana@clinic.example"
    )

    with pytest.raises(google.auth.exceptions.RefreshError) as err:
        forged.refresh(google.auth.transport.requests.Request())

    assert "invalid_grant" in str(err.value)
    assert "Invalid JWT Signature." in str(err.value)


def test_sign_blob_needs_the_token_creator_role(calendar_base: str) -> None:
    control(calendar_base, "iam", {"token_creators": {KEYLESS_SA: ["ops@clinic.example"]}})
    try:
        with pytest.raises(google.auth.exceptions.TransportError) as err:
            _iam_signed(calendar_base, "dana@clinic.example").refresh(google.auth.transport.requests.Request())
        assert "iam.serviceAccounts.signBlob" in str(err.value)
        assert "403" in str(err.value)
    finally:
        control(calendar_base, "iam", {"token_creators": None})
