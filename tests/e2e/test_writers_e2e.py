"""The writer pool under the Calendar emulator's usage limits, end to end on a private local stack.

The stack runs with its local limits on (25 calendars, 1,000 events, 50 shares, 100 external guests per
account and minute; 30 s read-only after a breach) and two writers. Through the admin API only:

- a clinic of 32 calendars (more than one account may create in a window) is provisioned: paced tasks
  spread it over both writers, and the emulator refuses nothing;
- its week is published, patients invited: nothing refused, every event exactly once;
- a lockout is provoked in the middle of a second publish (the emulator's event limit is dropped to
  0 until it has refused a write, then put back): the plan shows the writer it waits for, the publish
  finishes after the lockout, nothing is duplicated, and the locked accounts see only a handful of
  writes after the first refusal (the batch under way and one probe each).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from calsync.services.plan import CONTROL_KEY, event_id, professional_key, room_key
from devstack import stack
from tests.e2e.system_clock import system_now
from tests.e2e.test_publish_tasks_e2e import ENV, World, running_stack

CLINIC = "pool-clinic"
PROFESSIONALS = [f"p{i:02d}" for i in range(20)]
ROOMS = [f"r{i:02d}" for i in range(12)]
WAIT_S = 240.0
HTTP_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A private stack with the local usage limits on."""
    state = tmp_path_factory.mktemp("writers-stack") / "state"
    with running_stack(state, CALSYNC_DEVSTACK_POLL_S="60", CALSYNC_DEVSTACK_USAGE_LIMITS="local") as w:
        yield w


