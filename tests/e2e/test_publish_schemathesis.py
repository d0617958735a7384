"""schemathesis against ``docs/openapi.json`` on the running publish function: no request ends in a 5xx.

A private local stack (``python -m devstack up`` with its own state dir and free ports) serves the
publish function under functions-framework with the Firestore, Calendar and Cloud Tasks emulators.
The test seeds a clinic (directory, provisioned calendars, allocations, a plan, an ad-hoc event) and
hands its ids to schemathesis as dictionaries, so about half of the generated requests name real
resources and reach the services instead of stopping at 404. schemathesis runs as its CLI (the
supported interface) against the committed document, with a bounded number of examples per operation;
the test then reads every exchanged request from the HAR report and asserts that none was answered
5xx. A second run without credentials checks that the admin routes answer 401, never 5xx.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devstack import procs, stack
from tests.e2e.system_clock import system_now

HTTP_TIMEOUT_S = 30.0
OPENAPI = procs.ROOT / "docs" / "openapi.json"
CLINIC = "st-clinic"
PROVISION_WAIT_S = 60.0
# Bounded so the module (stack start + both runs) stays well under 90 s on 2 cores.
EXAMPLES_WITH_AUTH = 6
EXAMPLES_WITHOUT_AUTH = 5
SEED = 20261122


def devstack(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m devstack ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=procs.ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@dataclass(frozen=True)
class Seeded:
    """The running stack and the ids of what the test put in it."""

    endpoints: stack.Endpoints
    base_url: str
    ids: dict[str, list[str]]


def _admin(endpoints: stack.Endpoints, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {endpoints.admin_token}"}
    url = f"{endpoints.functions['publish']}{path}"
    return requests.request(method, url, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs)


def _seed(endpoints: stack.Endpoints) -> dict[str, list[str]]:
    """A clinic with 2 professionals and 1 room, provisioned, 4 allocations, a plan and an ad-hoc event."""
    professionals = [{"id": f"p{i}", "name": f"Dr {i}", "email": f"p{i}@clinic.example"} for i in range(2)]
    done = _admin(endpoints, "PUT", f"clinics/{CLINIC}/professionals", json={"items": professionals})
    assert done.status_code == 200, done.text
    done = _admin(endpoints, "PUT", f"clinics/{CLINIC}/rooms", json={"items": [{"id": "r0", "name": "Sala 0"}]})
    assert done.status_code == 200, done.text
    provisioned = _admin(endpoints, "POST", "provision", json={"clinic_id": CLINIC})
    assert provisioned.status_code == 200, provisioned.text
    deadline = time.monotonic() + PROVISION_WAIT_S  # the calendars are created by paced tasks
    while not _admin(endpoints, "GET", f"provision/{CLINIC}").json()["done"]:
        assert time.monotonic() < deadline, "provisioning did not finish"
        time.sleep(0.5)
    start = (system_now(endpoints.functions["publish"], endpoints.admin_token) + timedelta(days=2)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    allocations = [
        {
            "id": f"st-a{i}",
            "clinic_id": CLINIC,
            "professional_id": f"p{i % 2}",
            "room_id": "r0",
            "start": (start + timedelta(hours=i)).isoformat(),
            "end": (start + timedelta(hours=i, minutes=50)).isoformat(),
            "status": "reviewed",
            "title": f"consulta {i}",
            "attendees": [],
            "revision": 1,
        }
        for i in range(4)
    ]
    done = _admin(endpoints, "PUT", "allocations", json={"items": allocations})
    assert done.status_code == 200, done.text
    window = {"clinic_id": CLINIC, "from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()}
    planned = _admin(endpoints, "POST", "publish/plan", json=window)
    assert planned.status_code == 201, planned.text
    plan = planned.json()
    calendar = f"{CLINIC}-prof-p0"
    event = {
        "calendar_id": calendar,
        "summary": "ad-hoc",
        "start": (start + timedelta(days=1)).isoformat(),
        "end": (start + timedelta(days=1, hours=1)).isoformat(),
    }
    created = _admin(endpoints, "POST", "events", json=event)
    assert created.status_code == 201, created.text
    return {
        "clinics": [CLINIC],
        "calendars": [calendar, f"{CLINIC}-prof-p1", f"{CLINIC}-room-r0", "control"],
        "professionals": ["p0", "p1"],
        "rooms": ["r0"],
        "allocations": [str(a["id"]) for a in allocations],
        "plans": [plan["plan_id"]],
        "tokens": [plan["confirm_token"]],
        "events": [created.json()["id"]],
    }


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A private stack with a seeded clinic; always stopped by ``devstack down``."""
    state = tmp_path_factory.mktemp("schemathesis-stack") / "state"
    env = {
        **os.environ,
        "CALSYNC_DEVSTACK_DIR": str(state),
        "CALSYNC_DEVSTACK_BASE_PORT": "0",
        "CALSYNC_DEVSTACK_POLL_S": "60",
    }
    try:
        started = devstack(env, "up")
        assert started.returncode == 0, started.stdout + started.stderr
        endpoints = stack.Endpoints.model_validate_json((state / "endpoints.json").read_text())
        yield Seeded(endpoints, endpoints.functions["publish"].rstrip("/"), _seed(endpoints))
    finally:
        stopped = devstack(env, "down")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def _config(ids: Mapping[str, list[str]]) -> str:
    """schemathesis.toml: real ids offered half of the time for every id-like parameter."""
    bindings = {
        "path.clinic_id": "clinics",
        "path.key": "calendars",
        "path.plan_id": "plans",
        "path.event_id": "events",
        "query.calendar_id": "calendars",
        "body.clinic_id": "clinics",
        "body.calendar_id": "calendars",
        "body.calendar_key": "calendars",
        "body.plan_id": "plans",
        "body.confirm": "tokens",
        "body.event_id": "events",
        "body.items[*].clinic_id": "clinics",
        "body.items[*].professional_id": "professionals",
        "body.items[*].room_id": "rooms",
        "body.items[*].id": "allocations",
    }
    lines = ["[dictionaries]"]
    lines += [f"{name} = {{ values = {json.dumps(values)} }}" for name, values in ids.items()]
    lines += ["", "[parameters]"]
    lines += [f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}' for key, name in bindings.items()]
    return "\n".join(lines) + "\n"


