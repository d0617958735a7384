"""Google ID token verification (google-auth) for the admin API and Cloud Tasks' OIDC calls.

``verify_google_id_token`` checks the signature against Google's published certificates, the expiry,
the issuer and the audience, and returns the claims. Any failure is ``errors.Unauthenticated``.
``CERTS_URL`` is a module setting so a test can serve its own certificates on 127.0.0.1.

google-auth fetches the certificates on every verification; its transport here is a requests
session wrapped by CacheControl, which keeps the answer as long as Google's ``Cache-Control:
max-age`` allows (hours) and fetches again after, so Google's key rotation is still followed.

Guide: https://cloud.google.com/functions/docs/securing/authenticating
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import requests
from cachecontrol import CacheControl
from google.oauth2 import id_token

from calsync import errors

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
CERTS_URL = GOOGLE_CERTS_URL
ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})

# One cached session per process: certificates are fetched once per max-age, not once per request.
_transport = google.auth.transport.requests.Request(session=CacheControl(requests.Session()))


def verify_google_id_token(token: str, *, audience: str | Sequence[str]) -> Mapping[str, Any]:
    """The verified claims of a Google-signed ID token for ``audience`` (``Unauthenticated`` otherwise)."""
    try:
        accepted = audience if isinstance(audience, str) else list(audience)
        claims: Mapping[str, Any] = id_token.verify_token(token, _transport, audience=accepted, certs_url=CERTS_URL)
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise errors.Unauthenticated("invalid ID token") from exc
    if claims.get("iss") not in ISSUERS:
        raise errors.Unauthenticated("ID token from an unexpected issuer")
    if not claims.get("email") or not claims.get("email_verified", False):
        raise errors.Unauthenticated("ID token without a verified e-mail")
    return claims
