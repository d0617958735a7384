"""quotaExceeded is a lockout, on the fakes: the chunk meeting it records its writer's lockout and is put
back at the lock's end under a new task name (acknowledged, no retry spent); the writer's other chunks
wait without a Google call while other writers publish on; once the lock has run out one chunk probes
with a single write, and the publish finishes with nothing duplicated."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta

from calsync import errors
from calsync.ports import TaskRequest
from calsync.services.apply import ApplyCommand, plan_progress
from calsync.services.health import HealthConfig, health
from calsync.services.plan import PlanCommand, make_plan, professional_key, room_key
from calsync.services.writers import WriterConfig, chunk_usage
from calsync.testing import FakeCalendarApi
from tests.unit.publish_helpers import CLINIC, CONFIG, NOW, World, allocation, world

A, B = "agenda-1@clinic.example", "agenda-2@clinic.example"
POOL = WriterConfig(writers=(A, B), lockout_s=3 * 3600, probe_s=60)
LOCKED = errors.QuotaExhausted("Calendar usage limits exceeded.", status=403, reason="quotaExceeded")


class CountingBatches(FakeCalendarApi):
    """The fake Calendar API, counting the write calls each batch sends."""

    def __init__(self, inner: FakeCalendarApi) -> None:
        self.__dict__.update(inner.__dict__)
        self.writes_sent = 0
        self.batches = 0

    def execute_batch(self, ops):  # type: ignore[no-untyped-def]
        self.batches += 1
        self.writes_sent += sum(1 for op in ops if op.kind != "get")
        return super().execute_batch(ops)


def rooms_to_b(w: World) -> None:
    """The clinic's room calendars belong to writer B, the rest to A (the pool's first)."""
    for record in w.store.list_calendars():
        if record.kind == "room":
            w.store.update_calendar(record.key, {"writer": B})


def deliver(w: World, tasks: list[TaskRequest], api: FakeCalendarApi) -> list[str]:
    """Run ``tasks`` as Cloud Tasks would (a 429 is retried); the answers' waiting marks."""
    outcomes = []
    for task in tasks:
        p = task.payload
        done = w.publishing(api=api, writers=POOL).run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
        outcomes.append("waiting" if done.waiting_until is not None else "done")
    return outcomes


def test_a_lockout_is_waited_out_and_the_publish_finishes_once() -> None:
    w = world(professionals=2, rooms=2)
    rooms_to_b(w)
    api = CountingBatches(w.api)
    w.store.put_allocations([allocation(i, hours=24 + i, prof=i % 2, room=i % 2) for i in range(8)])
    plan = make_plan(PlanCommand(CLINIC, NOW, NOW + timedelta(days=7)), store=w.store, clock=w.clock, config=CONFIG)
    w.publishing(api=api).start_apply(ApplyCommand(plan.plan_id, plan.confirm_token))
    tasks = w.queue.pop_all()
    b_tasks = [t for t in tasks if t.payload["calendar_key"].startswith(room_key(CLINIC, ""))]
    a_tasks = [t for t in tasks if t not in b_tasks]
    assert len(b_tasks) == 2

    # B's first chunk meets Google's read-only mode: the lockout is recorded, the chunk put back.
    first = w.store.get_plan_progress(plan.plan_id, b_tasks[0].payload["calendar_key"], 0)
    assert first is not None
    api.fail_next("insert_event", LOCKED, times=first.total)  # every write of its batch is refused
    assert deliver(w, b_tasks[:1], api) == ["waiting"]
    sent_after_lock = api.writes_sent
    # B's other chunk waits without a call; A's chunks publish on.
    assert deliver(w, b_tasks[1:], api) == ["waiting"]
    assert api.writes_sent == sent_after_lock
    assert deliver(w, a_tasks, api) == ["done"] * len(a_tasks)

    until = NOW + timedelta(hours=3)
    progress = plan_progress(plan.plan_id, store=w.store)
    assert progress.status == "running"
    assert progress.waiting == {B: until}  # which writer the plan waits for, and until when
    assert health(store=w.store, clock=w.clock, config=HealthConfig(), writers=w.store).locked_writers == {B: until}
    deferred = w.queue.pop_all()
    assert len(deferred) == 2
    assert {t.schedule_time for t in deferred} == {until}
    assert all(t.name and t.name.endswith(f"-w{int(until.timestamp())}") for t in deferred)

    # The lockout has run out: the first chunk probes with one write alone, which goes through (the
    # lockout is cleared), then sends the rest; the other chunk follows; everything is written once.
    w.clock.advance(3 * 3600)
    before, batches = api.writes_sent, api.batches
    assert deliver(w, deferred[:1], api) == ["done"]
    probed = w.store.get_plan_progress(plan.plan_id, deferred[0].payload["calendar_key"], 0)
    assert probed is not None
    assert api.writes_sent - before == probed.total  # each write sent once
    assert api.batches - batches == 2  # the probe's single write, then the rest of its batch
    assert deliver(w, deferred[1:], api) == ["done"]
    assert plan_progress(plan.plan_id, store=w.store).status == "done"
    assert plan_progress(plan.plan_id, store=w.store).waiting == {}
    for gid, events in api.calendars.items():
        tags = Counter(e["extendedProperties"]["private"]["allocation_id"] for e in events.values())
        assert all(n == 1 for n in tags.values()), gid
    (record,) = [r for r in w.store.list_writers() if r.writer == B]
    assert (record.locks, record.probes, record.locked_until) == (1, 1, None)


