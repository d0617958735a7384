"""Who may call the admin API, through the publish function under functions-framework's test client.

The static admin token is a dev convenience: stg/prod refuse it even when one is configured, and a
dev token read from Secret Manager must be strong. Outside dev only a Google ID token for the
publish URL with a verified e-mail in ``admin_emails`` is an admin. Google's signing certificates
are fetched once and reused while their ``Cache-Control`` allows. Every mutating call, every read
of personal data and every denied attempt leaves one audit line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from calsync import errors
from calsync.bootstrap import Container, set_container
from calsync.http.auth import actor_of
from tests.functions.function_world import ADMIN_TOKEN, client, fake_container
from tests.functions.id_token_world import CertsServer, id_token

PUBLISH_URL = "https://publish.example"
BOSS = "boss@x.test"
STRONG = "Zq3v-9Lk2_xW8rT1pYb7Nc4Hd6Jf0GsA"  # 32 characters, many distinct


class Secrets:
    """A Secret Manager stand-in holding one admin token."""

    def __init__(self, value: str | None) -> None:
        self.value = value

    def get(self, name: str) -> SecretStr:
        """The value, or ``SecretUnavailable``."""
        if self.value is None:
            raise errors.SecretUnavailable(name)
        return SecretStr(self.value)


@pytest.fixture
def container() -> Iterator[Container]:
    c = fake_container()
    set_container(c)
    yield c
    set_container(None)


def _as(container: Container, environment: str, **over: Any) -> None:
    """Run the container's function as ``environment`` (admins by ID token on the publish URL)."""
    update = {"environment": environment, "publish_url": PUBLISH_URL, "admin_emails": [BOSS], **over}
    container.settings = container.settings.model_copy(update=update)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("environment", ["stg", "prod"])
def test_static_admin_token_is_refused_outside_dev(container: Container, environment: str) -> None:
    api = client("publish")
    assert api.get("/health", headers=_bearer(ADMIN_TOKEN)).status_code == 200  # dev
    _as(container, environment)
    answer = api.get("/health", headers=_bearer(ADMIN_TOKEN))
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "unauthenticated"


def test_admin_token_from_secret_manager_is_refused_outside_dev(container: Container) -> None:
    container.settings = container.settings.model_copy(update={"admin_token": None})
    container.secrets = Secrets(STRONG)  # type: ignore[assignment]
    api = client("publish")
    assert api.get("/health", headers=_bearer(STRONG)).status_code == 200
    _as(container, "prod", admin_token=None)
    assert api.get("/health", headers=_bearer(STRONG)).status_code == 401


@pytest.mark.parametrize(
    "weak",
    ["changeme", "short-token-1234", "a" * 64, "abababababababababababababababab", "placeholder" + " " * 30],
)
def test_weak_dev_token_from_secret_manager_is_refused(container: Container, weak: str) -> None:
    container.settings = container.settings.model_copy(update={"admin_token": None})
    container.secrets = Secrets(weak)  # type: ignore[assignment]
    assert client("publish").get("/health", headers=_bearer(weak)).status_code == 401


@pytest.mark.parametrize("environment", ["dev", "stg", "prod"])
def test_id_token_admin_on_the_publish_url(container: Container, certs_server: CertsServer, environment: str) -> None:
    _as(container, environment)
    token = id_token(certs_server.signer, BOSS, PUBLISH_URL)
    assert client("publish").get("/health", headers=_bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("email", "audience", "claims", "status"),
    [
        (BOSS, "https://other.example", {}, 401),  # wrong audience
        (BOSS, "32555940559.apps.googleusercontent.com", {}, 401),  # gcloud's shared OAuth client
        (BOSS, PUBLISH_URL, {"email_verified": False}, 401),  # unverified e-mail
        (BOSS, PUBLISH_URL, {"iss": "https://evil.example"}, 401),  # not Google
        ("eve@x.test", PUBLISH_URL, {}, 403),  # not in admin_emails
    ],
)
@pytest.mark.parametrize("environment", ["stg", "prod"])
def test_id_tokens_refused(
    container: Container,
    certs_server: CertsServer,
    environment: str,
    email: str,
    audience: str,
    claims: dict[str, Any],
    status: int,
) -> None:
    _as(container, environment)
    token = id_token(certs_server.signer, email, audience, **claims)
    assert client("publish").get("/health", headers=_bearer(token)).status_code == status


def test_gcloud_audience_is_ignored_outside_dev_even_if_configured(
    container: Container, certs_server: CertsServer
) -> None:
    gcloud_client = "32555940559.apps.googleusercontent.com"
    _as(container, "prod", admin_id_token_audiences=[gcloud_client])
    token = id_token(certs_server.signer, BOSS, gcloud_client)
    assert client("publish").get("/health", headers=_bearer(token)).status_code == 401


def test_signing_certificates_are_fetched_once_for_many_requests(
    container: Container, certs_server: CertsServer
) -> None:
    _as(container, "prod")
    api = client("publish")
    for i in range(8):
        token = id_token(certs_server.signer, BOSS if i % 2 else "eve@x.test", PUBLISH_URL)
        assert api.get("/health", headers=_bearer(token)).status_code in (200, 403)
    assert len(certs_server.fetches) == 1


def test_audit_lines_for_mutations_personal_reads_and_denials(
    container: Container, certs_server: CertsServer, caplog: pytest.LogCaptureFixture
) -> None:
    _as(container, "prod")
    api = client("publish")
    boss = _bearer(id_token(certs_server.signer, BOSS, PUBLISH_URL))
    caplog.set_level("INFO")
    assert api.get("/events?calendar_id=c1", headers=boss).status_code == 404
    assert api.get("/conflicts", headers=boss).status_code == 200
    assert api.get("/health", headers=boss).status_code == 200  # no personal data: not audited
    rooms = {"items": [{"id": "r0", "name": "Sala"}]}
    assert api.put("/clinics/c1/rooms", json=rooms, headers=boss).status_code == 200
    assert api.get("/conflicts", headers=_bearer(ADMIN_TOKEN)).status_code == 401
    eve = _bearer(id_token(certs_server.signer, "eve@x.test", PUBLISH_URL))
    assert api.put("/clinics/c1/rooms", json=rooms, headers=eve).status_code == 403
    lines = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg["event"] == "publish.audit"]
    seen = [(line["action"], line["status"], line["actor"]) for line in lines]
    assert seen == [
        ("list_events", "error", actor_of(BOSS)),
        ("list_conflicts", "ok", actor_of(BOSS)),
        ("put_rooms", "ok", actor_of(BOSS)),
        ("list_conflicts", "denied", "unauthenticated"),
        ("put_rooms", "denied", actor_of("eve@x.test")),
    ]
    out = json.dumps(lines, default=str)
    assert BOSS not in out
    assert "Sala" not in out
    assert ADMIN_TOKEN not in out


def test_an_empty_local_token_falls_back_to_secret_manager(container: Container) -> None:
    """``CALSYNC_ADMIN_TOKEN=`` (as in .env.example) means "none here": the Secret Manager one is used."""
    container.settings = container.settings.model_copy(update={"admin_token": SecretStr("")})
    container.secrets = Secrets(STRONG)  # type: ignore[assignment]
    api = client("publish")
    assert api.get("/health", headers=_bearer(STRONG)).status_code == 200
    assert api.get("/health", headers=_bearer("")).status_code == 401
