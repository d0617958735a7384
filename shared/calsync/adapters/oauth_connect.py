"""Connecting a clinic without Workspace: Google's OAuth web-server flow, its refresh token kept encrypted.

https://developers.google.com/identity/protocols/oauth2/web-server — an admin asks for a consent URL
(``start``); the clinic's Google account consents there and Google sends the browser back to
``{publish_url}/oauth/callback`` with a code and our ``state``; ``complete`` checks the state, redeems
the code (with the PKCE verifier) and stores the refresh token encrypted, bound to clinic and
environment (``token_store``). From then on the clinic's calendars are written as that account.

- Scopes, the least that does the job (``CONNECT_SCOPES``): ``calendar.app.created`` creates
  secondary calendars and reads/writes those calendars and their events only (never the account's
  other calendars); ``calendar.freebusy`` reads the busy times of calendars shared with the account
  (a professional's own calendar), never their events.
- ``state`` is signed with the OAuth client's secret (itsdangerous), carries clinic, environment, a
  nonce and the PKCE verifier encrypted with the token cipher (the browser never sees it), and is
  accepted for ``STATE_MAX_AGE_S`` by the injected clock. Only an admin can obtain one, a callback
  for another environment or an altered clinic fails its signature, and Google redeems a code once.
- oauthlib builds the consent URL and the token request and parses the answer (RFC 6749, RFC 7636).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import requests
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from oauthlib.oauth2 import OAuth2Error, WebApplicationClient
from pydantic import SecretStr

from calsync import errors
from calsync.adapters.credentials import OAuthClient
from calsync.adapters.token_crypto import TokenCipher, TokenDecryptionError
from calsync.adapters.token_store import EncryptedTokenStore
from calsync.logs import get_logger
from calsync.ports import Clock

log = get_logger(__name__)

CONNECT_SCOPES: tuple[str, ...] = (
    "https://www.googleapis.com/auth/calendar.app.created",
    "https://www.googleapis.com/auth/calendar.freebusy",
)
CALLBACK_PATH = "/oauth/callback"
STATE_MAX_AGE_S = 600
HTTP_TIMEOUT_S = 30
_SALT = "calsync-oauth-state"


class ConnectionRefused(errors.InvalidRequest):
    """The consent came back unusable: bad or expired state, consent denied, code refused, scopes missing."""

    code = "oauth_connection_refused"


@dataclass(frozen=True)
class ConsentRequest:
    """Where to send the clinic's account, and until when that link works."""

    clinic_id: str
    consent_url: str
    expires_at: datetime


@dataclass(frozen=True)
class OAuthEndpoints:
    """Google's consent screen, token and revocation endpoints, and our callback."""

    authorize_uri: str
    token_uri: str
    revoke_uri: str
    redirect_uri: str


class _ClockedSerializer(URLSafeTimedSerializer):
    """An itsdangerous serializer whose timestamps come from a ``Clock``, not the wall clock."""

    def __init__(self, secret: str, clock: Clock) -> None:
        super().__init__(secret, salt=_SALT)
        self._clock = clock

    def make_signer(self, salt: Any = None) -> Any:
        """The timestamp signer, told the time by the clock."""
        signer = cast(TimestampSigner, super().make_signer(salt))
        signer.get_timestamp = lambda: int(self._clock.now().timestamp())  # type: ignore[method-assign]
        return signer


