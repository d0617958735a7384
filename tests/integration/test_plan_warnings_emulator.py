"""Plans warn before writing, on the Calendar emulator (google-api-python-client) and Google's Firestore emulator.

A person's busy event on the professional's calsync calendar (mirrored by a real sync) and busy time on
the professional's own primary calendar (read by the free/busy check through the real client) each
give the plan one warning naming the allocation, the calendar, the kind and the busy interval; a
"free" event and a clean slot give none. No content of people's events is in the answer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests

from calsync.model import Allocation
from calsync.services.availability import AvailabilityConfig, check_clinic
from calsync.services.our_events import professional_key
from calsync.services.plan import PlanCommand, make_plan
from devstack.calendar_emulator.auth import DEFAULT_SERVICE_ACCOUNT
from tests.integration.test_publish_emulator import CLINIC, Env, setup_clinic
from tests.integration.test_series_emulator import sync

PROF = professional_key(CLINIC, "p0")


def as_owner(env: Env, path: str, body: dict[str, Any]) -> None:
    """A call on p0's own primary calendar, as p0."""
    url = f"{env.base}/calendar/v3/calendars/primary/{path}"
    answer = requests.post(url, json=body, headers={"X-Emulator-User": "p0@clinic.test"}, timeout=10)
    assert answer.status_code < 300, answer.text


def timed(start: Any, hours: float = 1, **extra: Any) -> dict[str, Any]:
    return {
        "summary": "private matter",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=hours)).isoformat()},
        **extra,
    }


def test_plan_lists_allocations_over_busy_time_here_and_elsewhere(calendar_base: str, firestore_client: Any) -> None:
    env = setup_clinic(calendar_base, firestore_client, professionals=1, rooms=1)
    env.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000})
    day = env.clock.now().replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=2)

    def allocation(aid: str, at: timedelta) -> Allocation:
        start = day + at
        return Allocation(
            id=aid,
            clinic_id=CLINIC,
            professional_id="p0",
            room_id="r0",
            start=start,
            end=start + timedelta(minutes=30),
            status="reviewed",
            title=f"consulta {aid}",
        )

    here, free, elsewhere, clean = (
        allocation("a-here", timedelta(hours=0)),
        allocation("a-free", timedelta(hours=2)),
        allocation("a-elsewhere", timedelta(days=1)),
        allocation("a-clean", timedelta(days=1, hours=3)),
    )
    env.store.put_allocations([here, free, elsewhere, clean])
    # On the calsync calendar: a busy event over one allocation, a "free" one over another.
    env.seeder.insert_event(env.gids[PROF], timed(day - timedelta(minutes=15)))
    env.seeder.insert_event(env.gids[PROF], timed(day + timedelta(hours=2), transparency="transparent"))
    sync(env)
    # On p0's own calendar: a busy block over a third allocation, shared as free/busy only.
    as_owner(env, "events", timed(day + timedelta(days=1), hours=2))
    as_owner(env, "acl", {"role": "freeBusyReader", "scope": {"type": "user", "value": DEFAULT_SERVICE_ACCOUNT}})
    checked = check_clinic(CLINIC, store=env.store, api=env.api, clock=env.clock, config=AvailabilityConfig(env="dev"))
    assert (checked.readable, checked.collisions) == (1, 1)

    now = env.clock.now()
    plan = make_plan(
        PlanCommand(CLINIC, now - timedelta(days=1), now + timedelta(days=7)),
        store=env.store,
        clock=env.clock,
        config=env.config,
    )
    warnings = [w.model_dump(mode="json") for w in plan.warnings]
    assert warnings == [
        {
            "allocation_id": "a-elsewhere",
            "calendar_id": PROF,
            "kind": "busy_elsewhere",
            "start": (day + timedelta(days=1)).isoformat(),
            "end": (day + timedelta(days=1, hours=2)).isoformat(),
        },
        {
            "allocation_id": "a-here",
            "calendar_id": PROF,
            "kind": "overlap_manual",
            "start": (day - timedelta(minutes=15)).isoformat(),
            "end": (day + timedelta(minutes=45)).isoformat(),
        },
    ]
    assert "private matter" not in plan.model_dump_json()
    assert plan.totals.create == 12  # warnings never block: every allocation is still planned
