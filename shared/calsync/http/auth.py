"""Who may call the admin API, as a decorator per operation over a token-verifier port.

``Authorization: Bearer <token>``. The configured admin token (local stack, dev) is accepted in
constant time; otherwise the token must be a Google ID token for this function's URL (or one of
``admin_id_token_audiences``) whose verified e-mail is in ``admin_emails``: 401 missing/invalid, 403
not an admin. The task route accepts Cloud Tasks' OIDC token for the invoker service account;
locally (dev with the tasks emulator, which sends no OIDC token) a request carrying
``X-CloudTasks-TaskName`` is trusted: Cloud Tasks sets that header itself, and the dev function is
bound to 127.0.0.1.

``operation(policy)`` authenticates *before* flask-openapi3 validates the request (its
``validate_request`` runs inside), so a caller without credentials learns nothing about the
inputs: 401, never 400. A mutating operation writes one audit line: ``actor`` (a short sha256 of
the caller's identity, never the e-mail), ``action`` (the view's name) and the answer's
``audit()`` counts.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import flask
from flask_openapi3.request import validate_request
from pydantic import BaseModel

from calsync import errors
from calsync.adapters import id_tokens
from calsync.bootstrap import Container, get_container
from calsync.http import edge
from calsync.logs import get_logger
from calsync.results import Result

log = get_logger("calsync.publish")

Policy = Literal["admin", "task", "public"]
TASK_ROUTE = "/publish/tasks/apply"
VERIFIER_KEY = "calsync.token_verifier"
View = Callable[..., tuple[BaseModel, int]]


class TokenVerifier(Protocol):
    """Verifies a bearer ID token for an audience; its claims, or ``Unauthenticated``."""

    def verify(self, token: str, audience: str | Sequence[str]) -> Mapping[str, Any]:
        """The verified claims (``email`` among them)."""
        ...


class GoogleIdTokens:
    """Google-signed ID tokens (``adapters.id_tokens``)."""

    def verify(self, token: str, audience: str | Sequence[str]) -> Mapping[str, Any]:
        """The verified claims of a Google ID token."""
        return id_tokens.verify_google_id_token(token, audience=audience)


def actor_of(identity: str) -> str:
    """A pseudonymous actor for audit lines: a short sha256 of the caller's identity."""
    return hashlib.sha256(identity.lower().encode()).hexdigest()[:12]


def _bearer(request: flask.Request) -> str:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise errors.Unauthenticated("a bearer token is required")
    return given.strip()


def _admin_token_matches(container: Container, given: str) -> bool:
    settings = container.settings
    try:
        secret = settings.admin_token or container.secrets.get(settings.secret_admin_token)
    except errors.SecretUnavailable:
        return False
    expected = secret.get_secret_value()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def authenticate(policy: Policy, request: flask.Request, container: Container, verifier: TokenVerifier) -> str:
    """The caller's identity (an e-mail, ``admin-token``, ...); 401 without valid credentials, 403 if not allowed."""
    settings = container.settings
    if policy == "public":
        return "anonymous"
    local_tasks = settings.environment == "dev" and bool(settings.tasks_emulator_host)
    if policy == "task" and local_tasks and edge.from_task(request):
        return "cloud-tasks-emulator"
    given = _bearer(request)
    if _admin_token_matches(container, given):
        return "admin-token"
    if policy == "task":
        claims = verifier.verify(given, settings.publish_url.rstrip("/") + TASK_ROUTE)
        if str(claims["email"]).lower() != settings.tasks_invoker_service_account.lower():
            raise errors.PermissionDenied("not the Cloud Tasks invoker")
        return str(claims["email"])
    claims = verifier.verify(given, [settings.publish_url, *settings.admin_id_token_audiences])
    email = str(claims["email"]).lower()
    if email not in {e.lower() for e in settings.admin_emails}:
        raise errors.PermissionDenied("not an admin")
    return email


def operation(policy: Policy = "admin", *, audit: bool = False) -> Callable[[View], Callable[..., flask.Response]]:
    """Decorate a view: authenticate, validate its annotated inputs, call it, audit, answer JSON.

    The view returns ``(answer, status)``; the answer is dumped without the keys it left unset.
    """

    def decorate(view: View) -> Callable[..., flask.Response]:
        validated = validate_request()(view)  # type: ignore[no-untyped-call]

        @functools.wraps(view)
        def guarded(**kwargs: Any) -> flask.Response:
            container = get_container()
            verifier: TokenVerifier = flask.current_app.extensions[VERIFIER_KEY]
            identity = authenticate(policy, flask.request, container, verifier)
            answer, status = validated(**kwargs)
            if audit:
                counts = answer.audit() if isinstance(answer, Result) else {}
                log.info("publish.audit", actor=actor_of(identity), action=view.__name__, **counts)
            return edge.json_response(answer.model_dump(mode="json", exclude_unset=True), status)

        return guarded

    return decorate