def test_each_writer_publishes_on_its_own_budget() -> None:
    w = world(professionals=2, rooms=2)
    rooms_to_b(w)
    pool = WriterConfig(writers=(A, B), window_s=60, fraction=0.5, events=100, external_invites=40)
    w.store.put_allocations([allocation(i, hours=24 + i, prof=i % 2, room=i % 2) for i in range(120)])
    plan = make_plan(PlanCommand(CLINIC, NOW, NOW + timedelta(days=7)), store=w.store, clock=w.clock, config=CONFIG)
    w.publishing(writers=pool).start_apply(ApplyCommand(plan.plan_id, plan.confirm_token))
    by_writer: dict[str, list[tuple[float, int, int]]] = {A: [], B: []}
    for task in w.queue.pop_all():
        key = task.payload["calendar_key"]
        progress = w.store.get_plan_progress(plan.plan_id, key, task.payload["chunk"])
        assert progress is not None
        assert task.schedule_time is not None
        usage = chunk_usage(progress, B if key.startswith(room_key(CLINIC, "")) else A)
        at = (task.schedule_time - NOW).total_seconds()
        by_writer[B if key.startswith(room_key(CLINIC, "")) else A].append((at, usage.events, usage.external_invites))
    for writer, chunks in by_writer.items():
        chunks.sort()
        assert chunks[0][0] == 0  # the writers publish side by side, each from now
        for at, _, _ in chunks:  # in any window, at most the budget's share (plus the chunk under way)
            events = sum(e for t, e, _ in chunks if at <= t < at + 60)
            invites = sum(i for t, _, i in chunks if at <= t < at + 60)
            assert events <= 50 + 50, writer
            assert invites <= 20 + 50, writer
    # The room calendars (writer B) invite nobody: only their requests and events pace them.
    assert max(t for t, _, _ in by_writer[B]) < max(t for t, _, _ in by_writer[A])


def test_inviting_patients_is_a_clinic_setting() -> None:
    w = world(professionals=1, rooms=1)
    w.store.put_allocations([allocation(i, hours=24 + i) for i in range(3)])  # each with one patient

    def professional_guests(invited: tuple[str, ...]) -> set[str]:
        config = dataclasses.replace(CONFIG, invite_patients=invited)
        plan = make_plan(PlanCommand(CLINIC, NOW, NOW + timedelta(days=7)), store=w.store, clock=w.clock, config=config)
        w.publishing(config=config).start_apply(ApplyCommand(plan.plan_id, plan.confirm_token))
        w.queue.pop_all()
        chunk = w.store.get_plan_progress(plan.plan_id, professional_key(CLINIC, "p0"), 0)
        assert chunk is not None
        usage = chunk_usage(chunk, A)
        invited = [g for a in chunk.actions for g in (a.get("desired") or {}).get("attendees") or []]
        assert usage.external_invites == len(invited)  # each patient is an external guest, once per event
        return set(invited)

    assert professional_guests(("*",)) == {"pat@x.test"}
    assert professional_guests(("other-clinic",)) == set()  # this clinic does not invite its patients
    assert professional_guests((CLINIC,)) == {"pat@x.test"}