class ClinicConnections:
    """Starts and completes clinics' OAuth connections; builds their credentials."""

    def __init__(
        self,
        *,
        client: OAuthClient,
        tokens: EncryptedTokenStore,
        cipher: TokenCipher,
        endpoints: OAuthEndpoints,
        clock: Clock,
        session: requests.Session | None = None,
    ) -> None:
        """``tokens`` keeps refresh tokens by clinic id; ``cipher`` also hides the PKCE verifier in the state."""
        self._client = client
        self._tokens = tokens
        self._cipher = cipher
        self._endpoints = endpoints
        self._clock = clock
        self._session = session or requests.Session()
        self._states = _ClockedSerializer(client.client_secret.get_secret_value(), clock)
        self.environment = tokens.environment

    def start(self, clinic_id: str, *, login_hint: str = "") -> ConsentRequest:
        """A consent URL for ``clinic_id`` (valid ``STATE_MAX_AGE_S``), asking for offline access."""
        oauth = WebApplicationClient(self._client.client_id)
        verifier = oauth.create_code_verifier(64)
        state = self._states.dumps(
            {
                "c": clinic_id,
                "e": self.environment,
                "n": secrets.token_urlsafe(16),
                "v": self._cipher.encrypt(SecretStr(verifier), context=self._state_context(clinic_id)),
            }
        )
        extra = {"login_hint": login_hint} if login_hint else {}
        url = oauth.prepare_request_uri(
            self._endpoints.authorize_uri,
            redirect_uri=self._endpoints.redirect_uri,
            scope=list(CONNECT_SCOPES),
            state=state,
            code_challenge=oauth.create_code_challenge(verifier, "S256"),
            code_challenge_method="S256",
            access_type="offline",
            prompt="consent",
            **extra,
        )
        log.info("oauth connection started", clinic_id=clinic_id)
        return ConsentRequest(clinic_id, url, self._clock.now() + timedelta(seconds=STATE_MAX_AGE_S))

    def complete(self, *, state: str, code: str = "", error: str = "") -> str:
        """Redeem the consent's code and store the refresh token; the clinic id it was for."""
        clinic_id, verifier = self._open_state(state)
        if error or not code:
            raise ConnectionRefused(f"the consent was not given ({error or 'no code'})")
        oauth = WebApplicationClient(self._client.client_id)
        body = oauth.prepare_request_body(
            code=code,
            redirect_uri=self._endpoints.redirect_uri,
            client_secret=self._client.client_secret.get_secret_value(),
            code_verifier=verifier.get_secret_value(),
            include_client_id=True,
        )
        token = self._post_token(oauth, body)
        granted = set(token.get("scope") or ())
        missing = sorted(set(CONNECT_SCOPES) - granted) if granted else []
        if missing or not token.get("refresh_token"):
            raise ConnectionRefused(f"the consent lacks {', '.join(missing) or 'offline access (no refresh token)'}")
        self._tokens.put(clinic_id, SecretStr(str(token["refresh_token"])))
        log.info("oauth connection completed", clinic_id=clinic_id)
        return clinic_id

    def disconnect(self, clinic_id: str) -> bool:
        """Revoke the clinic's grant at Google and forget it; False when it had none."""
        refresh_token = self._tokens.get(clinic_id)
        if refresh_token is None:
            return False
        try:
            self._session.post(
                self._endpoints.revoke_uri, data={"token": refresh_token.get_secret_value()}, timeout=HTTP_TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise errors.Transient("the revocation endpoint is unreachable", reason="network") from exc
        self._tokens.delete(clinic_id)
        return True

    def connected(self, clinic_id: str) -> bool:
        """True when the clinic has a stored refresh token (not necessarily still honoured by Google)."""
        return self._tokens.exists(clinic_id)

    def _open_state(self, state: str) -> tuple[str, SecretStr]:
        try:
            data = self._states.loads(state, max_age=STATE_MAX_AGE_S)
        except SignatureExpired:
            raise ConnectionRefused("the consent link has expired; start the connection again") from None
        except BadSignature:
            raise ConnectionRefused("the consent state is not ours") from None
        if not isinstance(data, Mapping) or data.get("e") != self.environment:
            raise ConnectionRefused("the consent state is for another environment")
        clinic_id = str(data.get("c") or "")
        try:
            verifier = self._cipher.decrypt(str(data.get("v") or ""), context=self._state_context(clinic_id))
        except TokenDecryptionError:
            raise ConnectionRefused("the consent state is not ours") from None
        return clinic_id, verifier

    def _post_token(self, oauth: WebApplicationClient, body: str) -> Mapping[str, Any]:
        try:
            answer = self._session.post(
                self._endpoints.token_uri,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=HTTP_TIMEOUT_S,
            )
        except requests.RequestException as exc:
            raise errors.Transient("the token endpoint is unreachable", reason="network") from exc
        if answer.status_code >= 500:
            raise errors.Transient("the token endpoint failed; retry the consent", reason="token_endpoint")
        try:
            return dict(oauth.parse_request_body_response(answer.text))
        except OAuth2Error as exc:
            raise ConnectionRefused(f"Google refused the code: {exc.error}") from None

    def _state_context(self, clinic_id: str) -> str:
        return f"{self.environment}/oauth_state/{clinic_id}"


def callback_uri(publish_url: str) -> str:
    """Where Google sends the browser back: the publish function's callback route."""
    return publish_url.rstrip("/") + CALLBACK_PATH
