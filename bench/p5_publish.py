"""P5: publish N events (6,000 in the full run) under the emulated 600 requests/min/user quota.

One clinic (10 professionals, 5 rooms, the control calendar); N/3 reviewed allocations in the next
week, each published to its professional's, its room's and the control calendar (3 events). The
publish path is calsync's own: ``make_plan`` then ``start_apply`` (confirmation, staleness check,
per-calendar chunks of 50 writes, one batch request each, tasks spaced by ``schedule_time``, by their calls, to use
80% of the per-user quota), and ``run_chunk`` for each task. The tasks run in this process at their
``schedule_time`` (a retried task again after its ``Retry-After``), which is what Cloud Tasks does
with the publish function's task route; the Cloud Tasks emulator ignores backoff, so it is not used
here. Setup runs with the quota raised; the quota is set back to Google's defaults (600/min/user,
10,000/min/project, 60 s sliding window) just before apply starts.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bench.harness import BenchStack, Row, fmt
from calsync import errors
from calsync.bootstrap import Container
from calsync.model import Allocation, CalendarRecord, Professional, Room
from calsync.ports import CalendarApi, ListEvents, TaskRequest
from calsync.services.apply import ApplyCommand, Publishing, plan_progress
from calsync.services.apply_chunk import RETRYABLE
from calsync.services.our_events import CONTROL_KEY, professional_key, room_key
from calsync.services.plan import PlanCommand, PublishConfig, make_plan
from calsync.services.writers import PACED_REQUEST_SHARE

CLINIC = "clinic-bench"
PROFESSIONALS = 10
ROOMS = 5
USER_QUOTA_PER_MIN = 600


class ScheduledQueue:
    """A ``TaskQueue`` run in-process: tasks come out in ``schedule_time`` order; names deduplicated."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TaskRequest]] = []
        self._names: set[str] = set()
        self._order = itertools.count()

    def enqueue(self, task: TaskRequest) -> bool:
        """Queue ``task``; False when a task of that name was already queued."""
        if task.name is not None:
            if task.name in self._names:
                return False
            self._names.add(task.name)
        self.retry(task, task.schedule_time or datetime.now(UTC))
        return True

    def retry(self, task: TaskRequest, at: datetime) -> None:
        """Queue ``task`` again for ``at`` (a failed attempt)."""
        heapq.heappush(self._heap, (at.timestamp(), next(self._order), task))

    def next_due(self) -> TaskRequest | None:
        """Wait until the earliest task is due and take it; None when the queue is empty."""
        if not self._heap:
            return None
        due, _, task = heapq.heappop(self._heap)
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        return task


