"""Publish apply: confirm a stored plan, then write it to Google in paced, per-calendar Cloud Tasks.

``start_apply`` checks the confirmation token(s) (a ``clear_future`` plan needs the second one), re-plans
from the current state and refuses a stale plan (409, nothing written), checks every target calendar
is not another environment's, stores each chunk's actions (≤ ``batch_size`` calls, one batch request)
and enqueues one task per chunk on the publish queue. Tasks are spaced by ``schedule_time`` so the
publish stays under the per-user quota (600 requests/min; one service account is one user for all
calendars) and named (plan, calendar, chunk), so a duplicated or retried task is harmless.

``run_chunk`` (the task handler) executes one chunk through ``CalendarApi.execute_batch``:

- inserts use the deterministic id; a 409 ``duplicate`` (a retried insert) is read back and verified
  by its tags — ours and live counts as done; cancelled, untagged or another environment's is not
  touched. A cancelled id is brought back by the planner as an *update* (status confirmed), never an
  insert (Google refuses to reuse an id).
- updates and deletes carry ``If-Match`` with the mirrored etag; a 412 re-reads the event: our write
  already applied (a retried task) is done, anything else goes through the sync engine's classifier,
  which records the conflict when a person edited it. Nothing is overwritten.
- ``sendUpdates=none`` on every write: publishing is mirror maintenance of a schedule agendador
  already communicates; a weekly republish must not e-mail every guest again (Odoo's lesson), and
  retries of a chunk would otherwise notify twice.
- Retryable failures left after the adapter's own retries make the task fail (503), so Cloud Tasks
  retries it; every action is idempotent, and each chunk's progress document is rewritten whole.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calsync import errors
from calsync.logs import get_logger
from calsync.model import (
    TAG_ALLOCATION,
    TAG_ENV,
    TAG_SOURCE,
    TAG_SOURCE_VALUE,
    CalendarRecord,
    GoogleEvent,
    MirrorEvent,
    Plan,
    PlanChunkProgress,
    PublishedSnapshot,
)
from calsync.ports import BatchOp, BatchResult, CalendarApi, Clock, PublishStore, TaskQueue, TaskRequest
from calsync.services.classify import EVENT_CONFLICT_KINDS, conflict_id, mirror_diverging_kinds
from calsync.services.plan import (
    Desired,
    PlanAction,
    PlanCommand,
    PublishConfig,
    action_dict,
    action_from,
    compute,
    event_body,
    fingerprint,
    hash_token,
)
from calsync.services.sync import SyncCommand, SyncConfig, SyncService, task_key

log = get_logger(__name__)

TASK_ROUTE = "/publish/tasks/apply"
CALENDAR_ENV_MARKER = "calsync-env="
RETRYABLE = (errors.RateLimited, errors.QuotaExhausted, errors.Transient, errors.BatchConflict)


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


def task_name(env: str, plan_id: str, calendar_key: str, chunk: int, attempt: int = 0) -> str:
    """The deterministic name of one chunk's task in one apply attempt."""
    name = f"{env}-publish-{plan_id}-{task_key(calendar_key)}-{chunk}"
    return f"{name}-r{attempt}" if attempt else name


QUOTA_TIMELINE = "calendar-publish"


def paced_rate_per_s(config: PublishConfig) -> float:
    """Calendar calls per second a publish may make: its share of the per-user quota."""
    return config.requests_per_min * config.quota_share / 60.0


def chunk_interval_s(config: PublishConfig) -> float:
    """Seconds a full chunk (``batch_size`` calls) takes at the paced rate."""
    return config.batch_size / paced_rate_per_s(config)


def _task(config: PublishConfig, plan_id: str, key: str, chunk: int, at: datetime, *, attempt: int = 0) -> TaskRequest:
    return TaskRequest(
        queue=config.publish_queue,
        url=config.publish_url.rstrip("/") + TASK_ROUTE,
        payload={"plan_id": plan_id, "calendar_key": key, "chunk": chunk},
        name=task_name(config.env, plan_id, key, chunk, attempt),
        schedule_time=at,
    )


