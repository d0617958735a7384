"""The publish routes in-process on fakes: directory → provision → allocations → plan → apply → tasks,
events with Meet, conflicts, health, auth (admin token, Google ID tokens) and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from calsync.bootstrap import Container, set_container
from calsync.http.app import create_app
from calsync.http.auth import actor_of
from calsync.model import MirrorEvent
from tests.functions.function_world import ADMIN_TOKEN, ROOT, client, fake_container
from tests.functions.id_token_world import CertsServer, id_token

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CONTROL = "control@group.calendar.google.com"


@pytest.fixture
def container() -> Iterator[Container]:
    c = fake_container()
    c.calendar_api.add_calendar(CONTROL)  # type: ignore[attr-defined]
    set_container(c)
    yield c
    set_container(None)


@pytest.fixture
def api(container: Container) -> Any:
    return client("publish")


def _clinic(api: Any) -> None:
    profs = {"items": [{"id": f"p{i}", "name": f"P{i}", "email": f"p{i}@x.test"} for i in range(2)]}
    assert api.put("/clinics/c1/professionals", json=profs, headers=AUTH).status_code == 200
    rooms = {"items": [{"id": "r0", "name": "Sala"}]}
    assert api.put("/clinics/c1/rooms", json=rooms, headers=AUTH).status_code == 200


def _alloc(container: Container, n: int, hours: float = 24, **kw: Any) -> dict[str, Any]:
    start = container.clock.now() + timedelta(hours=hours)
    return {
        "id": f"a{n}",
        "clinic_id": "c1",
        "professional_id": f"p{n % 2}",
        "room_id": "r0",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "status": "reviewed",
        "title": f"consulta {n}",
        "attendees": [],
        "revision": 1,
        **kw,
    }


def _run_tasks(api: Any, container: Container) -> None:
    queue = container.queue
    for task in queue.pop_all():  # type: ignore[attr-defined]
        for route in ("/publish/tasks/apply", "/provision/tasks/calendar"):
            if task.url.endswith(route):
                assert api.post(route, json=task.payload, headers=AUTH).status_code == 200


def _provision(api: Any, container: Container) -> dict[str, Any]:
    """``POST /provision``, then its tasks delivered (Cloud Tasks); the status after them."""
    started = api.post("/provision", json={"clinic_id": "c1"}, headers=AUTH)
    assert started.status_code == 200, started.get_json()
    _run_tasks(api, container)
    status: dict[str, Any] = api.get("/provision/c1", headers=AUTH).get_json()
    return started.get_json() | {"after": status}


def test_publish_flow(api: Any, container: Container) -> None:
    _clinic(api)
    first = _provision(api, container)
    assert (first["total"], first["scheduled"], first["done"]) == (3, 3, False)  # one paced task per calendar
    assert (first["after"]["created"], first["after"]["watched"], first["after"]["done"]) == (3, 3, True)
    again = _provision(api, container)
    assert (again["scheduled"], again["done"]) == (0, True)  # running it again is harmless

    bad = [_alloc(container, 1), _alloc(container, 2, professional_id="nobody"), {**_alloc(container, 3), "end": "x"}]
    rejected = api.put("/allocations", json={"items": bad}, headers=AUTH)
    assert rejected.status_code == 422
    assert [e["index"] for e in rejected.get_json()["error"]["details"]["errors"]] == [2]
    rejected = api.put("/allocations", json={"items": bad[:2]}, headers=AUTH)
    assert [e["index"] for e in rejected.get_json()["error"]["details"]["errors"]] == [1]
    assert container.store.get_allocations(["a1"]) == {}  # type: ignore[attr-defined]  # nothing written

    items = [_alloc(container, i, hours=24 + i) for i in range(6)] + [_alloc(container, 9, hours=-3)]
    assert api.put("/allocations", json={"items": items}, headers=AUTH).get_json()["upserted"] == 7
    now = container.clock.now()
    window = {
        "clinic_id": "c1",
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=7)).isoformat(),
    }
    plan = api.post("/publish/plan", json=window, headers=AUTH)
    assert plan.status_code == 201
    body = plan.get_json()
    assert body["totals"] == {"create": 18, "update": 0, "delete": 0, "skip": 3}
    assert (
        api.post("/publish/apply", json={"plan_id": body["plan_id"], "confirm": "nope"}, headers=AUTH).status_code
        == 400
    )
    started = api.post(
        "/publish/apply", json={"plan_id": body["plan_id"], "confirm": body["confirm_token"]}, headers=AUTH
    )
    assert started.status_code == 202
    _run_tasks(api, container)
    progress = api.get(f"/publish/{body['plan_id']}", headers=AUTH).get_json()
    assert (progress["status"], progress["done"], progress["total"]) == ("done", 18, 18)

    # clear_future without the second confirmation: 400 and nothing deleted
    api.put("/allocations", json={"items": [_alloc(container, 0, hours=24, status="draft", revision=2)]}, headers=AUTH)
    clear = api.post("/publish/plan", json={**window, "clear_future": True}, headers=AUTH).get_json()
    assert clear["totals"]["delete"] == 3
    refused = api.post(
        "/publish/apply", json={"plan_id": clear["plan_id"], "confirm": clear["confirm_token"]}, headers=AUTH
    )
    assert refused.status_code == 400
    assert container.calendar_api.calls["delete_event"] == 0  # type: ignore[attr-defined]
    ok = api.post(
        "/publish/apply",
        json={
            "plan_id": clear["plan_id"],
            "confirm": clear["confirm_token"],
            "confirm_clear_future": clear["confirm_clear_future_token"],
        },
        headers=AUTH,
    )
    assert ok.status_code == 202
    _run_tasks(api, container)
    assert container.calendar_api.calls["delete_event"] == 3  # type: ignore[attr-defined]

    health = api.get("/health", headers=AUTH).get_json()
    assert health["status"] == "degraded"  # never synced yet
    assert {c["key"] for c in health["calendars"]} == {"control", "c1-prof-p0", "c1-prof-p1", "c1-room-r0"}


def test_events_api_meet_and_ownership(api: Any, container: Container) -> None:
    _clinic(api)
    _provision(api, container)
    start = container.clock.now() + timedelta(days=1)
    created = api.post(
        "/events",
        json={
            "calendar_id": "c1-prof-p0",
            "summary": "call",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "meet": True,
            "request_id": "r-1",
        },
        headers=AUTH,
    )
    assert created.status_code == 201
    event = created.get_json()
    again = api.post(
        "/events",
        json={
            "calendar_id": "c1-prof-p0",
            "summary": "call",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "meet": True,
            "request_id": "r-1",
        },
        headers=AUTH,
    )
    assert again.get_json()["id"] == event["id"]  # a retried request creates nothing new
    listed = api.get("/events?calendar_id=c1-prof-p0", headers=AUTH).get_json()["items"]
    assert [e["id"] for e in listed] == [event["id"]]
    patched = api.patch(
        f"/events/{event['id']}?calendar_id=c1-prof-p0",
        json={"summary": "call 2"},
        headers={**AUTH, "If-Match": event["etag"]},
    )
    assert patched.status_code == 200
    stale = api.patch(
        f"/events/{event['id']}?calendar_id=c1-prof-p0",
        json={"summary": "call 3"},
        headers={**AUTH, "If-Match": event["etag"]},
    )
    assert stale.status_code == 412
    container.store.put_events(
        [
            MirrorEvent(
                calendar_key="c1-prof-p0",
                external_id="manual1",  # type: ignore[attr-defined]
                google_calendar_id="g",
                origin="manual",
            )
        ]
    )
    assert api.delete("/events/manual1?calendar_id=c1-prof-p0", headers=AUTH).status_code == 403
    assert api.delete(f"/events/{event['id']}?calendar_id=c1-prof-p0", headers=AUTH).status_code == 200


def test_openapi_is_served_and_committed(api: Any) -> None:
    served = api.get("/openapi.json").get_json()
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert served == committed, "run scripts/openapi.py"
    assert "/publish/plan" in served["paths"]


# --- Google ID tokens, verified against certificates served on 127.0.0.1 --------------------------


def test_google_id_tokens(container: Container, certs_server: CertsServer) -> None:
    settings = container.settings.model_copy(
        update={"publish_url": "https://publish.example", "admin_emails": ["boss@x.test"]}
    )
    container.settings = settings
    api = client("publish")
    ok = api.get(
        "/health",
        headers={"Authorization": f"Bearer {id_token(certs_server.signer, 'boss@x.test', settings.publish_url)}"},
    )
    assert ok.status_code == 200
    other = api.get(
        "/health",
        headers={"Authorization": f"Bearer {id_token(certs_server.signer, 'eve@x.test', settings.publish_url)}"},
    )
    assert other.status_code == 403
    wrong_aud = api.get(
        "/health", headers={"Authorization": f"Bearer {id_token(certs_server.signer, 'boss@x.test', 'https://x')}"}
    )
    assert wrong_aud.status_code == 401
    assert api.get("/health", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    assert api.get("/health").status_code == 401


def test_the_publish_task_route_accepts_only_the_publish_invoker(
    container: Container, certs_server: CertsServer
) -> None:
    """One invoker per target: the account Cloud Tasks calls sync as may not run a publish chunk."""
    settings = container.settings.model_copy(
        update={
            "publish_url": "https://publish.example",
            "tasks_invoker_service_account": "",
            "tasks_invokers": {"sync": "sync-inv@p.iam.test", "publish": "publish-inv@p.iam.test"},
        }
    )
    container.settings = settings
    api = client("publish")
    audience = settings.publish_url + "/publish/tasks/apply"

    def call(email: str) -> int:
        token = id_token(certs_server.signer, email, audience)
        answer = api.post("/publish/tasks/apply", json={}, headers={"Authorization": f"Bearer {token}"})
        return int(answer.status_code)

    assert call("sync-inv@p.iam.test") == 403
    assert call("publish-inv@p.iam.test") == 400  # past authorisation: the empty body is refused


def test_extra_admin_audiences(container: Container, certs_server: CertsServer) -> None:
    """A person's gcloud ID token is addressed to gcloud's client id: accepted only when configured."""
    gcloud_client = "32555940559.apps.googleusercontent.com"
    settings = container.settings.model_copy(
        update={"publish_url": "https://publish.example", "admin_emails": ["boss@x.test"]}
    )
    container.settings = settings
    api = client("publish")
    token = id_token(certs_server.signer, "boss@x.test", gcloud_client)
    assert api.get("/health", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    container.settings = settings.model_copy(update={"admin_id_token_audiences": [gcloud_client]})
    assert api.get("/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# Requests schemathesis answered 503 on the Firestore store (ids that cannot name a document: "/",
# "__x__", empty); on the fakes they were 200/404. They must be refused up front with the error shape.
UNSTORABLE_ID_REQUESTS = [
    ("GET", "/calendars/__main__", None),
    ("POST", "/calendars/__main__/watch", None),
    ("DELETE", "/events/__main__?calendar_id=00", None),
    ("PATCH", "/events/e1?calendar_id=a/b", {"summary": "x"}),
    ("GET", "/conflicts?calendar_id=", None),
    ("GET", "/events?calendar_id=", None),
    ("GET", "/events?calendar_id=c1&page_token=__x__", None),
    ("GET", "/publish/__main__", None),
    ("POST", "/publish/apply", {"plan_id": "\u00a1/\u00ae"}),
    ("POST", "/sync", {"calendar_id": "B/A"}),
    ("POST", "/sync", {"calendar_id": "c1", "event_id": ".."}),
    ("POST", "/publish/plan", {"clinic_id": "__c__", "from": "2030-01-01T00:00:00Z", "to": "2030-01-02T00:00:00Z"}),
    ("PUT", "/clinics/c1/rooms", {"items": [{"id": "R/S", "name": "Sala"}]}),
    ("PUT", "/clinics/c1/professionals", {"items": [{"id": "__p__", "name": "P", "email": "p@x.test"}]}),
    ("POST", "/calendars", {"key": "..", "google_calendar_id": "g", "kind": "room"}),
]


@pytest.mark.parametrize(("method", "path", "body"), UNSTORABLE_ID_REQUESTS)
def test_ids_that_cannot_be_stored_are_refused_with_400(
    api: Any, container: Container, method: str, path: str, body: dict[str, Any] | None
) -> None:
    answer = api.open(path, method=method, json=body, headers=AUTH)

    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["code"] == "invalid_request"
    assert container.store.list_rooms("c1") == []  # type: ignore[attr-defined]  # nothing written
    assert container.store.list_professionals("c1") == []  # type: ignore[attr-defined]


def test_an_allocation_with_an_unstorable_id_is_a_per_item_error(api: Any, container: Container) -> None:
    _clinic(api)
    items = [_alloc(container, 1), {**_alloc(container, 2), "id": "a/2"}]

    answer = api.put("/allocations", json={"items": items}, headers=AUTH)

    assert answer.status_code == 422
    errors = answer.get_json()["error"]["details"]["errors"]
    assert [(e["index"], e["errors"]) for e in errors] == [(1, ["invalid id"])]
    assert container.store.get_allocations(["a1"]) == {}  # type: ignore[attr-defined]


# Times near datetime.min/max overflowed the Firestore store's window arithmetic into a 500.
OUT_OF_RANGE_TIME_REQUESTS = [
    ("GET", "/events?calendar_id=c1-prof-p0&time_min=0001-01-01T00:00:00Z", None),
    ("GET", "/events?calendar_id=c1-prof-p0&time_max=9999-12-31T23:59:59Z", None),
    ("POST", "/publish/plan", {"clinic_id": "c1", "from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"}),
    ("POST", "/publish/plan", {"clinic_id": "c1", "from": "9999-12-30T00:00:00Z", "to": "9999-12-31T00:00:00Z"}),
    (
        "POST",
        "/events",
        {"calendar_id": "c1-prof-p0", "summary": "x", "start": "9999-12-31T22:00Z", "end": "9999-12-31T23:00Z"},
    ),
    ("PATCH", "/events/e1?calendar_id=c1-prof-p0", {"start": "0001-01-01T00:00:00Z"}),
]


@pytest.mark.parametrize(("method", "path", "body"), OUT_OF_RANGE_TIME_REQUESTS)
def test_times_out_of_range_are_refused_with_400(
    api: Any, container: Container, method: str, path: str, body: dict[str, Any] | None
) -> None:
    _clinic(api)
    assert api.post("/provision", json={"clinic_id": "c1"}, headers=AUTH).status_code == 200

    answer = api.open(path, method=method, json=body, headers=AUTH)

    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["details"]["fields"]


def test_an_allocation_out_of_range_is_a_per_item_error(api: Any, container: Container) -> None:
    _clinic(api)
    item = {**_alloc(container, 1), "start": "9999-12-31T22:00:00Z", "end": "9999-12-31T23:00:00Z"}

    answer = api.put("/allocations", json={"items": [item]}, headers=AUTH)

    assert answer.status_code == 422
    errors = answer.get_json()["error"]["details"]["errors"]
    assert [(e["index"], e["errors"]) for e in errors] == [(0, ["invalid end", "invalid start"])]


# --- CORS for agendador's browser frontend ---------------------------------------------------------

FRONTEND = "https://agendador.example"


def test_cors_is_refused_by_default(api: Any) -> None:
    answer = api.get("/health", headers={**AUTH, "Origin": FRONTEND})

    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_cors_allows_the_configured_origins_only(container: Container) -> None:
    container.settings = container.settings.model_copy(update={"cors_origins": [FRONTEND]})
    api = client("publish")

    preflight = api.options(
        "/events/e1",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, if-match, content-type",
        },
    )
    allowed = api.get("/health", headers={**AUTH, "Origin": FRONTEND})
    refused = api.get("/health", headers={**AUTH, "Origin": "https://evil.example"})
    error = api.get("/health", headers={"Origin": FRONTEND})

    assert preflight.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "if-match" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert allowed.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert (error.status_code, error.headers["Access-Control-Allow-Origin"]) == (401, FRONTEND)


def test_a_mutating_call_writes_one_audit_line_from_the_answer_fields(
    api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO"):
        _clinic(api)

    lines = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    audits = [line for line in lines if line["event"] == "publish.audit"]

    assert [(a["action"], a["count"]) for a in audits] == [("put_professionals", 2), ("put_rooms", 1)]
    assert {a["actor"] for a in audits} == {actor_of("admin-token")}
    assert not any("x.test" in json.dumps(line, default=str) for line in lines)  # no e-mail reaches the logs


class StubVerifier:
    """A token-verifier port that trusts any token as the e-mail it names."""

    def verify(self, token: str, audience: str | Sequence[str]) -> Mapping[str, Any]:
        return {"email": token.removeprefix("id-token-of:")}


def test_auth_goes_through_the_token_verifier_port(container: Container) -> None:
    container.settings = container.settings.model_copy(update={"admin_emails": ["boss@x.test"]})
    api = create_app(verifier=StubVerifier()).test_client()

    ok = api.get("/health", headers={"Authorization": "Bearer id-token-of:boss@x.test"})
    other = api.get("/health", headers={"Authorization": "Bearer id-token-of:eve@x.test"})

    assert (ok.status_code, other.status_code) == (200, 403)
    assert other.get_json()["error"]["code"] == "permission_denied"
