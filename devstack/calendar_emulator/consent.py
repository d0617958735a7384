"""The authorization-code flow of the local stack: Google's consent screen, answered at once.

``GET /o/oauth2/v2/auth`` stands for https://accounts.google.com/o/oauth2/v2/auth
(https://developers.google.com/identity/protocols/oauth2/web-server#creatingclient): the person
consents as ``login_hint`` (else ``DEFAULT_OAUTH_USER``) and is redirected to ``redirect_uri`` with a
one-time ``code`` and the caller's ``state``. The code is bound to the client, the redirect URI and the
PKCE challenge (RFC 7636, S256 or plain) and expires after ``CODE_TTL_S``; ``/token``'s
``authorization_code`` grant redeems it for an access token and a refresh token ``rt:<email>:<random>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from devstack.calendar_emulator import wire

CODE_TTL_S = 600


class ConsentError(Exception):
    """A request the consent screen refuses before redirecting (bad client or redirect URI)."""


@dataclass(frozen=True)
class PendingCode:
    """An issued authorization code."""

    email: str
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str
    method: str
    expires_at: float


@dataclass
class Consent:
    """Issued authorization codes, and how many were granted and redeemed."""

    codes: dict[str, PendingCode] = field(default_factory=dict)
    granted: int = 0

    def authorize(self, params: dict[str, str], default_user: str) -> str:
        """The URL the browser is sent to after consenting (``ConsentError`` if none may be)."""
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if not client_id:
            raise ConsentError("Error 401: invalid_client. The OAuth client was not found.")
        if not redirect_uri.startswith(("http://", "https://")):
            raise ConsentError("Error 400: redirect_uri_mismatch")
        state = {"state": params["state"]} if params.get("state") else {}
        if params.get("response_type") != "code":
            return _with(redirect_uri, {"error": "unsupported_response_type", **state})
        if not params.get("scope"):
            return _with(redirect_uri, {"error": "invalid_scope", **state})
        code = wire.new_opaque("4/emu-")
        self.codes[code] = PendingCode(
            email=params.get("login_hint") or default_user,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=params["scope"],
            challenge=params.get("code_challenge", ""),
            method=params.get("code_challenge_method", "plain"),
            expires_at=time.time() + CODE_TTL_S,
        )
        self.granted += 1
        return _with(redirect_uri, {"code": code, "scope": params["scope"], **state})

    def redeem(self, form: dict[str, str]) -> PendingCode | str:
        """The code's grant, or the OAuth2 error description refusing it (a code is used once)."""
        pending = self.codes.pop(form.get("code", ""), None)
        if pending is None or pending.expires_at < time.time():
            return "Malformed auth code."
        if form.get("client_id") != pending.client_id:
            return "The OAuth client does not match the code."
        if form.get("redirect_uri") != pending.redirect_uri:
            return "Bad Request: redirect_uri does not match."
        if pending.challenge and not _verifier_matches(form.get("code_verifier", ""), pending):
            return "Invalid code verifier."
        return pending


def _verifier_matches(verifier: str, pending: PendingCode) -> bool:
    if pending.method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        computed = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    else:
        computed = verifier
    return hmac.compare_digest(computed, pending.challenge)


def _with(url: str, query: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"