def _schemathesis(
    base_url: str,
    workdir: Path,
    *,
    examples: int,
    token: str | None,
    config: str | None,
    phases: str = "examples,coverage,fuzzing,stateful",
) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, str, int]]]:
    """Run ``st run`` on docs/openapi.json; answers the process and (method, path, status) of every call."""
    workdir.mkdir(parents=True, exist_ok=True)
    har = workdir / "calls.har"
    argv = [str(Path(sys.executable).with_name("st"))]
    if config is not None:
        (workdir / "schemathesis.toml").write_text(config)
        argv += ["--config-file", str(workdir / "schemathesis.toml")]
    argv += ["run", str(OPENAPI), "--url", base_url, "--checks", "not_a_server_error"]
    argv += ["--max-examples", str(examples), "--seed", str(SEED), "--workers", "2", "--no-color"]
    argv += ["--phases", phases]
    argv += ["--request-timeout", str(HTTP_TIMEOUT_S), "--generation-database", "none"]
    argv += ["--report", "har", "--report-har-path", str(har)]
    if token is not None:
        argv += ["--header", f"Authorization: Bearer {token}"]
    result = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=240, check=False)
    assert har.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    calls = [
        (e["request"]["method"], urlsplit(e["request"]["url"]).path, int(e["response"]["status"])) for e in entries
    ]
    return result, calls


def test_no_request_is_answered_with_a_server_error(seeded: Seeded, tmp_path: Path) -> None:
    result, calls = _schemathesis(
        seeded.base_url,
        tmp_path,
        examples=EXAMPLES_WITH_AUTH,
        token=seeded.endpoints.admin_token,
        config=_config(seeded.ids),
    )

    server_errors = [call for call in calls if call[2] >= 500]
    assert server_errors == [], server_errors[:20]
    assert result.returncode == 0, result.stdout[-6000:]
    statuses = Counter(status for _, _, status in calls)
    print("schemathesis with the admin token:", len(calls), "calls", dict(sorted(statuses.items())))
    assert len(calls) >= 200, statuses
    # The seeded ids made requests reach the services: successes on reads and writes alike.
    succeeded = {(method, path) for method, path, status in calls if 200 <= status < 300}
    assert ("GET", f"/publish/{seeded.ids['plans'][0]}") in succeeded
    assert any(method == "PUT" and path.startswith("/clinics/") for method, path in succeeded), succeeded
    assert ("GET", "/health") in succeeded


def test_without_credentials_admin_routes_answer_401_never_5xx(seeded: Seeded, tmp_path: Path) -> None:
    # Fuzzing alone: the coverage phase's thousand boundary cases add nothing when all stop at auth.
    result, calls = _schemathesis(
        seeded.base_url,
        tmp_path,
        examples=EXAMPLES_WITHOUT_AUTH,
        token=None,
        config=_config(seeded.ids),
        phases="fuzzing",
    )

    assert [call for call in calls if call[2] >= 500] == []
    assert result.returncode == 0, result.stdout[-6000:]
    admin_calls = [call for call in calls if call[1] != "/openapi.json"]
    assert admin_calls
    # Routing comes before auth: 404 for a path matching no route (an empty path parameter), 405 for
    # the methods schemathesis tries that a route does not serve.
    assert {status for _, _, status in admin_calls} <= {401, 404, 405}, Counter(status for _, _, status in admin_calls)
    assert 401 in {status for _, _, status in admin_calls}
