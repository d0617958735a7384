"""Who may call the admin API, as a decorator per operation over a token-verifier port.

``Authorization: Bearer <token>``. In dev only, the static admin token is accepted in constant time
(``admin_token``, the local stack's; or Secret Manager's, which must be ``config.strong_secret``);
stg/prod never consult it, even when one is configured. Otherwise the token must be a Google ID
token whose audience is this function's URL (in dev also one of ``admin_id_token_audiences``, e.g.
gcloud's shared OAuth client; never outside dev, where anyone's gcloud can mint those) with a
verified e-mail in ``admin_emails``: 401 missing/invalid, 403 not an admin.
The task route accepts Cloud Tasks' OIDC token for the invoker service account;
locally (dev with the tasks emulator, which sends no OIDC token) a request carrying
``X-CloudTasks-TaskName`` is trusted: Cloud Tasks sets that header itself, and the dev function is
bound to 127.0.0.1.

``operation(policy)`` authenticates *before* flask-openapi3 validates the request (its
``validate_request`` runs inside), so a caller without credentials learns nothing about the
inputs: 401, never 400. One ``publish.audit`` line is written for every mutating call (any method
but GET), every read of personal data (``audit=True``: ``GET /events``, ``GET /conflicts``) and
every denied attempt: ``actor`` (a short sha256 of the caller's identity: the logs' allow-list
redacts e-mails, and the hash of an admin's address is easy to recompute; ``unauthenticated`` when
no identity was proven), ``action`` (the view's name), ``status`` (ok, denied, error), ``code`` (the
error's) and the answer's ``audit()`` counts. Metadata only, never the request's data.
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
from calsync.config import strong_secret
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
    """Dev only: ``given`` is the static admin token (the local one, or a strong one from Secret Manager)."""
    settings = container.settings
    if settings.environment != "dev":
        return False
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        expected = settings.admin_token.get_secret_value()
    else:
        try:
            expected = container.secrets.get(settings.secret_admin_token).get_secret_value()
        except errors.SecretUnavailable:
            return False
        if not strong_secret(expected):
            log.warning("publish.admin_token_refused", reason="weak_secret")
            return False
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _admin_audiences(container: Container) -> list[str]:
    settings = container.settings
    extra = settings.admin_id_token_audiences if settings.environment == "dev" else []
    return [settings.publish_url, *extra]


def identify(policy: Policy, request: flask.Request, container: Container, verifier: TokenVerifier) -> str:
    """Who the caller proved to be (an e-mail, ``admin-token``, ...); 401 without valid credentials."""
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
        return str(verifier.verify(given, settings.publish_url.rstrip("/") + TASK_ROUTE)["email"]).lower()
    return str(verifier.verify(given, _admin_audiences(container))["email"]).lower()


def authorize(policy: Policy, identity: str, container: Container) -> None:
    """403 unless ``identity`` may call an operation of ``policy``."""
    settings = container.settings
    if policy == "public" or identity in {"admin-token", "cloud-tasks-emulator"}:
        return
    if policy == "task":
        if identity != settings.invoker_of("publish").lower():
            raise errors.PermissionDenied("not the Cloud Tasks invoker")
        return
    if identity not in {e.lower() for e in settings.admin_emails}:
        raise errors.PermissionDenied("not an admin")


def authenticate(policy: Policy, request: flask.Request, container: Container, verifier: TokenVerifier) -> str:
    """The caller's identity; 401 without valid credentials, 403 if not allowed."""
    identity = identify(policy, request, container, verifier)
    authorize(policy, identity, container)
    return identity


def _audit(action: str, actor: str, status: str, **fields: Any) -> None:
    log.info("publish.audit", actor=actor, action=action, status=status, **fields)


def operation(policy: Policy = "admin", *, audit: bool = False) -> Callable[[View], Callable[..., flask.Response]]:
    """Decorate a view: authenticate, validate its annotated inputs, call it, audit, answer JSON.

    Every call but a GET is audited; ``audit=True`` audits a GET too (a read of personal data).
    Denied attempts are audited on every operation but the public ones.
    The view returns ``(answer, status)``; the answer is dumped without the keys it left unset.
    """

    def decorate(view: View) -> Callable[..., flask.Response]:
        validated = validate_request()(view)  # type: ignore[no-untyped-call]
        action = view.__name__

        @functools.wraps(view)
        def guarded(**kwargs: Any) -> flask.Response:
            container = get_container()
            verifier: TokenVerifier = flask.current_app.extensions[VERIFIER_KEY]
            audited = audit or flask.request.method != "GET"
            try:
                identity = identify(policy, flask.request, container, verifier)
            except errors.Unauthenticated as exc:
                _audit(action, "unauthenticated", "denied", code=exc.code)
                raise
            actor = actor_of(identity)
            try:
                authorize(policy, identity, container)
            except errors.PermissionDenied as exc:
                _audit(action, actor, "denied", code=exc.code)
                raise
            try:
                answer, status = validated(**kwargs)
            except errors.CalsyncError as exc:
                if audited:
                    _audit(action, actor, "error", code=exc.code)
                raise
            if audited:
                counts = answer.audit() if isinstance(answer, Result) else {}
                _audit(action, actor, "ok", http_status=status, **counts)
            return edge.json_response(answer.model_dump(mode="json", exclude_unset=True), status)

        return guarded

    return decorate
