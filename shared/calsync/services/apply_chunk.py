"""Publish apply, the task side: run one chunk of a stored plan through ``CalendarApi.execute_batch``.

Each action is checked again when the chunk runs — chunks run late (quota pacing, task retries up to
an hour) — against the ``Clock`` and Google's current version, read in one batch of ``get`` calls:

- **write-time guards**: the event must still be ours (our tag and this environment) and not started,
  nor may an update move it to a start that has passed; otherwise the action is skipped with the
  planner's reason code (``past_event``, ``untagged_event``, ``foreign_env``), counted per reason in
  the chunk's progress.
- **fields people own are kept**: an update is a read-modify-write of Google's current version
  (``our_events.merged_body``) under ``If-Match`` on the etag just read; only start, end, title,
  attendees (each remaining attendee's entry kept), status and our tags change.
- **a person's edit since the plan**: when Google's etag is not the planned one, the fields calsync
  owns are compared with what it last published. A change to one of them (moved, deleted, re-invited,
  retitled) goes through the ``Reconciler``, which records the conflict, and the action is skipped
  (``open_conflict``), even one equal to what it would write (unless this chunk's earlier run wrote
  it: its batch reached Google, then it died); a change to fields people own only is no conflict.
- inserts use the deterministic id; a 409 ``duplicate`` (a retried insert) is read back and verified
  by its tags — ours and live counts as done; cancelled, untagged or another environment's is not
  touched. A cancelled id is brought back by the planner as an *update*, never an insert.
- **a deleted event is a person's deletion** (``deleted_in_google``, however it is first seen) unless
  this chunk's earlier run sent the delete (``attempts``, stored before the batch): a rerun after a
  crash recognises its own delete even when a sync mirrored the tombstone first.
- ``sendUpdates=none`` on every write: agendador tells guests; a republish must not e-mail them again.
- Retryable failures (and a 412 where only people's fields changed) make the task fail (503), so
  Cloud Tasks retries it; every action is idempotent, and each chunk's progress is rewritten whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime

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
    has_started,
)
from calsync.ports import BatchOp, BatchResult, CalendarApi, Clock, PublishStore
from calsync.results import ChunkDone
from calsync.services.classify import SERIES_KIND, diverging_kinds
from calsync.services.our_events import event_body, event_matches, merged_body, mirror_of_written
from calsync.services.plan import R_CONFLICT, R_FOREIGN, R_PAST, R_UNTAGGED, PlanAction, PublishConfig, action_from
from calsync.services.reconcile import Reconciler
from calsync.services.writers import PACED_RATE_PER_S

log = get_logger(__name__)

RETRYABLE = (errors.RateLimited, errors.QuotaExhausted, errors.Transient, errors.BatchConflict)
# The quota timeline every publish reserves its calls on (``QuotaStore``).
QUOTA_TIMELINE = "calendar-publish"
# Skip reason: our event changed in Google and there is no published snapshot to judge the change by.
R_CHANGED_IN_GOOGLE = "changed_in_google"


def chunk_interval_s(config: PublishConfig) -> float:
    """Seconds a full chunk (``batch_size`` calls) takes at the paced rate."""
    return config.batch_size / PACED_RATE_PER_S


@dataclass
class _Outcome:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    retry: int = 0
    errors: list[dict[str, str]] | None = None
    skip_reasons: Counter[str] = field(default_factory=Counter)

    def fail(self, event_id: str, code: str) -> None:
        self.failed += 1
        (self.errors if self.errors is not None else []).append({"event_id": event_id, "code": code})

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] += 1


def ours(event: GoogleEvent, env: str, allocation_id: str | None) -> bool:
    """True when the event carries our source tag, our environment and the expected allocation."""
    tags = event.private_tags
    return (
        tags.get(TAG_SOURCE) == TAG_SOURCE_VALUE
        and tags.get(TAG_ENV) == env
        and (allocation_id is None or tags.get(TAG_ALLOCATION) == allocation_id)
    )


def not_ours_reason(event: GoogleEvent, env: str) -> str | None:
    """The planner's reason code when ``event`` is not one of ours in ``env`` (None when it is)."""
    tags = event.private_tags
    if tags.get(TAG_SOURCE) != TAG_SOURCE_VALUE:
        return R_UNTAGGED
    if tags.get(TAG_ENV) != env:
        return R_FOREIGN
    if event.recurrence or event.recurring_event_id:  # a person's series of it: a write rewrites every instance
        return SERIES_KIND
    return None