def setup(stack: BenchStack, app: Container, events: int) -> PublishConfig:
    """The clinic's calendars (in Google and registered) and ``events / 3`` reviewed allocations."""
    store, api = app.store, app.calendar_api
    control = api.insert_calendar("Controle", time_zone="America/Sao_Paulo")
    store.put_calendar(CalendarRecord(key=CONTROL_KEY, google_calendar_id=control, kind="control"))
    store.replace_professionals(
        CLINIC,
        [
            Professional(clinic_id=CLINIC, id=f"p{i}", name=f"Prof {i}", email=f"p{i}@clinic.example")
            for i in range(PROFESSIONALS)
        ],
    )
    store.replace_rooms(CLINIC, [Room(clinic_id=CLINIC, id=f"r{i}", name=f"Sala {i}") for i in range(ROOMS)])
    for i in range(PROFESSIONALS):
        gid = api.insert_calendar(f"Prof {i}", time_zone="America/Sao_Paulo")
        key = professional_key(CLINIC, f"p{i}")
        store.put_calendar(
            CalendarRecord(key=key, google_calendar_id=gid, kind="professional", clinic_id=CLINIC, owner_id=f"p{i}")
        )
    for i in range(ROOMS):
        gid = api.insert_calendar(f"Sala {i}", time_zone="America/Sao_Paulo")
        store.put_calendar(
            CalendarRecord(key=room_key(CLINIC, f"r{i}"), google_calendar_id=gid, kind="room", clinic_id=CLINIC)
        )
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    allocations = [
        Allocation(
            id=f"alloc-{n:05d}",
            clinic_id=CLINIC,
            professional_id=f"p{n % PROFESSIONALS}",
            room_id=f"r{n % ROOMS}",
            start=base + timedelta(minutes=30 * (n // PROFESSIONALS)),
            end=base + timedelta(minutes=30 * (n // PROFESSIONALS) + 30),
            status="reviewed",
            title=f"consulta {n}",
            revision=1,
        )
        for n in range(events // 3)
    ]
    for start in range(0, len(allocations), 400):
        store.put_allocations(allocations[start : start + 400])
    return replace(app.publish_config, control_calendar_id=control)


def run(stack: BenchStack, *, events: int) -> list[Row]:
    """Plan and apply a publish of ``events`` events under Google's default quotas."""
    stack.reset()
    app = stack.container({"batch_size": 50})
    store, api, clock = app.store, app.calendar_api, app.clock
    config = setup(stack, app, events)
    now = clock.now()
    window = PlanCommand(CLINIC, now, now + timedelta(days=30))
    plan = make_plan(window, store=store, clock=clock, config=config)
    writes = plan.totals.create

    emulator = stack.emulator
    emulator.quota(per_user_per_minute=USER_QUOTA_PER_MIN, per_project_per_minute=10_000, window_s=60, rate_429=0.0)
    emulator.reset_stats()
    queue = ScheduledQueue()
    retries = 0
    started = time.monotonic()
    publishing = Publishing(store=store, api=api, queue=queue, clock=clock, config=config)
    publishing.start_apply(ApplyCommand(plan.plan_id, plan.confirm_token))
    while (task := queue.next_due()) is not None:
        payload = task.payload
        try:
            publishing.run_chunk(str(payload["plan_id"]), str(payload["calendar_key"]), int(payload["chunk"]))
        except RETRYABLE as exc:
            retries += 1
            wait = exc.retry_after_s if isinstance(exc, errors.CalendarApiError) and exc.retry_after_s else 1.0
            queue.retry(task, datetime.now(UTC) + timedelta(seconds=wait))
    wall = time.monotonic() - started
    stats = emulator.stats()
    emulator.unlimited()
    progress = plan_progress(plan.plan_id, store=store)
    quota_errors = [e for e in progress.errors if "rate" in str(e).lower() or "quota" in str(e).lower()]
    published = sum(_count_events(api, c.google_calendar_id) for c in store.list_calendars())
    if progress.status != "done" or published != writes:
        raise RuntimeError(f"P5: plan {progress.status}, {published}/{writes} events in Google: {progress.errors[:3]}")
    calls = sum(int(v) for v in stats["methods"].values())
    minimum = calls / USER_QUOTA_PER_MIN * 60
    n = fmt(writes)
    return [
        Row(
            "P5",
            f"publish {n} events: batch requests",
            fmt(stats["batch"]["requests"]),
            note=f"{fmt(stats['batch']['parts'])} batch parts, {fmt(calls)} quota-charged calls in all; "
            f"chunks of up to {config.batch_size} writes, one batch request each",
        ),
        Row(
            "P5",
            f"publish {n} events: wall time (s)",
            fmt(wall),
            fmt(minimum),
            f"{wall / minimum:.3g}x the minimum",
            f"reference = quota-bound minimum {fmt(calls)} calls / {USER_QUOTA_PER_MIN} per min; calsync paces "
            f"its chunks at {PACED_REQUEST_SHARE:.0%} of the quota by design, leaving the rest for syncs",
        ),
        Row(
            "P5",
            f"publish {n} events: quota rejections during the run / quota errors in the final state",
            f"{fmt(stats['quota_rejections'])} / {len(quota_errors)}",
            note=f"plan {progress.status}, {fmt(published)} events in Google, {retries} task retries, "
            f"{progress.done}/{progress.total} done",
        ),
    ]


def _count_events(api: CalendarApi, calendar_id: str) -> int:
    """Live events of a calendar in Google."""
    count, token = 0, None
    while True:
        page = api.list_events(ListEvents(calendar_id, page_token=token))
        count += sum(1 for e in page.items if not e.cancelled)
        token = page.next_page_token
        if token is None:
            return count
