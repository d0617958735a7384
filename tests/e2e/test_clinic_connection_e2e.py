"""A clinic without Workspace connects its own Google account, on the local stack.

Through the publish function (admin API and the public callback) under functions-framework, Google's
Firestore emulator and the Calendar emulator's consent screen: start → consent → callback → the
refresh token encrypted in Firestore → the clinic's calendars created and synced as that account, an
event with a guest and a Meet link written as it (what a service account without delegation cannot) →
the person revokes the grant → the next sync finds ``invalid_grant`` → ``needs_reauth`` in health,
with the reconnect call → reconnecting puts the calendars back to ``ok``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.cloud import firestore

from devstack import stack
from tests.e2e.system_clock import system_now
from tests.e2e.test_publish_tasks_e2e import HTTP_TIMEOUT_S, World, running_stack

CLINIC = "no-workspace"
ACCOUNT = "agenda.clinica@gmail.example"
ROOM_KEY = f"{CLINIC}-room-r1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A private stack for this module."""
    with running_stack(tmp_path_factory.mktemp("oauth-stack") / "state", CALSYNC_DEVSTACK_POLL_S="3600") as w:
        yield w


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def consent(world: World) -> requests.Response:
    """Start a connection as an admin, consent on the emulator, follow Google's redirect to the callback."""
    started = world.admin("POST", f"clinics/{CLINIC}/connection", params={"login_hint": ACCOUNT})
    assert started.status_code == 201, started.text
    url = started.json()["consent_url"]
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == [
        "https://www.googleapis.com/auth/calendar.app.created https://www.googleapis.com/auth/calendar.freebusy"
    ]
    assert query["code_challenge_method"] == ["S256"]
    assert query["access_type"] == ["offline"]
    screen = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert screen.status_code == 302, screen.text
    back = screen.headers["Location"]
    assert back.startswith(world.endpoints.functions["publish"] + "oauth/callback?")
    return requests.get(back, timeout=HTTP_TIMEOUT_S)  # the browser, with no admin credentials


def token_document(world: World) -> dict[str, Any]:
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = world.endpoints.firestore_host
    try:
        client = firestore.Client(project=world.endpoints.project)
        snapshot = client.collection("dev_oauth_tokens").document(CLINIC).get()
        return snapshot.to_dict() or {}
    finally:
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous


def emulator_stats(world: World) -> dict[str, Any]:
    answer = requests.get(f"{world.endpoints.calendar_control}stats", timeout=HTTP_TIMEOUT_S)
    return dict(answer.json())


def calendar_state(world: World, key: str) -> dict[str, Any]:
    answer = world.admin("GET", f"calendars/{key}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_connect_sync_as_the_account_revoke_and_reconnect(world: World) -> None:
    # The callback refuses a state it did not sign, before any token request.
    forged = requests.get(
        world.endpoints.functions["publish"] + "oauth/callback",
        params={"state": "eyJjIjoibm8td29ya3NwYWNlIn0.forged", "code": "4/x"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "oauth_connection_refused"

    connected = consent(world)
    assert connected.status_code == 200, connected.text
    assert connected.json() == {"clinic_id": CLINIC, "connected": True, "calendars_reauthorised": 0}

    stored = token_document(world)
    assert stored["ciphertext"].startswith("v1.")
    assert stored["key_id"]
    assert f"rt:{ACCOUNT}" not in str(stored), "the refresh token is stored encrypted only"
    assert emulator_stats(world)["token_grants"].get("authorization_code") == 1

    rooms = {"items": [{"id": "r1", "name": "Sala 1"}]}
    assert world.admin("PUT", f"clinics/{CLINIC}/rooms", json=rooms).status_code == 200
    provisioned = world.admin("POST", "provision", json={"clinic_id": CLINIC})
    assert provisioned.status_code == 200, provisioned.text
    google_id = calendar_state(world, ROOM_KEY)["google_calendar_id"]

    # The room's calendar belongs to the clinic's account: that account sees it, the service account does not.
    as_account = requests.get(
        f"{world.endpoints.calendar_api}calendars/{google_id}",
        headers={"X-Emulator-User": ACCOUNT},
        timeout=HTTP_TIMEOUT_S,
    )
    assert as_account.status_code == 200, as_account.text
    as_delegate = requests.get(
        f"{world.endpoints.calendar_api}calendars/{google_id}",
        headers={"X-Emulator-User": stack.CALENDAR_USER},
        timeout=HTTP_TIMEOUT_S,
    )
    assert as_delegate.status_code in (403, 404)

    # The initial sync (enqueued by the watch) ran in the sync function as the clinic's account.
    wait_for(lambda: calendar_state(world, ROOM_KEY).get("last_synced_at"), "the first sync of the room")
    assert emulator_stats(world)["token_grants"].get("refresh_token", 0) >= 1

    # An ad-hoc event with a guest and a Meet link, written through the publish function as the account.
    start = system_now(world.endpoints.functions["publish"], world.endpoints.admin_token) + timedelta(days=2)
    body = {
        "calendar_id": ROOM_KEY,
        "summary": "retorno",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "attendees": ["paciente@example.com"],
        "meet": True,
    }
    created = world.admin("POST", "events", json=body)
    assert created.status_code == 201, created.text
    event = requests.get(
        f"{world.endpoints.calendar_api}calendars/{google_id}/events/{created.json()['id']}",
        headers={"X-Emulator-User": ACCOUNT},
        timeout=HTTP_TIMEOUT_S,
    ).json()
    assert event["creator"]["email"] == ACCOUNT
    assert [a["email"] for a in event["attendees"]] == ["paciente@example.com"]
    assert event.get("hangoutLink")

    # The person removes calsync's access in their Google account.
    revoked = requests.post(
        f"{world.endpoints.calendar_control}revoke", json={"refresh_token": _refresh_token_of(world)}, timeout=30
    )
    assert revoked.status_code == 200, revoked.text
    assert world.admin("POST", "sync", json={"calendar_id": ROOM_KEY}).status_code == 202
    wait_for(lambda: calendar_state(world, ROOM_KEY)["status"] == "needs_reauth", "needs_reauth after revocation")

    health = world.admin("GET", "health")
    assert health.status_code == 200, health.text
    row = next(r for r in health.json()["calendars"] if r["key"] == ROOM_KEY)
    assert row["status"] == "failing"
    assert row["sync_status"] == "needs_reauth"
    assert row["reconnect"] == f"POST /clinics/{CLINIC}/connection"

    again = consent(world)
    assert again.status_code == 200, again.text
    assert again.json()["calendars_reauthorised"] == 1
    assert calendar_state(world, ROOM_KEY)["status"] == "ok"
    assert token_document(world)["ciphertext"] != stored["ciphertext"]


def _refresh_token_of(world: World) -> str:
    """The refresh token the emulator issued to the account (the person's side of the grant)."""
    answer = requests.get(f"{world.endpoints.calendar_control}grants", timeout=HTTP_TIMEOUT_S)
    assert answer.status_code == 200, answer.text
    tokens = [t for t in answer.json()["refresh_tokens"] if t.startswith(f"rt:{ACCOUNT}:")]
    assert tokens
    return str(tokens[-1])