@dataclass
class ChunkRunner:
    """Runs one chunk of a plan (the body of one publish task)."""

    progress: PlanChunkProgress
    record: CalendarRecord
    _: KW_ONLY
    store: PublishStore
    api: CalendarApi
    clock: Clock
    config: PublishConfig

    def __post_init__(self) -> None:
        self.outcome = _Outcome(errors=[])
        self.reconciler = Reconciler.of(
            self.store, self.record, clock=self.clock, env=self.config.env, time_zone=self.config.time_zone
        )
        self.mirror: list[MirrorEvent] = []
        self.reread: list[GoogleEvent] = []
        self.known: dict[str, MirrorEvent] = {}
        self.attempts = self.progress.attempts

    def op_for(self, a: PlanAction, current: GoogleEvent | None = None) -> BatchOp:
        """The batch call of one action (``sendUpdates=none``: see the module docstring)."""
        google_calendar_id, env, clinic = self.record.google_calendar_id, self.config.env, a.clinic_id
        if a.action == "create":
            assert a.desired is not None
            body = event_body(env, a.allocation_id, a.event_id, a.desired, clinic_id=clinic)
            return BatchOp(kind="insert", calendar_id=google_calendar_id, body=body, send_updates="none")
        etag = current.etag if current is not None else a.if_match
        if a.action == "update":
            assert a.desired is not None
            if current is not None:
                body = merged_body(current, env, a.allocation_id, a.event_id, a.desired, clinic_id=clinic)
            else:
                body = event_body(env, a.allocation_id, a.event_id, a.desired, clinic_id=clinic)
            return BatchOp(
                kind="update",
                calendar_id=google_calendar_id,
                event_id=a.event_id,
                body=body,
                if_match=etag,
                send_updates="none",
            )
        return BatchOp(kind="delete", calendar_id=google_calendar_id, event_id=a.event_id, if_match=etag)

    def run(self) -> _Outcome:
        """Re-check every action against the clock and Google, execute the writes in one batch, settle."""
        actions = [action_from(d) for d in self.progress.actions]
        existing = [a for a in actions if a.action != "create"]
        if existing:
            self.known = self.store.get_events(self.record.key, [a.event_id for a in existing])
        current = self._read(existing)
        now = self.clock.now()
        writes: list[tuple[PlanAction, BatchOp]] = []
        for action in actions:
            if action.action == "create":
                assert action.desired is not None
                if has_started(action.desired.start, now):
                    self.outcome.skip(R_PAST)
                else:
                    writes.append((action, self.op_for(action)))
                continue
            event = current.get(action.event_id)
            if event is not None:
                op = self._checked(action, event, now)
                if op is not None:
                    writes.append((action, op))
        if writes:
            # Stored before the batch: a rerun after a crash knows its own writes may have landed.
            self.attempts += 1
            self.store.put_plan_progress(self.progress.model_copy(update={"attempts": self.attempts}))
            results = self.api.execute_batch([op for _, op in writes])
            for (action, _), result in zip(writes, results, strict=True):
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

    def _read(self, actions: list[PlanAction]) -> dict[str, GoogleEvent]:
        """Google's current version of the events to update or delete (one batch of ``get`` calls)."""
        if not actions:
            return {}
        gid = self.record.google_calendar_id
        results = self.api.execute_batch([BatchOp(kind="get", calendar_id=gid, event_id=a.event_id) for a in actions])
        found: dict[str, GoogleEvent] = {}
        for action, result in zip(actions, results, strict=True):
            if result.event is not None:
                found[action.event_id] = result.event
            elif isinstance(result.error, RETRYABLE):
                self.outcome.retry += 1
            else:
                self.outcome.fail(action.event_id, result.error.code if result.error else "not_found")
        return found

    def _checked(self, action: PlanAction, event: GoogleEvent, now: datetime) -> BatchOp | None:
        """The write of an update/delete after the write-time guards, or None when it is settled here."""
        reason = not_ours_reason(event, self.config.env)
        if reason is not None:
            self.outcome.skip(reason)
            return None
        restore = event.cancelled and action.action == "update" and self._we_cancelled(action)
        if event.cancelled and not restore:
            self._cancelled(action, event)
            return None
        start = None if restore or event.start is None else event.start.as_utc()
        if (not restore and has_started(start, now)) or (
            action.desired is not None and has_started(action.desired.start, now)
        ):
            self.outcome.skip(R_PAST)
            return None
        if event.etag != action.if_match:
            if self.progress.attempts > 0 and action.desired is not None and event_matches(event, action.desired):
                self._written(action, event)  # our earlier run's write (see the module docstring)
                return None
            reason = None if restore else self._owned_change(action, event)
            if reason is not None:
                self.reread.append(event)
                self.outcome.skip(reason)
                return None
        return self.op_for(action, event)

    def _we_cancelled(self, action: PlanAction) -> bool:
        """True when what calsync last published of the event is its deletion (a restore may follow)."""
        doc = self.known.get(action.event_id)
        return doc is not None and doc.published is not None and doc.published.status == "cancelled"

    def _owned_change(self, action: PlanAction, event: GoogleEvent) -> str | None:
        """The skip reason when a person changed a field calsync owns since it published (None: theirs only)."""
        doc = self.known.get(action.event_id)
        published = doc.published if doc is not None else None
        if published is None:
            return R_CHANGED_IN_GOOGLE
        return R_CONFLICT if diverging_kinds(event, published) else None

    def _cancelled(self, action: PlanAction, event: GoogleEvent) -> None:
        """Google has the event deleted: our own earlier delete, or a person's (recorded as a conflict)."""
        doc = self.known.get(action.event_id)
        if action.action == "delete" and self._we_cancelled(action):
            self.outcome.done += 1  # our delete, already recorded
        elif action.action == "delete" and self.progress.attempts > 0 and doc is not None:
            self._deleted(action)  # our earlier run sent it and died before recording (the backend wants it gone)
        else:
            self.reread.append(event)
            self.outcome.skip(R_CONFLICT)

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
            self.outcome.skip(R_CONFLICT)
        else:
            assert action.desired is not None
            self._written(action, event, confirmed=event_matches(event, action.desired))

    def _precondition_failed(self, action: PlanAction) -> None:
        """412 between our read and our write: someone changed the event in that instant.

        A deletion or a change to a field calsync owns is a person's edit (recorded, skipped); our
        content is done; a change to people's fields only is retried with the task (read again).
        """
        event = self._get(action)
        if event is None:
            return
        if not ours(event, self.config.env, None):
            self.outcome.fail(action.event_id, "not_ours")
        elif event.cancelled:
            self.reread.append(event)
            self.outcome.skip(R_CONFLICT)
        elif action.desired is not None and event_matches(event, action.desired):
            self._written(action, event)
        elif (reason := self._owned_change(action, event)) is not None:
            self.reread.append(event)
            self.outcome.skip(reason)
        else:
            self.outcome.retry += 1


