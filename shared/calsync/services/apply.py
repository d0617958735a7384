"""Publish apply: confirm a stored plan, then write it to Google in paced, per-calendar Cloud Tasks.

``start_apply`` checks the confirmation token(s) (a ``clear_future`` plan needs the second one), re-plans
from the current state and refuses a stale plan (409, nothing written), checks every target calendar
is not another environment's, stores each chunk's actions (≤ ``batch_size`` calls, one batch request)
and enqueues one task per chunk on the publish queue. Tasks are spaced by ``schedule_time`` so the
publish stays under the per-user quota (600 requests/min; one service account is one user for all
calendars) and named (plan, calendar, chunk), so a duplicated or retried task is harmless.

The chunk tasks run in ``services.apply_chunk``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from calsync import errors
from calsync.logs import get_logger
from calsync.model import Plan, PlanChunkProgress
from calsync.ports import CalendarApi, Clock, PublishStore, TaskQueue, TaskRequest
from calsync.results import ChunkDone, ProgressAnswer, ProgressCalendar, ProgressError
from calsync.services import apply_chunk
from calsync.services.plan import PlanCommand, PublishConfig, compute
from calsync.services.plan_actions import PlanAction, action_dict, fingerprint, hash_token
from calsync.services.tasks import PUBLISH_TASK_ROUTE, publish_task
from calsync.services.writer_gate import GuardedApi, deferred_task
from calsync.services.writers import WriterConfig, chunk_usage, cost_s, record_lockout, writer_of

__all__ = ["ApplyCommand", "Publishing", "calendar_env", "plan_progress"]

log = get_logger(__name__)

TASK_ROUTE = PUBLISH_TASK_ROUTE  # the publish function's route for chunk tasks
CALENDAR_ENV_MARKER = "calsync-env="


@dataclass(frozen=True)
class ApplyCommand:
    """``POST /publish/apply``."""

    plan_id: str
    confirm: str | None
    confirm_clear_future: str | None = None


def _token_ok(given: str | None, stored_hash: str | None) -> bool:
    if not given or not stored_hash:
        return False
    return hmac.compare_digest(hash_token(given), stored_hash)


def calendar_env(calendar: Any) -> str | None:
    """The environment a Google calendar is tagged with (``calsync-env=<env>`` in its description)."""
    description = str(calendar.get("description") or "")
    for word in description.split():
        if word.startswith(CALENDAR_ENV_MARKER):
            return word.removeprefix(CALENDAR_ENV_MARKER)
    return None


def _chunks(writes: Sequence[PlanAction], size: int) -> dict[tuple[str, int], list[PlanAction]]:
    by_calendar: dict[str, list[PlanAction]] = {}
    for a in writes:
        by_calendar.setdefault(a.calendar_key, []).append(a)
    out: dict[tuple[str, int], list[PlanAction]] = {}
    for calendar_key in sorted(by_calendar):
        items = by_calendar[calendar_key]
        for index, start in enumerate(range(0, len(items), size)):
            out[(calendar_key, index)] = items[start : start + size]
    return out


def _foreign_calendars(
    writes: Sequence[PlanAction], store: PublishStore, api: CalendarApi, config: PublishConfig
) -> set[str]:
    """Target calendars whose Google description carries another environment's tag (never written)."""
    refused: set[str] = set()
    for calendar_key in sorted({a.calendar_key for a in writes}):
        record = store.get_calendar(calendar_key)
        if record is None:
            refused.add(calendar_key)
            continue
        tagged = calendar_env(api.get_calendar(record.google_calendar_id))
        if tagged is not None and tagged != config.env:
            log.warning("publish.foreign_calendar_refused", calendar_key=calendar_key, env=tagged)
            refused.add(calendar_key)
    return refused


# --- progress ------------------------------------------------------------------------------------


