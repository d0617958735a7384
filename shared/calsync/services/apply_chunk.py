"""Publish apply, the task side: run one chunk of a stored plan through ``CalendarApi.execute_batch``:

- inserts use the deterministic id; a 409 ``duplicate`` (a retried insert) is read back and verified
  by its tags — ours and live counts as done; cancelled, untagged or another environment's is not
  touched. A cancelled id is brought back by the planner as an *update* (status confirmed), never an
  insert (Google refuses to reuse an id).
- updates and deletes carry ``If-Match`` with the mirrored etag; a 412 re-reads the event: our write
  already applied (a retried task) is done, anything else goes through the ``Reconciler``, which
  records the conflict when a person edited it. Nothing is overwritten.
- ``sendUpdates=none`` on every write: publishing is mirror maintenance of a schedule agendador
  already communicates; a weekly republish must not e-mail every guest again, and retries of a
  chunk would otherwise notify twice.
- Retryable failures left after the adapter's own retries make the task fail (503), so Cloud Tasks
  retries it; every action is idempotent, and each chunk's progress document is rewritten whole.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    PlanChunkProgress,
    PublishedSnapshot,
)
from calsync.ports import BatchOp, BatchResult, CalendarApi, Clock, PublishStore, TaskQueue
from calsync.results import ChunkDone
from calsync.services.our_events import Desired, event_body, mirror_of_written
from calsync.services.plan import PublishConfig
from calsync.services.plan_actions import PlanAction, action_from
from calsync.services.reconcile import Reconciler

log = get_logger(__name__)

RETRYABLE = (errors.RateLimited, errors.QuotaExhausted, errors.Transient, errors.BatchConflict)
# The quota timeline every publish reserves its calls on (``QuotaStore``).
QUOTA_TIMELINE = "calendar-publish"


def paced_rate_per_s(config: PublishConfig) -> float:
    """Calendar calls per second a publish may make: its share of the per-user quota."""
    return config.requests_per_min * config.quota_share / 60.0


def chunk_interval_s(config: PublishConfig) -> float:
    """Seconds a full chunk (``batch_size`` calls) takes at the paced rate."""
    return config.batch_size / paced_rate_per_s(config)


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
        self.reconciler = Reconciler.of(store, record, clock=clock, env=config.env, time_zone=config.time_zone)
        self.mirror: list[MirrorEvent] = []
        self.reread: list[GoogleEvent] = []

    def op_for(self, a: PlanAction) -> BatchOp:
        """The batch call of one action (``sendUpdates=none``: see the module docstring)."""
        google_calendar_id = self.record.google_calendar_id
        if a.action == "create":
            assert a.desired is not None
            body = event_body(self.config.env, a.allocation_id, a.event_id, a.desired, clinic_id=a.clinic_id)
            return BatchOp(kind="insert", calendar_id=google_calendar_id, body=body, send_updates="none")
        if a.action == "update":
            assert a.desired is not None
            body = event_body(self.config.env, a.allocation_id, a.event_id, a.desired, clinic_id=a.clinic_id)
            return BatchOp(
                kind="update",
                calendar_id=google_calendar_id,
                event_id=a.event_id,
                body=body,
                if_match=a.if_match,
                send_updates="none",
            )
        return BatchOp(
            kind="delete", calendar_id=google_calendar_id, event_id=a.event_id, if_match=a.if_match, send_updates="none"
        )

    def run(self) -> _Outcome:
        """Execute the chunk's calls in one batch and settle every result."""
        actions = [action_from(d) for d in self.progress.actions]
        results = self.api.execute_batch([self.op_for(a) for a in actions])
        for action, result in zip(actions, results, strict=True):
            self.settle(action, result)
        if self.mirror:
            self.reconciler.settle_written(self.mirror)
        if self.reread:
            # Changed in Google since the plan: merged like a sync page (mirror updated, conflicts opened).
            self.reconciler.merge(self.reread)
            log.info(
                "publish.changed_in_google",
                calendar_key=self.record.key,
                count=len(self.reread),
                conflicts_opened=self.reconciler.counts.conflicts_opened,
            )
        return self.outcome

    def _written(self, action: PlanAction, event: GoogleEvent, *, confirmed: bool = True) -> None:
        now = self.clock.now()
        self.mirror.append(
            mirror_of_written(
                event,
                self.record,
                env=self.config.env,
                allocation_id=action.allocation_id,
                clinic_id=action.clinic_id,
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
) -> ChunkDone:
    """Execute one chunk of a running plan (idempotent; ``RateLimited`` when calls must be retried)."""
    progress = store.get_plan_progress(plan_id, calendar_key, chunk)
    if progress is None:
        raise errors.UnknownResource("unknown plan chunk", details={"plan_id": plan_id, "chunk": chunk})
    if progress.finished:
        return ChunkDone(
            plan_id=plan_id,
            calendar_id=calendar_key,
            chunk=chunk,
            done=progress.done,
            skipped=progress.skipped,
            failed=progress.failed,
            again=True,
        )
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
                # A finished chunk is never run again: its titles and attendees need not stay.
                **({"actions": []} if finished else {}),
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
    return ChunkDone(
        plan_id=plan_id,
        calendar_id=calendar_key,
        chunk=chunk,
        done=outcome.done,
        skipped=outcome.skipped,
        failed=outcome.failed,
    )


def _maybe_finish(plan_id: str, store: PublishStore) -> None:
    """Mark the plan done (or failed) once every chunk has finished."""
    chunks = store.list_plan_progress(plan_id)
    if chunks and all(p.finished for p in chunks):
        plan = store.get_plan(plan_id)
        failed = any(p.failed for p in chunks) or bool(plan and plan.errors)
        store.transition_plan(plan_id, "running", {"status": "failed" if failed else "done"})