def run_chunk(
    progress: PlanChunkProgress,
    record: CalendarRecord,
    *,
    store: PublishStore,
    api: CalendarApi,
    clock: Clock,
    config: PublishConfig,
) -> ChunkDone:
    """Execute one unfinished chunk of a running plan on its calendar (idempotent; ``RateLimited`` when
    calls must be retried)."""
    runner = ChunkRunner(progress, record, store=store, api=api, clock=clock, config=config)
    outcome = runner.run()
    finished = outcome.retry == 0
    saved = progress.model_copy(
        update={
            "done": outcome.done,
            "skipped": outcome.skipped,
            "failed": outcome.failed,
            "finished": finished,
            # A finished chunk is never run again: its titles and attendees need not stay.
            **({"actions": []} if finished else {}),
            "errors": outcome.errors or [],
            "attempts": runner.attempts,
            "skip_reasons": {k: v for k, v in sorted(outcome.skip_reasons.items()) if v},
            "updated_at": clock.now(),
        }
    )
    store.put_plan_progress(saved)
    log.info(
        "publish.chunk",
        plan_id=progress.plan_id,
        calendar_key=progress.calendar_key,
        done=outcome.done,
        skipped=outcome.skipped,
        count=outcome.failed,
        status="finished" if finished else "retry",
    )
    if not finished:
        raise errors.RateLimited(
            "some calls must be retried", status=429, reason="publishRetry", retry_after_s=chunk_interval_s(config)
        )
    _maybe_finish(progress.plan_id, store)
    return ChunkDone.of(saved)


def _maybe_finish(plan_id: str, store: PublishStore) -> None:
    """Mark the plan done (or failed) once every chunk has finished."""
    chunks = store.list_plan_progress(plan_id)
    if chunks and all(p.finished for p in chunks):
        plan = store.get_plan(plan_id)
        failed = any(p.failed for p in chunks) or bool(plan and plan.errors)
        store.transition_plan(plan_id, "running", {"status": "failed" if failed else "done"})
