"""Identity: a minimal OAuth2 token endpoint and the mapping of requests to callers.

``POST /token`` accepts ``grant_type=refresh_token``, ``authorization_code`` (codes of ``consent``, PKCE
checked) and the service-account JWT bearer grant
(``urn:ietf:params:oauth:grant-type:jwt-bearer``), so google-auth's credential classes work with
``token_uri`` pointed here. Access tokens are opaque and map back to their principal. An assertion
issued by a service account whose key the emulator holds (it signed through ``signBlob``, see
``iam``) must carry a valid signature; other assertions are not verified (tests generate their keys).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from google.auth import jwt

from devstack.calendar_emulator import wire
from devstack.calendar_emulator.consent import Consent, PendingCode
from devstack.calendar_emulator.errors import ApiError
from devstack.calendar_emulator.iam import Iam
from devstack.calendar_emulator.store import Caller

DEFAULT_SERVICE_ACCOUNT = "calsync-sa@demo-calsync.iam.gserviceaccount.com"
# Refresh tokens not of the form ``rt:<email>[:anything]`` belong to this person.
DEFAULT_OAUTH_USER = "owner@clinic.example"
ACCESS_TOKEN_TTL_S = 3600
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CODE_GRANT = "authorization_code"


class TokenError(Exception):
    """An OAuth2 error answered as ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status, self.error, self.description = status, error, description
        super().__init__(f"{error}: {description}")

    def body(self) -> dict[str, str]:
        """The OAuth2 error document."""
        return {"error": self.error, "error_description": self.description}


def is_service_account(email: str) -> bool:
    """True for ``*.gserviceaccount.com`` principals."""
    return email.endswith(".gserviceaccount.com")


def caller_for(email: str) -> Caller:
    """The caller for a principal email."""
    return Caller(email=email, service_account=is_service_account(email))


@dataclass
class Grant:
    """An issued access token."""

    caller: Caller
    expires_at: float
    refresh_token: str | None


@dataclass
class Tokens:
    """Issued access tokens and revoked refresh tokens."""

    access: dict[str, Grant] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    # The principal of requests that carry no credentials (``--default-user``).
    default_user: str = DEFAULT_SERVICE_ACCOUNT
    iam: Iam = field(default_factory=Iam)
    consent: Consent = field(default_factory=Consent)
    # Refresh tokens issued by the authorization-code grant, oldest first (what a person could revoke).
    issued: list[str] = field(default_factory=list)
    # Grants by kind: ``refresh_token``, ``jwt`` (assertion not verifiable here), ``jwt_signed``
    # (verified against a key of ``iam``), ``refused``.
    grants: dict[str, int] = field(default_factory=dict)

    def issue(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer a token request (form fields of ``POST /token``)."""
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            if not refresh:
                raise TokenError(400, "invalid_request", "Missing required parameter: refresh_token")
            if not form.get("client_id"):
                raise TokenError(401, "invalid_client", "The OAuth client was not found.")
            if refresh in self.revoked:
                raise TokenError(400, "invalid_grant", "Token has been expired or revoked.")
            self.grants["refresh_token"] = self.grants.get("refresh_token", 0) + 1
            return self._grant(caller_for(user_of_refresh_token(refresh)), refresh, form.get("scope"))
        if grant_type == CODE_GRANT:
            if not form.get("client_id"):
                raise TokenError(401, "invalid_client", "The OAuth client was not found.")
            redeemed = self.consent.redeem(form)
            if not isinstance(redeemed, PendingCode):
                raise TokenError(400, "invalid_grant", redeemed)
            self.grants[CODE_GRANT] = self.grants.get(CODE_GRANT, 0) + 1
            refresh = f"rt:{redeemed.email}:{wire.new_opaque('')}"
            self.issued.append(refresh)
            return {**self._grant(caller_for(redeemed.email), refresh, redeemed.scope), "refresh_token": refresh}
        if grant_type == JWT_GRANT:
            assertion = form.get("assertion", "")
            try:
                claims: dict[str, Any] = jwt.decode(assertion, verify=False)  # type: ignore[no-untyped-call]
            except ValueError as exc:
                raise TokenError(400, "invalid_grant", "Invalid JWT: malformed assertion.") from exc
            subject = claims.get("sub") or claims.get("iss")
            if not subject:
                raise TokenError(400, "invalid_grant", "Invalid JWT: no iss or sub claim.")
            self._check_signature(assertion, str(claims.get("iss") or ""))
            # A ``sub`` different from ``iss`` is domain-wide delegation: act as that person.
            return self._grant(caller_for(str(subject)), None, claims.get("scope"))
        raise TokenError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _check_signature(self, assertion: str, issuer: str) -> None:
        """Refuse an assertion of an account whose key the emulator holds unless that key signed it."""
        head, _, signature = assertion.rpartition(".")
        try:
            raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        except ValueError:
            raw = b""
        verified = self.iam.verifies(issuer, head.encode(), raw)
        if verified is False:
            self.grants["refused"] = self.grants.get("refused", 0) + 1
            raise TokenError(400, "invalid_grant", "Invalid JWT Signature.")
        kind = "jwt_signed" if verified else "jwt"
        self.grants[kind] = self.grants.get(kind, 0) + 1

    def _grant(self, caller: Caller, refresh: str | None, scope: str | None) -> dict[str, Any]:
        token = wire.new_opaque("ya29.emu-")
        self.access[token] = Grant(caller, time.time() + ACCESS_TOKEN_TTL_S, refresh)
        out: dict[str, Any] = {"access_token": token, "expires_in": ACCESS_TOKEN_TTL_S, "token_type": "Bearer"}
        if scope:
            out["scope"] = scope
        return out

    def revoke(self, refresh_token: str) -> int:
        """Revoke a refresh token and the access tokens issued from it; returns how many were dropped."""
        self.revoked.add(refresh_token)
        dropped = [t for t, g in self.access.items() if g.refresh_token == refresh_token]
        for token in dropped:
            del self.access[token]
        return len(dropped)

    def caller(self, authorization: str | None, emulator_user: str | None) -> Caller:
        """The principal of a request: bearer token, else ``X-Emulator-User``, else the default user."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            grant = self.access.get(token.strip()) if scheme.lower() == "bearer" else None
            if grant is None or grant.expires_at < time.time():
                raise ApiError(
                    401,
                    "authError",
                    "Invalid Credentials",
                    location="Authorization",
                    location_type="header",
                    headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
                )
            return grant.caller
        if emulator_user:
            return caller_for(emulator_user.strip())
        return caller_for(self.default_user)


def user_of_refresh_token(refresh_token: str) -> str:
    """``rt:<email>[:anything]`` → ``<email>``; any other refresh token → ``DEFAULT_OAUTH_USER``."""
    if refresh_token.startswith("rt:"):
        email = refresh_token[3:].split(":", 1)[0]
        if "@" in email:
            return email
    return DEFAULT_OAUTH_USER