def start_apply(
    cmd: ApplyCommand,
    *,
    store: PublishStore,
    api: CalendarApi,
    queue: TaskQueue,
    clock: Clock,
    config: PublishConfig,
) -> dict[str, Any]:
    """Confirm, check staleness, store the chunks and enqueue their paced tasks; answers the progress."""
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
            _enqueue(again, store, queue, clock, config, only_unfinished=True)
        return plan_progress(plan.id, store=store)
    now = clock.now()
    if now >= plan.expires_at:
        raise errors.StaleState("plan expired, plan again", details={"plan_id": plan.id})
    command = PlanCommand(plan.clinic_id, plan.time_min, plan.time_max, plan.clear_future)
    actions = compute(store, command, config, now)
    if fingerprint(actions) != plan.fingerprint:
        raise errors.StaleState("plan is stale, plan again", details={"plan_id": plan.id})
    writes = [a for a in actions if a.action != "skip"]
    refused = _foreign_calendars(writes, store, api, config)
    guard_errors = [f"{key}: calendar tagged with another environment" for key in sorted(refused)]
    writes = [a for a in writes if a.calendar_key not in refused]
    chunks = _chunks(writes, config.batch_size)
    if not store.transition_plan(
        plan.id,
        "planned",
        {"status": "running", "started_at": now, "chunks": len(chunks), "total_writes": len(writes)}
        | ({"errors": guard_errors} if guard_errors else {}),
    ):
        return plan_progress(plan.id, store=store)
    for (key, index), items in chunks.items():
        store.put_plan_progress(
            PlanChunkProgress(
                plan_id=plan.id,
                calendar_key=key,
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
    _enqueue(running, store, queue, clock, config, only_unfinished=False)
    log.info("publish.apply_started", plan_id=plan.id, total=len(writes), count=len(chunks))
    return plan_progress(plan.id, store=store)


def _chunks(writes: Sequence[PlanAction], size: int) -> dict[tuple[str, int], list[PlanAction]]:
    by_calendar: dict[str, list[PlanAction]] = {}
    for a in writes:
        by_calendar.setdefault(a.calendar_key, []).append(a)
    out: dict[tuple[str, int], list[PlanAction]] = {}
    for key in sorted(by_calendar):
        items = by_calendar[key]
        for index, start in enumerate(range(0, len(items), size)):
            out[(key, index)] = items[start : start + size]
    return out


def _foreign_calendars(
    writes: Sequence[PlanAction], store: PublishStore, api: CalendarApi, config: PublishConfig
) -> set[str]:
    """Target calendars whose Google description carries another environment's tag (never written)."""
    refused: set[str] = set()
    for key in sorted({a.calendar_key for a in writes}):
        record = store.get_calendar(key)
        if record is None:
            refused.add(key)
            continue
        tagged = calendar_env(api.get_calendar(record.google_calendar_id))
        if tagged is not None and tagged != config.env:
            log.warning("publish.foreign_calendar_refused", calendar_key=key, env=tagged)
            refused.add(key)
    return refused


def _enqueue(
    plan: Plan, store: PublishStore, queue: TaskQueue, clock: Clock, config: PublishConfig, *, only_unfinished: bool
) -> int:
    """Enqueue the plan's chunk tasks, round-robin across calendars, paced by their calls.

    Each chunk starts when the calls before it have had their share of the quota, so wall time tracks
    the quota-bound minimum rather than the number of chunks. The plan's whole window is reserved on
    a timeline shared by every publish (``QuotaStore``), so two clinics published at once queue
    behind each other instead of doubling the rate.
    """
    progress = store.list_plan_progress(plan.id)
    if only_unfinished:
        progress = [p for p in progress if not p.finished]
    # Interleave calendars (chunk 0 of each, then chunk 1 ...): every calendar makes progress early.
    ordered = sorted(progress, key=lambda p: (p.chunk, p.calendar_key))
    per_s = paced_rate_per_s(config)
    calls = sum(p.total for p in ordered)
    start = store.reserve_quota(QUOTA_TIMELINE, calls / per_s, clock.now())
    done = 0
    for chunk in ordered:
        at = start + timedelta(seconds=done / per_s)
        queue.enqueue(_task(config, plan.id, chunk.calendar_key, chunk.chunk, at, attempt=plan.apply_attempt))
        done += chunk.total
    return len(ordered)


# --- progress ------------------------------------------------------------------------------------


def plan_progress(plan_id: str, *, store: PublishStore) -> dict[str, Any]:
    """``GET /publish/{plan_id}``: status, done/total overall and per calendar, errors."""
    plan = store.get_plan(plan_id)
    if plan is None:
        raise errors.UnknownResource("unknown plan", details={"plan_id": plan_id})
    per: dict[str, dict[str, Any]] = {}
    errs: list[dict[str, str]] = [{"calendar_id": "", "event_id": "", "code": e} for e in plan.errors]
    for p in store.list_plan_progress(plan_id):
        row = per.setdefault(
            p.calendar_key,
            {"calendar_id": p.calendar_key, "done": 0, "total": 0, "written": 0, "skipped": 0, "failed": 0},
        )
        row["total"] += p.total
        if p.finished:
            row["done"] += p.total
        row["written"] += p.done
        row["skipped"] += p.skipped
        row["failed"] += p.failed
        errs.extend({"calendar_id": p.calendar_key, **e} for e in p.errors)
    calendars = [per[k] for k in sorted(per)]
    return {
        "plan_id": plan.id,
        "status": plan.status,
        "done": sum(c["done"] for c in calendars),
        "total": plan.total_writes
        if plan.status != "planned"
        else plan.totals.get("create", 0) + plan.totals.get("update", 0) + plan.totals.get("delete", 0),
        "errors": errs,
        "calendars": calendars,
    }


# --- the task handler ----------------------------------------------------------------------------


@dataclass
class _Outcome:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    retry: int = 0
    errors: list[dict[str, str]] | None = None

    def fail(self, event_id: str, code: str) -> None:
        self.failed += 1
        (self.errors if self.errors is not None else []).append({"event_id": event_id, "code": code})


def _snapshot(desired: Desired | None, event: GoogleEvent | None, now: datetime, status: str) -> PublishedSnapshot:
    return PublishedSnapshot(
        etag=event.etag if event is not None else None,
        status=status,
        start=desired.start if desired else None,
        end=desired.end if desired else None,
        attendees=list(desired.attendees) if desired else [],
        published_at=now,
    )


def mirror_of_written(
    event: GoogleEvent,
    record: CalendarRecord,
    *,
    env: str,
    allocation_id: str | None,
    desired: Desired | None,
    now: datetime,
    confirmed: bool = True,
) -> MirrorEvent:
    """The mirror record of an event calsync just wrote, with the snapshot of what it published.

    ``confirmed`` False (a duplicate whose content differs from ours) stores no etag in the snapshot,
    so the next sync compares Google's version with ours and records any divergence.
    """
    start = event.start.as_utc() if event.start else None
    end = event.end.as_utc() if event.end else None
    snapshot = _snapshot(desired, event if confirmed else None, now, event.status or "confirmed")
    return MirrorEvent(
        calendar_key=record.key,
        external_id=event.id,
        google_calendar_id=record.google_calendar_id,
        etag=event.etag,
        updated=event.updated,
        status=event.status or "confirmed",
        start=start,
        end=end,
        summary=event.summary,
        attendees=sorted({(a.email or "").lower() for a in event.attendees or [] if a.email}),
        origin="system",
        source_of_truth="backend",
        allocation_id=allocation_id,
        env=env,
        last_synced_at=now,
        published=snapshot,
    )


def record_written(
    store: PublishStore, written: Sequence[MirrorEvent], *, calendar_key: str, now: datetime
) -> dict[str, MirrorEvent]:
    """Record events calsync just wrote, then resolve event conflicts the write made obsolete.

    The record is one transaction (``store.record_published``) that keeps any newer Google content a
    sync stored meanwhile. A ``moved``/``deleted``/``attendees`` conflict whose kind no longer
    diverges between the stored Google content and the new snapshot is resolved: a sync opened it
    against our previous snapshot (it listed our write, or our deletion, before we recorded it).
    """
    stored = store.record_published(written)
    settled_kinds = {
        event_id: [k for k in EVENT_CONFLICT_KINDS if k not in mirror_diverging_kinds(doc)]
        for event_id, doc in stored.items()
        if doc.published is not None
    }
    ids = [conflict_id(calendar_key, event_id, k) for event_id, kinds in settled_kinds.items() for k in kinds]
    if not ids:
        return stored
    settled = [
        c.model_copy(update={"status": "resolved", "resolved_at": now})
        for c in store.get_conflicts(ids).values()
        if c.status == "open"
    ]
    if settled:
        store.put_conflicts(settled)
        for conflict in settled:
            log.info(
                "conflict.resolved",
                calendar_key=calendar_key,
                conflict_id=conflict.id,
                conflict_kind=conflict.kind,
                reason="superseded_by_publish",
            )
    return stored


def event_matches(event: GoogleEvent, desired: Desired) -> bool:
    """True when Google's version of one of our events is exactly what we would write."""
    start = event.start.as_utc() if event.start else None
    end = event.end.as_utc() if event.end else None
    attendees = tuple(sorted({(a.email or "").lower() for a in event.attendees or [] if a.email}))
    return (
        not event.cancelled
        and start == desired.start
        and end == desired.end
        and (event.summary or "") == desired.summary
        and attendees == desired.attendees
    )


def ours(event: GoogleEvent, env: str, allocation_id: str | None) -> bool:
    """True when the event carries our source tag, our environment and the expected allocation."""
    tags = event.private_tags
    return (
        tags.get(TAG_SOURCE) == TAG_SOURCE_VALUE
        and tags.get(TAG_ENV) == env
        and (allocation_id is None or tags.get(TAG_ALLOCATION) == allocation_id)
    )


class ChunkRunner:
    """Runs one chunk of a plan (the body of one publish task)."""

    def __init__(
        self,
        progress: PlanChunkProgress,
        record: CalendarRecord,
        *,
        store: PublishStore,
        api: CalendarApi,
        queue: TaskQueue,
        clock: Clock,
        config: PublishConfig,
    ) -> None:
        self.progress = progress
        self.record = record
        self.store = store
        self.api = api
        self.queue = queue
        self.clock = clock
        self.config = config
        self.outcome = _Outcome(errors=[])
        self.mirror: list[MirrorEvent] = []
        self.reread: list[GoogleEvent] = []

    def op_for(self, a: PlanAction) -> BatchOp:
        """The batch call of one action (``sendUpdates=none``: see the module docstring)."""
        gid = self.record.google_calendar_id
        if a.action == "create":
            assert a.desired is not None
            body = event_body(self.config.env, a.allocation_id, a.event_id, a.desired)
            return BatchOp(kind="insert", calendar_id=gid, body=body, send_updates="none")
        if a.action == "update":
            assert a.desired is not None
            body = event_body(self.config.env, a.allocation_id, a.event_id, a.desired)
            return BatchOp(
                kind="update", calendar_id=gid, event_id=a.event_id, body=body, if_match=a.if_match, send_updates="none"
            )
        return BatchOp(kind="delete", calendar_id=gid, event_id=a.event_id, if_match=a.if_match, send_updates="none")

    def run(self) -> _Outcome:
        """Execute the chunk's calls in one batch and settle every result."""
        actions = [action_from(d) for d in self.progress.actions]
        results = self.api.execute_batch([self.op_for(a) for a in actions])
        for action, result in zip(actions, results, strict=True):
            self.settle(action, result)
        if self.mirror:
            record_written(self.store, self.mirror, calendar_key=self.record.key, now=self.clock.now())
            self._record_overlaps(self.mirror)
        if self.reread:
            self._classify(self.reread)
        return self.outcome

    def _written(self, action: PlanAction, event: GoogleEvent, *, confirmed: bool = True) -> None:
        now = self.clock.now()
        self.mirror.append(
            mirror_of_written(
                event,
                self.record,
                env=self.config.env,
                allocation_id=action.allocation_id,
                desired=action.desired,
                now=now,
                confirmed=confirmed,
            )
        )
        self.outcome.done += 1

    def _deleted(self, action: PlanAction) -> None:
        now = self.clock.now()
        current = self.store.get_events(self.record.key, [action.event_id]).get(action.event_id)
        if current is not None:
            snapshot = (current.published or PublishedSnapshot()).model_copy(
                update={"status": "cancelled", "published_at": now}
            )
            self.mirror.append(current.model_copy(update={"status": "cancelled", "published": snapshot}))
        self.outcome.done += 1

    def settle(self, action: PlanAction, result: BatchResult) -> None:
        """Turn one call's result into done / skipped / failed / retry."""
        error = result.error
        if error is None:
            if action.action == "delete" or result.event is None:
                self._deleted(action)
            else:
                self._written(action, result.event)
            return
        if isinstance(error, RETRYABLE):
            self.outcome.retry += 1
            return
        if action.action == "delete" and isinstance(error, errors.ResourceGone):
            self._deleted(action)  # already deleted: done
            return
        if action.action == "create" and isinstance(error, errors.Duplicate):
            self._verify_duplicate(action)
            return
        if isinstance(error, errors.PreconditionFailed):
            self._precondition_failed(action)
            return
        self.outcome.fail(action.event_id, error.code)

    def _get(self, action: PlanAction) -> GoogleEvent | None:
        try:
            return self.api.get_event(self.record.google_calendar_id, action.event_id)
        except RETRYABLE:
            self.outcome.retry += 1
        except errors.CalendarApiError as exc:
            self.outcome.fail(action.event_id, exc.code)
        return None

    def _verify_duplicate(self, action: PlanAction) -> None:
        """A 409 on our deterministic id: done if the event is ours and live; never touched otherwise."""
        event = self._get(action)
        if event is None:
            return
        if not ours(event, self.config.env, action.allocation_id):
            log.warning("publish.duplicate_not_ours", calendar_key=self.record.key, event_id=action.event_id)
            self.outcome.fail(action.event_id, "duplicate_not_ours")
        elif event.cancelled:
            # Cancelled by someone after our insert: never brought back silently (conflict path).
            self.reread.append(event)
            self.outcome.skipped += 1
        else:
            assert action.desired is not None
            self._written(action, event, confirmed=event_matches(event, action.desired))

    def _precondition_failed(self, action: PlanAction) -> None:
        """412: re-read; our own earlier write (a retried task) is done, a person's edit is a conflict."""
        event = self._get(action)
        if event is None:
            return
        if not ours(event, self.config.env, None):
            self.outcome.fail(action.event_id, "not_ours")
            return
        if action.action == "delete" and event.cancelled:
            self._deleted(action)
        elif action.desired is not None and event_matches(event, action.desired):
            self._written(action, event)
        else:
            self.reread.append(event)
            self.outcome.skipped += 1

    def _record_overlaps(self, written: Sequence[MirrorEvent]) -> None:
        """Our events written on top of (or away from) personal events open (or resolve) overlap conflicts.

        The sync sees these writes only as our own echo (unchanged), so the overlap check happens here.
        """
        sync = SyncService(
            SyncCommand(calendar_key=self.record.key, reason="publish"),
            api=self.api,
            store=self.store,
            queue=self.queue,
            clock=self.clock,
            config=SyncConfig(
                env=self.config.env,
                sync_queue=self.config.sync_queue,
                sync_url=self.config.sync_url,
                time_zone=self.config.time_zone,
            ),
        )
        sync.record_overlaps(written)

    def _classify(self, events: Sequence[GoogleEvent]) -> None:
        """Run re-read events through the sync engine: mirror updated, conflicts recorded."""
        sync = SyncService(
            SyncCommand(calendar_key=self.record.key, reason="publish"),
            api=self.api,
            store=self.store,
            queue=self.queue,
            clock=self.clock,
            config=SyncConfig(
                env=self.config.env,
                sync_queue=self.config.sync_queue,
                sync_url=self.config.sync_url,
                time_zone=self.config.time_zone,
            ),
        )
        sync.process_events(self.record, list(events))
        log.info(
            "publish.changed_in_google",
            calendar_key=self.record.key,
            count=len(events),
            conflicts_opened=sync.summary.conflicts_opened,
        )


def run_chunk(
    plan_id: str,
    calendar_key: str,
    chunk: int,
    *,
    store: PublishStore,
    api: CalendarApi,
    queue: TaskQueue,
    clock: Clock,
    config: PublishConfig,
) -> dict[str, Any]:
    """Execute one chunk of a running plan (idempotent; ``RateLimited`` when calls must be retried)."""
    progress = store.get_plan_progress(plan_id, calendar_key, chunk)
    if progress is None:
        raise errors.UnknownResource("unknown plan chunk", details={"plan_id": plan_id, "chunk": chunk})
    summary = {"plan_id": plan_id, "calendar_id": calendar_key, "chunk": chunk}
    if progress.finished:
        return {**summary, "done": progress.done, "skipped": progress.skipped, "failed": progress.failed, "again": True}
    record = store.get_calendar(calendar_key)
    if record is None:
        raise errors.UnknownResource("unknown calendar", details={"calendar_id": calendar_key})
    runner = ChunkRunner(progress, record, store=store, api=api, queue=queue, clock=clock, config=config)
    outcome = runner.run()
    finished = outcome.retry == 0
    store.put_plan_progress(
        progress.model_copy(
            update={
                "done": outcome.done,
                "skipped": outcome.skipped,
                "failed": outcome.failed,
                "finished": finished,
                "errors": outcome.errors or [],
                "updated_at": clock.now(),
            }
        )
    )
    log.info(
        "publish.chunk",
        plan_id=plan_id,
        calendar_key=calendar_key,
        done=outcome.done,
        skipped=outcome.skipped,
        count=outcome.failed,
        status="finished" if finished else "retry",
    )
    if not finished:
        raise errors.RateLimited(
            "some calls must be retried", status=429, reason="publishRetry", retry_after_s=chunk_interval_s(config)
        )
    _maybe_finish(plan_id, store)
    return {**summary, "done": outcome.done, "skipped": outcome.skipped, "failed": outcome.failed}


def _maybe_finish(plan_id: str, store: PublishStore) -> None:
    """Mark the plan done (or failed) once every chunk has finished."""
    chunks = store.list_plan_progress(plan_id)
    if chunks and all(p.finished for p in chunks):
        plan = store.get_plan(plan_id)
        failed = any(p.failed for p in chunks) or bool(plan and plan.errors)
        store.transition_plan(plan_id, "running", {"status": "failed" if failed else "done"})
