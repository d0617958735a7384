"""google-auth credentials for the Calendar API: a service account, or per-calendar OAuth users.

- Keyless domain-wide delegation
  (https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority): no
  service-account key exists. The runtime identity asks the IAM Credentials API to sign the JWT
  assertion as the delegation service account (``signBlob``, google-auth's ``iam.Signer``; the runtime
  needs ``roles/iam.serviceAccountTokenCreator`` on that account), with ``sub`` = the Workspace user to
  act as. ``token_uri`` and the IAM endpoint are overridable in dev only, so the local stack points
  them at the Calendar emulator, which signs and verifies the same way.
- OAuth users (https://developers.google.com/identity/protocols/oauth2/web-server#offline): a
  calendar authorised by a person keeps a refresh token, stored encrypted (``token_store``) and
  exchanged for access tokens with the OAuth client from Secret Manager.

A refresh that Google answers with ``invalid_grant`` (revoked, expired, password change, or a
Workspace admin policy) becomes ``errors.AuthRevoked``: a person must authorise again, and retrying
would only burn quota. ``classify_refresh_error`` is the single place that decides this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import google.auth
import google.auth.transport.requests
from google.auth import iam
from google.auth.credentials import AnonymousCredentials
from google.auth.credentials import Credentials as BaseCredentials
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import credentials as user_creds
from google.oauth2 import service_account
from pydantic import BaseModel, SecretStr, ValidationError

from calsync import errors
from calsync.adapters.token_crypto import TokenDecryptionError
from calsync.adapters.token_store import EncryptedTokenStore
from calsync.config import GOOGLE_IAM_CREDENTIALS, GOOGLE_TOKEN_URI, Settings
from calsync.logs import get_logger
from calsync.ports import Secrets

log = get_logger(__name__)

CALENDAR_SCOPES: tuple[str, ...] = ("https://www.googleapis.com/auth/calendar",)
# What the runtime identity needs to call signBlob (IAM Credentials API).
IAM_SIGNING_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

# OAuth2 error codes (RFC 6749 §5.2) that only a person can fix: re-consent, or fix the client/grant.
REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"})


class OAuthClient(BaseModel):
    """The OAuth client calsync refreshes user tokens with."""

    client_id: str
    client_secret: SecretStr

    @classmethod
    def parse(cls, value: SecretStr) -> OAuthClient:
        """From the client JSON Google's console downloads (``{"web": {...}}``/``installed``) or flat JSON."""
        try:
            data: Any = json.loads(value.get_secret_value())
        except ValueError:
            raise errors.SecretUnavailable("OAuth client secret is not JSON") from None
        if isinstance(data, dict):
            data = data.get("web") or data.get("installed") or data
        try:
            return cls.model_validate(data)
        except ValidationError:
            # ``from None``: pydantic's message would quote the secret's content.
            raise errors.SecretUnavailable("OAuth client secret lacks client_id/client_secret") from None


class IamRequest(google.auth.transport.requests.Request):
    """A google-auth transport that sends IAM Credentials calls to ``iam_endpoint`` (dev: the emulator)."""

    def __init__(self, iam_endpoint: str = GOOGLE_IAM_CREDENTIALS) -> None:
        super().__init__()
        self._base = iam_endpoint.rstrip("/")

    def __call__(self, url: str, *args: Any, **kwargs: Any) -> Any:
        """Send the request, rebased when it is an IAM Credentials call."""
        if url.startswith(GOOGLE_IAM_CREDENTIALS):
            url = self._base + url.removeprefix(GOOGLE_IAM_CREDENTIALS)
        return super().__call__(url, *args, **kwargs)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Delegation:
    """How calsync signs delegation assertions without a key.

    ``signer_email`` is the delegation service account (its client id is authorised for the Calendar
    scope in the Workspace admin console); ``source`` the runtime identity that may sign as it.
    """

    signer_email: str
    source: BaseCredentials
    token_uri: str = GOOGLE_TOKEN_URI
    iam_endpoint: str = GOOGLE_IAM_CREDENTIALS

    def credentials(self, subject: str | None, scopes: Sequence[str] = CALENDAR_SCOPES) -> service_account.Credentials:
        """Credentials acting as ``subject`` (None: the service account itself); refreshed on use."""
        signer = iam.Signer(IamRequest(self.iam_endpoint), self.source, self.signer_email)  # type: ignore[no-untyped-call]
        return service_account.Credentials(  # type: ignore[no-untyped-call]
            signer, self.signer_email, self.token_uri, scopes=list(scopes), subject=subject or None
        )


def delegation_from_settings(settings: Settings) -> Delegation:
    """The keyless delegation of ``settings``: ADC as the signer's source (the emulator needs none)."""
    if settings.iam_credentials_endpoint != GOOGLE_IAM_CREDENTIALS:
        source: BaseCredentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    else:
        source, _ = google.auth.default(scopes=[IAM_SIGNING_SCOPE])
    return Delegation(
        signer_email=settings.delegation_service_account,
        source=source,
        token_uri=settings.token_uri,
        iam_endpoint=settings.iam_credentials_endpoint,
    )