def plan_progress(plan_id: str, *, store: PublishStore) -> ProgressAnswer:
    """``GET /publish/{plan_id}``: status, done/total overall and per calendar, errors."""
    plan = store.get_plan(plan_id)
    if plan is None:
        raise errors.UnknownResource("unknown plan", details={"plan_id": plan_id})
    per: dict[str, ProgressCalendar] = {}
    errs = [ProgressError(calendar_id="", event_id="", code=e) for e in plan.errors]
    chunks = store.list_plan_progress(plan_id)
    for p in chunks:
        row = per.setdefault(
            p.calendar_key,
            ProgressCalendar(calendar_id=p.calendar_key, done=0, total=0, written=0, skipped=0, failed=0),
        )
        row.total += p.total
        if p.finished:
            row.done += p.total
        row.written += p.done
        row.skipped += p.skipped
        row.failed += p.failed
        for reason, count in p.skip_reasons.items():
            row.skip_reasons = row.skip_reasons or {}
            row.skip_reasons[reason] = row.skip_reasons.get(reason, 0) + count
        errs.extend(ProgressError(calendar_id=p.calendar_key, **e) for e in p.errors)
    calendars = [per[k] for k in sorted(per)]
    waiting = {
        p.waiting_writer: p.waiting_until
        for p in sorted(chunks, key=lambda p: p.waiting_until or plan.created_at)
        if not p.finished and p.waiting_writer is not None and p.waiting_until is not None
    }
    planned_writes = sum(plan.totals.get(kind, 0) for kind in ("create", "update", "delete"))
    return ProgressAnswer(
        plan_id=plan.id,
        status=plan.status,
        done=sum(c.done for c in calendars),
        total=plan.total_writes if plan.status != "planned" else planned_writes,
        errors=errs,
        calendars=calendars,
        waiting=waiting,
    )


