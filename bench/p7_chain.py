"""P7: a chain provisioned and published under the Calendar emulator's usage limits, with N writers and with 1.

The emulator enforces the stack's local limits per acting account (``devstack.stack.LOCAL_USAGE_LIMITS``:
25 calendars, 1,000 events, 50 shares, 100 external guests per 60 s; 30 s read-only past one) and
calsync budgets each writer at 80 % of them (``stack.budget_env``). The writers act through keyless
delegation (the emulator signs and verifies), so each is its own account there. calsync's own paths run
in this process: ``start_provision`` and ``start_apply`` enqueue paced tasks, which run at their
``schedule_time`` (``p5_publish.ScheduledQueue``) through ``provision_calendar`` and ``run_chunk``, as
Cloud Tasks would call the publish function's task routes.

Default (scaled down): 2 clinics x (12 professionals, 4 rooms) = 32 calendars, 120 allocations a clinic,
one in four with a patient (an external guest). ``--full``: the issue's chain, 20 clinics x (20, 8) =
560 calendars and 16,000 allocations. Reported per writer count: usage-limit rejections (goal 0), wall
time against the limit-bound minimum (the busiest writer's work over Google's limits, the largest kind),
and the throughput ratio of N writers to 1.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench.harness import BenchStack, Row, fmt
from bench.p5_publish import ScheduledQueue
from calsync import errors
from calsync.bootstrap import writer_config
from calsync.model import Allocation, CalendarRecord, Professional, Room
from calsync.services.apply import ApplyCommand, Publishing
from calsync.services.our_events import CONTROL_KEY
from calsync.services.plan import PlanCommand, make_plan
from calsync.services.provision import (
    PROVISION_TASK_ROUTE,
    Provisioning,
    provision_calendar,
    provision_status,
    start_provision,
)
from devstack import stack as devstack

WRITERS = ("agenda-1@clinic.example", "agenda-2@clinic.example")
USER_QUOTA_PER_WINDOW = 600.0  # Google's per-user request quota per minute (the local window is a minute)
SIGNER = "calsync-calendar@demo-calsync.iam.gserviceaccount.com"


def _settings(base: str, writers: tuple[str, ...]) -> dict[str, Any]:
    budget = {
        k.removeprefix("CALSYNC_").lower(): v for k, v in devstack.budget_env(devstack.LOCAL_USAGE_LIMITS).items()
    }
    return budget | {
        "calendar_credentials": "delegated",
        "delegation_service_account": SIGNER,
        "iam_credentials_endpoint": base,
        "delegated_user": writers[0],
        "writers": list(writers),
        "batch_size": 50,
        "publish_url": "http://127.0.0.1:9/",
    }


def _load(
    app: Any, clinics: int, professionals: int, rooms: int, allocations: int
) -> tuple[list[str], list[Allocation]]:
    store = app.store
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)
    ids = []
    loaded: list[Allocation] = []
    for c in range(clinics):
        clinic = f"chain-{c:02d}"
        ids.append(clinic)
        people = [
            Professional(clinic_id=clinic, id=f"p{i}", name=f"Prof {i}", email=f"{clinic}-p{i}@clinic.example")
            for i in range(professionals)
        ]
        store.replace_professionals(clinic, people)
        store.replace_rooms(clinic, [Room(clinic_id=clinic, id=f"r{i}", name=f"Sala {i}") for i in range(rooms)])
        items = []
        for i in range(allocations):
            begins = start + timedelta(days=i % 5, minutes=30 * (i // 5 % 20))
            items.append(
                Allocation(
                    id=f"{clinic}-a{i:05d}",
                    clinic_id=clinic,
                    professional_id=f"p{i % professionals}",
                    room_id=f"r{i % rooms}",
                    start=begins,
                    end=begins + timedelta(minutes=25),
                    status="reviewed",
                    title=f"consulta {i}",
                    attendees=[f"patient-{clinic}-{i}@patients.example"] if i % 4 == 0 else [],
                    revision=1,
                )
            )
        store.put_allocations(items)
        loaded += items
    return ids, loaded


def _drain(queue: ScheduledQueue, provisioning: Provisioning, publishing: Publishing) -> int:
    """Run every task at its time (provisioning and publish chunks; the channels' initial syncs are left
    out: they only read); how many were retried."""
    retries = 0
    while (task := queue.next_due()) is not None:
        p = task.payload
        try:
            if task.url.endswith(PROVISION_TASK_ROUTE):
                provision_calendar(
                    str(p["clinic_id"]), str(p["calendar_key"]), str(p["writer"]), provisioning, publishing.config
                )
            elif "plan_id" in p:
                publishing.run_chunk(str(p["plan_id"]), str(p["calendar_key"]), int(p["chunk"]))
        except (errors.RateLimited, errors.Transient) as exc:
            retries += 1
            queue.retry(task, datetime.now(UTC) + timedelta(seconds=exc.retry_after_s or 1.0))
    return retries


def _work(app: Any, loaded: list[Allocation], writers: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """What each writer had to do: calendars created, events created (3 per allocation), guests invited."""
    owner = {r.key: r.writer or writers[0] for r in app.store.list_calendars()}
    work = {w: {"calendars": 0, "events": 0, "invites": 0} for w in writers}
    for key, writer in owner.items():
        work[writer]["calendars"] += key != CONTROL_KEY
    for a in loaded:
        prof, room = f"{a.clinic_id}-prof-{a.professional_id}", f"{a.clinic_id}-room-{a.room_id}"
        for key in (prof, room, CONTROL_KEY):
            work[owner[key]]["events"] += 1
        work[owner[prof]]["invites"] += len(a.attendees)
    return work


def _one(stack: BenchStack, writers: tuple[str, ...], sizes: tuple[int, int, int, int]) -> dict[str, Any]:
    stack.reset()
    base = stack.calendar_base
    requests.post(f"{base}/_emulator/usage-limits", json=devstack.LOCAL_USAGE_LIMITS, timeout=30).raise_for_status()
    app = stack.container(_settings(base, writers))
    pool = writer_config(app.settings)
    control = app.calendar_api.insert_calendar("Controle", time_zone="America/Sao_Paulo", writer=writers[0])
    app.store.put_calendar(CalendarRecord(key=CONTROL_KEY, google_calendar_id=control, kind="control"))
    config = dataclasses.replace(app.publish_config, control_calendar_id=control)
    clinics, loaded = _load(app, *sizes)
    queue = ScheduledQueue()
    provisioning = Provisioning(
        api=app.calendar_api, store=app.store, queue=queue, clock=app.clock, channels=app.channel_config, writers=pool
    )
    publishing = Publishing(
        store=app.store, api=app.calendar_api, queue=queue, clock=app.clock, config=config, writers=pool
    )
    began = time.monotonic()
    for clinic in clinics:
        start_provision(clinic, provisioning, config)
    retries = _drain(queue, provisioning, publishing)
    provision_s = time.monotonic() - began
    if not all(provision_status(c, store=app.store, clock=app.clock).done for c in clinics):
        raise RuntimeError("P7: provisioning did not finish")
    began = time.monotonic()
    now = app.clock.now()
    for clinic in clinics:
        plan = make_plan(
            PlanCommand(clinic, now, now + timedelta(days=8)), store=app.store, clock=app.clock, config=config
        )
        publishing.start_apply(ApplyCommand(plan.plan_id, plan.confirm_token))
    retries += _drain(queue, provisioning, publishing)
    publish_s = time.monotonic() - began
    stats = requests.get(f"{base}/_emulator/stats", timeout=30).json()
    writes = _work(app, loaded, writers)
    requests.post(
        f"{base}/_emulator/usage-limits",
        json=dict.fromkeys(("calendars_created", "events_created", "acl_shares", "external_invites")),
        timeout=30,
    )
    return {
        "rejections": int(stats.get("usage_limit_rejections", 0)),
        "provision_s": provision_s,
        "publish_s": publish_s,
        "usage": writes,
        "retries": retries,
    }


def run(stack: BenchStack, *, full: bool = False) -> list[Row]:
    """P7 with the pool (N writers) and with one writer."""
    sizes = (20, 20, 8, 800) if full else (2, 12, 4, 120)
    pool = _one(stack, WRITERS, sizes)
    alone = _one(stack, WRITERS[:1], sizes)
    limits = devstack.LOCAL_USAGE_LIMITS
    window = float(limits["window_s"] or 60)
    calendars = sizes[0] * (sizes[1] + sizes[2])
    events = sizes[0] * sizes[3] * 3
    rows: list[Row] = []
    for label, run_ in ((f"{len(WRITERS)} writers", pool), ("1 writer", alone)):
        # Limit-bound minimum: provisioning, then publishing, each as long as its busiest writer needs
        # under Google's (local) thresholds per window and the 600 requests/min/user quota.
        work = run_["usage"].values()
        provision_min = max(u["calendars"] / float(limits["calendars_created"] or 1) for u in work) * window
        publish_min = (
            max(
                max(
                    u["events"] / float(limits["events_created"] or 1),
                    u["invites"] / float(limits["external_invites"] or 1),
                    u["events"] / USER_QUOTA_PER_WINDOW,
                )
                for u in work
            )
            * window
        )
        busiest = (provision_min + publish_min) / window
        total = run_["provision_s"] + run_["publish_s"]
        rows.append(
            Row(
                "P7",
                f"chain of {fmt(calendars)} calendars, {fmt(events)} events, {label}: usage-limit rejections",
                fmt(run_["rejections"]),
                note=f"goal 0; {run_['retries']} task retries",
            )
        )
        rows.append(
            Row(
                "P7",
                f"chain, {label}: wall time (s) provision + publish",
                fmt(total),
                fmt(busiest * window),
                f"{total / max(busiest * window, 1e-9):.2f}x the minimum",
                note=f"provision {run_['provision_s']:.0f} s, publish {run_['publish_s']:.0f} s; minimum = per phase, "
                f"the busiest writer's work over the limits per {window:.0f} s window (calendars; events, guests, "
                f"600 requests/min) = {provision_min:.0f} + {publish_min:.0f} s; calsync budgets 80 % of each; "
                f"work per writer {[tuple(u.values()) for u in work]} (calendars, events, guests)",
            )
        )
    ratio = (alone["provision_s"] + alone["publish_s"]) / max(pool["provision_s"] + pool["publish_s"], 1e-9)
    rows.append(
        Row(
            "P7",
            f"chain: throughput of {len(WRITERS)} writers / 1 writer",
            f"{ratio:.2f}x",
            note="the control calendar (every allocation's third copy) stays with the first writer",
        )
    )
    return rows