def emulator(world: World, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """The Calendar emulator's control API."""
    answer = requests.request(method, f"{world.endpoints.calendar_control}{path}", json=body, timeout=HTTP_TIMEOUT_S)
    answer.raise_for_status()
    out: dict[str, Any] = answer.json()
    return out


def wait_until(what: str, check: Any, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f} s"
        time.sleep(0.3)


def allocations(start: datetime, prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` reviewed half-hour allocations over five days, each with one patient (an external guest)."""
    out = []
    for i in range(count):
        begins = start + timedelta(days=i % 5, hours=i // 5 % 8, minutes=30 * (i // 40 % 2))
        out.append(
            {
                "id": f"{prefix}-{i:03d}",
                "clinic_id": CLINIC,
                "professional_id": PROFESSIONALS[i % len(PROFESSIONALS)],
                "room_id": ROOMS[i % len(ROOMS)],
                "start": begins.isoformat(),
                "end": (begins + timedelta(minutes=25)).isoformat(),
                "status": "reviewed",
                "title": f"consulta {i}",
                "attendees": [f"patient-{prefix}-{i}@patients.example"],
                "revision": 1,
            }
        )
    return out


def publish(world: World, items: list[dict[str, Any]], start: datetime) -> dict[str, Any]:
    """Load, plan and apply one window; the apply's first answer."""
    loaded = world.admin("PUT", "allocations", json={"items": items})
    assert loaded.status_code == 200, loaded.text
    window = {"clinic_id": CLINIC, "from": start.isoformat(), "to": (start + timedelta(days=6)).isoformat()}
    plan = world.admin("POST", "publish/plan", json=window)
    assert plan.status_code == 201, plan.text
    body = {"plan_id": plan.json()["plan_id"], "confirm": plan.json()["confirm_token"]}
    applied = world.admin("POST", "publish/apply", json=body)
    assert applied.status_code == 202, applied.text
    answer: dict[str, Any] = applied.json()
    return answer


def progress(world: World, plan_id: str) -> dict[str, Any]:
    answer = world.admin("GET", f"publish/{plan_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def assert_each_event_once(world: World, items: list[dict[str, Any]]) -> None:
    expected: dict[str, set[str]] = {}
    for a in items:
        for key in (professional_key(CLINIC, a["professional_id"]), room_key(CLINIC, a["room_id"]), CONTROL_KEY):
            expected.setdefault(key, set()).add(event_id(ENV, a["id"], key))
    for key, wanted in expected.items():
        live = [e["id"] for e in world.google_events(key) if e.get("status") != "cancelled"]
        assert len(live) == len(set(live)), key  # no duplicate
        assert wanted <= set(live), key


def test_provision_and_publish_under_the_limits_then_wait_out_a_lockout(world: World) -> None:
    writers = world.endpoints.writers
    assert len(writers) >= 2
    assert world.endpoints.usage_limits == stack.LOCAL_USAGE_LIMITS
    professionals = [{"id": p, "name": f"Dr {p}", "email": f"{p}@clinic.example"} for p in PROFESSIONALS]
    rooms = [{"id": r, "name": f"Sala {r}"} for r in ROOMS]
    assert world.admin("PUT", f"clinics/{CLINIC}/professionals", json={"items": professionals}).status_code == 200
    assert world.admin("PUT", f"clinics/{CLINIC}/rooms", json={"items": rooms}).status_code == 200

    # Provisioning more calendars than one account may create in a window: paced, spread, never refused.
    started = world.admin("POST", "provision", json={"clinic_id": CLINIC})
    assert started.status_code == 200, started.text
    total = len(PROFESSIONALS) + len(ROOMS)
    assert total > int(stack.LOCAL_USAGE_LIMITS["calendars_created"] or 0)
    assert (started.json()["total"], started.json()["scheduled"]) == (total, total)
    again = world.admin("POST", "provision", json={"clinic_id": CLINIC}).json()
    assert again["scheduled"] == 0  # running it again schedules nothing new
    began = time.monotonic()
    done = wait_until("provisioning", lambda: (b := world.wait_provisioned(CLINIC))["done"] and b)
    provision_s = time.monotonic() - began
    stats = emulator(world, "GET", "stats")
    assert stats["usage_limit_rejections"] == 0
    made = {w: stats["usage"].get(w, {}).get("calendars_created", 0) for w in writers}
    print(f"\nprovisioned {done['created']} calendars in {provision_s:.1f} s, per writer {made}")
    assert all(n > 0 for n in made.values())  # both writers took calendars

    # That clinic's week, patients invited: nothing refused, every event once.
    now = system_now(world.endpoints.functions["publish"], world.endpoints.admin_token)
    week = (now + timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)
    first = allocations(week, "w1", 100)
    began = time.monotonic()
    applied = publish(world, first, week)
    final = wait_until(
        "the first publish", lambda: (p := progress(world, applied["plan_id"]))["status"] == "done" and p
    )
    print(f"published {final['done']} writes in {time.monotonic() - began:.1f} s")
    assert emulator(world, "GET", "stats")["usage_limit_rejections"] == 0
    assert_each_event_once(world, first)

    # A lockout provoked in the middle of the next week's publish.
    later = week + timedelta(days=7)
    second = allocations(later, "w2", 100)
    applied = publish(world, second, later)
    wait_until("some writes of the second publish", lambda: progress(world, applied["plan_id"])["done"] > 0)
    emulator(world, "POST", "usage-limits", {"events_created": 0})
    try:
        wait_until("a refused write", lambda: emulator(world, "GET", "stats")["usage_limit_rejections"] > 0, 60)
    finally:
        emulator(world, "POST", "usage-limits", {"events_created": stack.LOCAL_USAGE_LIMITS["events_created"]})
    refused_at_lock = emulator(world, "GET", "stats")["usage_limit_rejections"]
    waiting = wait_until(
        "the plan to show the writer it waits for", lambda: progress(world, applied["plan_id"])["waiting"], 60
    )
    assert set(waiting) <= set(writers)
    locked = emulator(world, "GET", "stats")["usage"]
    assert any(locked.get(w, {}).get("locked_until") for w in waiting)
    final = wait_until(
        "the second publish", lambda: (p := progress(world, applied["plan_id"]))["status"] != "running" and p
    )
    assert (final["status"], final["errors"]) == ("done", [])
    assert final["waiting"] == {}
    assert_each_event_once(world, second)
    refused = emulator(world, "GET", "stats")["usage_limit_rejections"]
    batch = 50
    print(f"lockout: {refused_at_lock} writes refused when it began, {refused} in all; waited on {sorted(waiting)}")
    # After the first refusal only the batches under way and one probe per lockout reach the locked accounts.
    assert refused - refused_at_lock <= len(writers) * (batch + 2)
    health = world.admin("GET", "health").json()
    assert health["locked_writers"] == {}