@dataclass(frozen=True)
class Publishing:
    """What applying a plan works with: the ports, the publish settings and the writer pool.

    ``start_apply`` (``POST /publish/apply``) stores a confirmed plan's chunks and enqueues their
    tasks; ``run_chunk`` runs one chunk task (``services.apply_chunk``) behind its writer's lockout.
    """

    store: PublishStore
    api: CalendarApi
    queue: TaskQueue
    clock: Clock
    config: PublishConfig
    writers: WriterConfig = field(default_factory=WriterConfig)

    def start_apply(self, cmd: ApplyCommand) -> ProgressAnswer:
        """Confirm, check staleness, store the chunks and enqueue their paced tasks; answers the progress."""
        store, config = self.store, self.config
        plan = store.get_plan(cmd.plan_id)
        if plan is None:
            raise errors.UnknownResource("unknown plan", details={"plan_id": cmd.plan_id})
        if not _token_ok(cmd.confirm, plan.confirm_hash):
            raise errors.InvalidRequest("a valid confirm token is required", details={"field": "confirm"})
        if plan.clear_future and not _token_ok(cmd.confirm_clear_future, plan.confirm_clear_hash):
            raise errors.InvalidRequest(
                "clear_future needs the second confirmation", details={"field": "confirm_clear_future"}
            )
        if plan.status != "planned":
            # Applying again: re-enqueue unfinished chunks under a new attempt's names (each write is
            # idempotent; a duplicate of the same attempt is still deduplicated by name).
            if plan.status == "running" and store.transition_plan(
                plan.id, "running", {"apply_attempt": plan.apply_attempt + 1}
            ):
                again = store.get_plan(plan.id)
                assert again is not None
                self._enqueue(again, only_unfinished=True)
            return plan_progress(plan.id, store=store)
        now = self.clock.now()
        if now >= plan.expires_at:
            raise errors.StaleState("plan expired, plan again", details={"plan_id": plan.id})
        command = PlanCommand(plan.clinic_id, plan.time_min, plan.time_max, plan.clear_future)
        actions = compute(store, command, config, now)
        if fingerprint(actions) != plan.fingerprint:
            raise errors.StaleState("plan is stale, plan again", details={"plan_id": plan.id})
        writes = [a for a in actions if a.action != "skip"]
        refused = _foreign_calendars(writes, store, self.api, config)
        guard_errors = [f"{calendar_key}: calendar tagged with another environment" for calendar_key in sorted(refused)]
        writes = [a for a in writes if a.calendar_key not in refused]
        chunks = _chunks(writes, config.batch_size)
        if not store.transition_plan(
            plan.id,
            "planned",
            {"status": "running", "started_at": now, "chunks": len(chunks), "total_writes": len(writes)}
            | ({"errors": guard_errors} if guard_errors else {}),
        ):
            return plan_progress(plan.id, store=store)
        for (calendar_key, index), items in chunks.items():
            store.put_plan_progress(
                PlanChunkProgress(
                    plan_id=plan.id,
                    calendar_key=calendar_key,
                    chunk=index,
                    total=len(items),
                    actions=[action_dict(a) for a in items],
                    updated_at=now,
                )
            )
        running = store.get_plan(plan.id)
        assert running is not None
        if not chunks:
            store.transition_plan(plan.id, "running", {"status": "failed" if guard_errors else "done"})
        self._enqueue(running, only_unfinished=False)
        log.info("publish.apply_started", plan_id=plan.id, total=len(writes), count=len(chunks))
        return plan_progress(plan.id, store=store)

    def _enqueue(self, plan: Plan, *, only_unfinished: bool) -> int:
        """Enqueue the plan's chunk tasks, round-robin across calendars, paced on their writers' budgets.

        Each writer's chunks reserve their cost on that writer's usage timeline (``services.writers``: the
        per-user request quota, events created and external guests invited, at the configured share of
        Google's thresholds), so wall time tracks the budget-bound minimum per writer rather than the
        number of chunks, writers publish side by side, and two publishes (or a provisioning) sharing a
        writer queue behind each other instead of adding up.
        """
        store, pool = self.store, self.writers
        progress = store.list_plan_progress(plan.id)
        if only_unfinished:
            progress = [p for p in progress if not p.finished]
        # Interleave calendars (chunk 0 of each, then chunk 1 ...): every calendar makes progress early.
        ordered = sorted(progress, key=lambda p: (p.chunk, p.calendar_key))
        owners = {key: writer_of(store.get_calendar(key), pool) for key in {p.calendar_key for p in ordered}}
        by_writer: dict[str, list[tuple[PlanChunkProgress, float]]] = {}
        for chunk in ordered:
            writer = owners[chunk.calendar_key]
            by_writer.setdefault(writer, []).append((chunk, cost_s(chunk_usage(chunk, writer), pool)))
        now = self.clock.now()
        for writer, chunks in sorted(by_writer.items()):
            at = store.reserve_writer(writer, sum(cost for _, cost in chunks), now)
            for chunk, cost in chunks:
                self.queue.enqueue(_chunk_task(self.config, chunk, at, plan.apply_attempt))
                at += timedelta(seconds=cost)
        return len(ordered)

    # --- the chunk task, behind its writer's lockout ---------------------------------------------

    def run_chunk(self, plan_id: str, calendar_key: str, chunk: int) -> ChunkDone:
        """One chunk task (``services.apply_chunk``), unless its writer is locked: then it is put back at the
        lock's end and acknowledged (``services.writer_gate``); a lockout its calls meet is recorded."""
        store, clock, pool = self.store, self.clock, self.writers
        progress = store.get_plan_progress(plan_id, calendar_key, chunk)
        if progress is None:
            raise errors.UnknownResource("unknown plan chunk", details={"plan_id": plan_id, "chunk": chunk})
        if progress.finished:
            return ChunkDone.of(progress, again=True)
        record = store.get_calendar(calendar_key)
        if record is None:
            raise errors.UnknownResource("unknown calendar", details={"calendar_id": calendar_key})
        writer = writer_of(record, pool)
        admission = store.admit_writer(writer, clock.now(), probe_s=pool.probe_s)
        if admission.wait_until is not None:
            return self._defer(progress, writer, admission.wait_until)
        if progress.waiting_until is not None:
            progress = progress.model_copy(update={"waiting_writer": None, "waiting_until": None})
            store.put_plan_progress(progress)
        guarded = GuardedApi(self.api, writer, probe=admission.probe)
        try:
            done = apply_chunk.run_chunk(progress, record, store=store, api=guarded, clock=clock, config=self.config)
        except errors.CalendarApiError:
            if guarded.quota is None:
                raise
            until = record_lockout(store, writer, pool, clock.now())
            again = store.get_plan_progress(plan_id, calendar_key, chunk) or progress
            return self._defer(again, writer, until)
        if admission.probe:
            store.unlock_writer(writer, clock.now())  # the probe went through: Google lifted the lockout
        return done

    def _defer(self, progress: PlanChunkProgress, writer: str, until: datetime) -> ChunkDone:
        """Put the chunk's task back at ``until`` (no retry spent) and say so in its progress."""
        store = self.store
        plan = store.get_plan(progress.plan_id)
        task = _chunk_task(self.config, progress, until, plan.apply_attempt if plan is not None else 0)
        self.queue.enqueue(deferred_task(task, until))
        store.put_plan_progress(progress.model_copy(update={"waiting_writer": writer, "waiting_until": until}))
        log.info("publish.chunk_deferred", plan_id=progress.plan_id, calendar_key=progress.calendar_key)
        return ChunkDone.of(progress, waiting_until=until)


def _chunk_task(config: PublishConfig, chunk: PlanChunkProgress, at: datetime, attempt: int) -> TaskRequest:
    """The task of one chunk of a running plan, scheduled at ``at``."""
    return publish_task(config.publish_queue, config.publish_url, env=config.env, chunk=chunk, at=at, attempt=attempt)