def delegated_credentials(settings: Settings) -> service_account.Credentials:
    """The Calendar credentials of ``settings``: keyless delegation acting as ``delegated_user``."""
    return delegation_from_settings(settings).credentials(settings.delegated_user or None)


def user_credentials(
    refresh_token: SecretStr,
    client: OAuthClient,
    *,
    token_uri: str,
    scopes: Sequence[str] | None = CALENDAR_SCOPES,
) -> user_creds.Credentials:
    """OAuth user credentials that mint access tokens from ``refresh_token`` at ``token_uri``."""
    return user_creds.Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=refresh_token.get_secret_value(),
        client_id=client.client_id,
        client_secret=client.client_secret.get_secret_value(),
        token_uri=token_uri,
        scopes=list(scopes) if scopes else None,
    )


def refresh_error_code(exc: RefreshError) -> str:
    """The OAuth2 ``error`` code of a failed refresh (``""`` when the answer had none)."""
    for arg in exc.args[1:]:
        if isinstance(arg, Mapping) and isinstance(arg.get("error"), str):
            return str(arg["error"])
    first = str(exc.args[0]) if exc.args else ""
    code, sep, _ = first.partition(":")
    return code.strip() if sep and code.strip().replace("_", "").isalnum() else ""


def classify_refresh_error(exc: RefreshError) -> errors.CalendarApiError:
    """``invalid_grant`` & co → ``AuthRevoked``; retryable answers → ``Transient``; else ``BadRequest``."""
    code = refresh_error_code(exc)
    if code in REAUTH_ERRORS:
        return errors.AuthRevoked(f"token refresh refused: {code}", status=400, reason=code)
    if getattr(exc, "retryable", False):
        return errors.Transient("token endpoint failed; retry later", reason=code or "refresh_failed")
    return errors.BadRequest(f"token refresh failed: {code or 'unknown'}", reason=code or "refresh_failed")


def refresh(credentials: BaseCredentials, request: google.auth.transport.Request | None = None) -> None:
    """Refresh ``credentials`` now, raising classified ``errors`` instead of google-auth exceptions."""
    try:
        credentials.refresh(request or google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    except RefreshError as exc:
        raise classify_refresh_error(exc) from exc
    except TransportError as exc:
        raise classify_transport_error(exc) from exc


def classify_transport_error(exc: TransportError) -> errors.CalendarApiError:
    """IAM refusing to sign is final (a missing role); anything else on the way to a token is transient."""
    text = str(exc)
    if "signBlob" in text and ('"code": 403' in text or "PERMISSION_DENIED" in text):
        return errors.Forbidden(
            "the runtime may not sign as the delegation service account (needs roles/iam.serviceAccountTokenCreator)",
            status=403,
            reason="iamPermissionDenied",
        )
    return errors.Transient("token endpoint unreachable", reason="network")


class CredentialsProvider:
    """Builds the Calendar credentials of a connected clinic's account from the encrypted token store.

    Built once per instance by the composition root; secrets are parsed once and credentials reused
    (google-auth refreshes them when they expire).
    """

    def __init__(
        self,
        secrets: Secrets,
        *,
        oauth_client_secret: str = "",
        token_uri: str | None = None,
        tokens: EncryptedTokenStore | None = None,
        scopes: Sequence[str] = CALENDAR_SCOPES,
    ) -> None:
        """``token_uri`` None: Google's (OAuth refreshes)."""
        self._secrets = secrets
        self._client_secret = oauth_client_secret
        self._token_uri = token_uri
        self._tokens = tokens
        self._scopes = tuple(scopes)
        self._client: OAuthClient | None = None

    def oauth_client(self) -> OAuthClient:
        """The OAuth client (read from its secret once)."""
        if self._client is None:
            if not self._client_secret:
                raise errors.SecretUnavailable("no OAuth client secret configured")
            self._client = OAuthClient.parse(self._secrets.get(self._client_secret))
        return self._client

    def for_calendar(self, calendar_key: str) -> user_creds.Credentials:
        """OAuth credentials of a person-authorised calendar (``AuthRevoked`` if it has no usable token)."""
        if self._tokens is None:
            raise errors.SecretUnavailable("no encrypted token store configured")
        try:
            refresh_token = self._tokens.get(calendar_key)
        except TokenDecryptionError as exc:
            log.warning("stored refresh token undecryptable", calendar_key=calendar_key, code=exc.code)
            raise errors.AuthRevoked("stored refresh token cannot be decrypted", reason=exc.code) from exc
        if refresh_token is None:
            raise errors.AuthRevoked("calendar has no stored refresh token", reason="no_refresh_token")
        return user_credentials(
            refresh_token,
            self.oauth_client(),
            token_uri=self._token_uri or GOOGLE_TOKEN_URI,
            scopes=self._scopes,
        )
