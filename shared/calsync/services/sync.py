"""The sync use case: Google Calendar → calsync's mirror, one calendar at a time.

Implements Google's sync guide (https://developers.google.com/workspace/calendar/api/guides/sync)
the way gcal_sync's ``_run_sync`` does, plus what production needs:

- A per-calendar lease (``services.lease``), renewed every page: a second trigger marks it ``pending``
  (the holder runs one more pass before releasing, so duplicate triggers coalesce) and is answered
  "retry after the lease" (``retry_after_s``), so a trigger is not lost with a holder that died. The
  token and cursor are written only while the lease is held (``Lease.commit``).
- Full sync (first run, 410, changed query shape) over the window ``now - past .. now + future`` with
  ``singleEvents``; incremental sync with the stored token only. The token is saved after the last
  page, together with ``QUERY_VERSION``; a 410 clears it and runs exactly one full listing whose
  result is diffed against the mirror (Google sends no tombstones for that gap).
- Each page goes to the ``Reconciler`` (``services.reconcile``): mirror and conflicts are decided
  there, for the sync and for every other use case that learns what Google holds.
- A per-run budget over every loop (pages, extra passes, tombstone diff, overlap re-checks): when it
  runs out, the position is saved as a ``SyncCursor`` and a ``continuation`` task is enqueued. Every
  step is idempotent, so a crash at any point converges.
"""

from __future__ import annotations

import uuid
from dataclasses import KW_ONLY, asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from calsync import errors
from calsync.logs import get_logger
from calsync.model import CalendarRecord, GoogleEvent, SyncReason
from calsync.ports import CalendarApi, Clock, ListEvents, StateStore, TaskQueue
from calsync.services.lease import Budget, Lease, OutOfBudget
from calsync.services.reconcile import READ_CHUNK, ReconcileCounts, Reconciler, chunks
from calsync.services.sync_state import PassState
from calsync.services.tasks import continuation_task_name, sync_task

log = get_logger(__name__)

# Version of the listing's query shape (singleEvents=true, no filters, the adapter's `fields`). A stored
# token made with another shape is not reused: Google ties a token to the query that produced it.
QUERY_VERSION = "1"
Mode = Literal["full", "incremental", "skipped"]
PassOutcome = Literal["done", "continued", "again"]
FINAL_CALENDAR_ERRORS = (errors.AuthRevoked, errors.Forbidden, errors.NotFound, errors.BadRequest)


@dataclass(frozen=True)
class SyncConfig:
    """Settings the sync use case needs (``calsync.bootstrap.sync_config``; no defaults but ``Settings``')."""

    env: str
    sync_queue: str
    sync_url: str
    past_days: int
    future_days: int
    # A full listing this often moves the window with the clock: a token lists only changes, so what
    # enters the window unchanged (the next instances of an endless series) needs one.
    window_refresh_days: int
    lock_lease_s: float  # renewed every page: a dead run's lease ends this soon
    run_budget_s: float  # under the function's 300 s timeout
    time_zone: str  # of the times written in conflict suggestions


@dataclass(frozen=True)
class SyncCommand:
    """Sync one calendar (the body of a sync task)."""

    calendar_key: str
    reason: SyncReason
    requested_at: datetime | None = None
    task_name: str | None = None


@dataclass(kw_only=True)
class SyncSummary(ReconcileCounts):
    """What one invocation did (the function's JSON answer and its summary log line): what its passes'
    reconcilers counted, and the invocation's own figures."""

    calendar_id: str
    mode: Mode = "skipped"
    pages: int = 0
    tombstoned: int = 0
    duration_ms: int = 0
    status: str = "ok"
    continued: bool = False
    error_code: str | None = None
    retry_after_s: float | None = None  # the lease was held: what is left of it

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the sync function's answer."""
        return asdict(self)


def sanitized_error(exc: errors.CalsyncError) -> str:
    """An error message safe to store and show: class code, HTTP status and Google reason only."""
    if isinstance(exc, errors.CalendarApiError):
        return f"{exc.code} (HTTP {exc.status or '-'} {exc.reason or '-'})"
    return exc.code


@dataclass
class SyncService:
    """Runs one sync invocation for one calendar over the ports (one instance per invocation)."""

    command: SyncCommand
    _: KW_ONLY
    api: CalendarApi
    store: StateStore
    queue: TaskQueue
    clock: Clock
    config: SyncConfig
    holder: str | None = None  # the lease holder's id (None: a new one)

    def __post_init__(self) -> None:
        self.calendar_key = self.command.calendar_key
        self.summary = SyncSummary(calendar_id=self.calendar_key)  # the passes' reconcilers count into it
        self.started = self.clock.now()
        holder = self.holder or uuid.uuid4().hex
        self.lease = Lease(self.store, self.calendar_key, holder, clock=self.clock, lease_s=self.config.lock_lease_s)
        self.budget = Budget(self.clock, self.lease, budget_s=self.config.run_budget_s)

    # --- invocation ------------------------------------------------------------------------------

    def run(self) -> SyncSummary:
        """Lock, sync until done (looping while triggers arrived meanwhile), record state, release."""
        calendar = self.store.get_calendar(self.calendar_key)
        if calendar is None:
            raise errors.UnknownResource(
                f"unknown calendar {self.calendar_key}", details={"calendar_id": self.calendar_key}
            )
        if not self.lease.acquire():
            self.summary.status = "locked"
            self.summary.retry_after_s = max(1.0, self.lease.remaining_s())
            log.info(
                "sync.skipped_locked",
                calendar_key=self.calendar_key,
                pending=True,
                retry_after_s=self.summary.retry_after_s,
            )
            return self._finish()
        try:
            self._loop(calendar)
        except errors.LeaseLost:
            raise  # another run holds the calendar now: nothing of ours may be written
        except FINAL_CALENDAR_ERRORS as exc:
            self._record_failure(exc, final=True)
            self.lease.release_fully()
            return self._finish()
        except errors.CalsyncError as exc:
            self._record_failure(exc, final=False)
            self.lease.release_fully()
            raise
        except Exception:
            # Best effort: a lease left behind would only delay the next run until it expires.
            self.lease.release_fully(quiet=True)
            raise
        summary = self._finish()
        # One line per successful sync: the "no successful sync for 1 h" alert counts these per calendar.
        log.info(
            "sync.completed",
            calendar_key=self.calendar_key,
            mode=summary.mode,
            pages=summary.pages,
            fetched=summary.fetched,
            written=summary.written,
            conflicts_opened=summary.conflicts_opened,
        )
        return summary

    def _loop(self, calendar: CalendarRecord) -> None:
        while True:
            outcome = self._run_pass(calendar)
            if outcome == "continued":
                return
            if outcome == "done":
                if not self.lease.release():
                    return
                log.info("sync.pending_pass", calendar_key=self.calendar_key, pending=True)
            if self.budget.spent():
                self._continue_fresh()  # the extra pass runs in a new task, with a budget of its own
                return
            calendar = self._reload()

    def _reload(self) -> CalendarRecord:
        calendar = self.store.get_calendar(self.calendar_key)
        if calendar is None:
            raise errors.UnknownResource(
                f"calendar {self.calendar_key} disappeared", details={"calendar_id": self.calendar_key}
            )
        return calendar

    def _finish(self) -> SyncSummary:
        elapsed = self.clock.now() - self.started
        self.summary.duration_ms = int(elapsed.total_seconds() * 1000)
        return self.summary

    def _record_failure(self, exc: errors.CalsyncError, *, final: bool) -> None:
        fields: dict[str, Any] = {"error_message": sanitized_error(exc), "last_attempt_at": self.clock.now()}
        if isinstance(exc, errors.AuthRevoked):
            fields["status"] = "needs_reauth"
        elif final:
            fields["status"] = "error"
        if isinstance(exc, errors.CalendarApiError) and exc.retry_after_s:
            fields["backoff_until"] = self.clock.now() + timedelta(seconds=exc.retry_after_s)
        self.summary.status = str(fields.get("status", "retry"))
        self.summary.error_code = exc.code
        log.warning(
            "sync.failed",
            calendar_key=self.calendar_key,
            error_code=exc.code,
            status=self.summary.status,
            upstream_reason=getattr(exc, "reason", None),
        )
        try:
            self.lease.commit(calendar_fields=fields)
        except errors.LeaseLost:
            return  # the run holding the calendar now records its own outcome
        except errors.StoreUnavailable:
            if final:
                raise

    # --- one pass --------------------------------------------------------------------------------

    def _start_pass(self, calendar: CalendarRecord) -> PassState:
        cursor = self.store.get_sync_cursor(self.calendar_key)
        if cursor is not None and cursor.query_version == QUERY_VERSION:
            return PassState.of(cursor)
        if cursor is not None:
            self.lease.commit(clear_cursor=True)
        listed = calendar.last_full_sync_at  # a full listing's window falls behind the clock: list it again
        behind = listed is not None and self.clock.now() - listed >= timedelta(days=self.config.window_refresh_days)
        if calendar.sync_token and calendar.sync_query_version == QUERY_VERSION and not behind:
            return PassState(
                mode="incremental",
                cursor_id=uuid.uuid4().hex[:16],
                started_at=self.clock.now(),
                base_sync_token=calendar.sync_token,
            )
        # Always diff: a first full sync that crashed half-way has left mirror entries behind too.
        return self._full_state(tombstone_diff=True)

    def _full_state(self, *, tombstone_diff: bool) -> PassState:
        now = self.clock.now()
        return PassState(
            mode="full",
            cursor_id=uuid.uuid4().hex[:16],
            started_at=now,
            time_min=now - timedelta(days=self.config.past_days),
            time_max=now + timedelta(days=self.config.future_days),
            tombstone_diff=tombstone_diff,
        )

    def _run_pass(self, calendar: CalendarRecord) -> PassOutcome:
        state = self._start_pass(calendar)
        reconciler = Reconciler.of(
            self.store,
            calendar,
            clock=self.clock,
            env=self.config.env,
            time_zone=self.config.time_zone,
            counts=self.summary,
            checkpoint=self.budget.checkpoint,
        )
        while state.next_sync_token is None:
            try:
                page = self._list(calendar.google_calendar_id, state)
            except errors.SyncTokenGone:
                if state.mode != "incremental":
                    raise
                log.warning("sync.full_resync", calendar_key=self.calendar_key, reason="410")
                fields = {"sync_token": None, "sync_query_version": None}
                self.lease.commit(calendar_fields=fields, clear_cursor=state.resumed)
                state = self._full_state(tombstone_diff=True)
                continue
            except errors.BadRequest:
                if not state.resumed:
                    raise
                # A saved page token Google no longer accepts: start that listing again (idempotent).
                log.warning("sync.cursor_restarted", calendar_key=self.calendar_key)
                self.lease.commit(clear_cursor=True)
                state = self._start_pass(self._reload())
                continue
            self.lease.renew()  # the fence of this page's mirror and conflict writes
            try:
                reconciler.merge(self._in_window(page.items, state), calendar_zone=page.time_zone)
            except OutOfBudget:
                return self._continue_later(state)  # before the page's writes: it is listed again
            self._note_mode(state)
            self.summary.pages += 1
            state.pages += 1
            if state.mode == "full":
                state.seen_ids.update(e.id for e in page.items)
                # A series' master is listed only as its instances: their series id is seen too.
                state.seen_ids.update(e.recurring_event_id for e in page.items if e.recurring_event_id)
            if page.next_page_token:
                state.page_token = page.next_page_token
                if self.budget.spent():
                    return self._continue_later(state)
                continue
            if not page.next_sync_token:
                raise errors.Transient("last page without nextSyncToken", reason="noSyncToken")
            state.next_sync_token = page.next_sync_token
        self._note_mode(state)  # also when a continuation only finishes the tombstone diff
        if state.mode == "full" and state.tombstone_diff:
            try:
                self._tombstone_diff(reconciler, state)
            except OutOfBudget:
                return self._continue_later(state)
        self._complete(state, state.next_sync_token)
        return "again" if state.follow_up else "done"

    def _in_window(self, items: list[GoogleEvent], state: PassState) -> list[GoogleEvent]:
        """A page without the series instances outside the sync window that the mirror does not hold.

        A sync token allows no ``timeMax``, so an incremental listing returns a changed series' instances
        far ahead (an infinite series: a year of them); the mirror keeps the window a full sync covers.
        Instances it already holds are still merged, so a moved or cancelled one is never left stale.
        """
        if state.mode != "incremental":
            return items
        lo = state.started_at - timedelta(days=self.config.past_days)
        hi = state.started_at + timedelta(days=self.config.future_days)
        outside = {e.id for e in items if e.recurring_event_id and not _overlaps_window(e, lo, hi)}
        if not outside:
            return items
        known = self.store.get_events(self.calendar_key, sorted(outside))
        return [e for e in items if e.id not in outside or e.id in known]

    def _note_mode(self, state: PassState) -> None:
        self.summary.mode = "full" if state.mode == "full" or self.summary.mode == "full" else "incremental"

    def _list(self, google_calendar_id: str, state: PassState) -> Any:
        if state.mode == "incremental":
            return self.api.list_events(
                ListEvents(google_calendar_id, sync_token=state.base_sync_token, page_token=state.page_token)
            )
        return self.api.list_events(
            ListEvents(
                google_calendar_id,
                page_token=state.page_token,
                time_min=state.time_min,
                time_max=state.time_max,
                single_events=True,
            )
        )

    def _complete(self, state: PassState, next_sync_token: str) -> None:
        """Save the new token last, with the lease: until then a crash re-lists from the old position."""
        now = self.clock.now()
        calendar = self._reload()
        counters = dict(calendar.counters)
        counters["runs"] = counters.get("runs", 0) + 1
        if state.mode == "full":
            counters["full_syncs"] = counters.get("full_syncs", 0) + 1
        fields: dict[str, Any] = {
            "sync_token": next_sync_token,
            "sync_query_version": QUERY_VERSION,
            "last_synced_at": now,
            "last_attempt_at": now,
            "status": "ok",
            "error_message": None,
            "backoff_until": None,
            "counters": counters,
        }
        if state.mode == "full":
            fields["last_full_sync_at"] = now
        self.lease.commit(calendar_fields=fields, clear_cursor=state.resumed or state.page_token is not None)

    def _continue_later(self, state: PassState) -> PassOutcome:
        """Out of budget: save the position with the lease, release it, enqueue a continuation task."""
        state.saves += 1
        cursor = state.cursor(self.calendar_key, QUERY_VERSION)
        self.lease.commit(cursor=cursor)
        if self.lease.release():
            # A trigger arrived during this run: the continuation must run one more incremental pass.
            self.lease.commit(cursor=cursor.model_copy(update={"follow_up": True}))
            self.lease.release()
        self._enqueue_continuation(state.cursor_id, state.saves, pages=state.pages)
        return "continued"

    def _continue_fresh(self) -> None:
        """Out of budget before another pass: release and let a continuation task run it."""
        self.lease.release_fully()
        self._enqueue_continuation(uuid.uuid4().hex[:16], 0, pages=0)

    def _enqueue_continuation(self, cursor_id: str, saves: int, *, pages: int) -> None:
        name = continuation_task_name(self.config.env, self.calendar_key, cursor_id, saves)
        config = self.config
        self.queue.enqueue(
            sync_task(
                config.sync_queue, config.sync_url, self.calendar_key, "continuation", self.clock.now(), name=name
            )
        )
        self.summary.continued = True
        log.info("sync.continued", calendar_key=self.calendar_key, pages=pages, task_name=name, continued=True)

    def _tombstone_diff(self, reconciler: Reconciler, state: PassState) -> None:
        """Mark deleted the mirror events of the window that a complete full listing did not return.

        Budgeted per chunk: what is tombstoned is no longer listed by ``window_event_ids``, so a
        continuation recomputes exactly what is left.
        """
        if state.time_min is None or state.time_max is None:
            return
        known = self.store.window_event_ids(self.calendar_key, state.time_min, state.time_max)
        missing = sorted(known - state.seen_ids)
        if not missing:
            return
        log.info("sync.tombstone_diff", calendar_key=self.calendar_key, count=len(missing))
        for chunk in chunks(missing, READ_CHUNK):
            self.budget.checkpoint()
            before = self.summary.written
            reconciler.merge([GoogleEvent(id=event_id, status="cancelled") for event_id in chunk])
            self.summary.tombstoned += self.summary.written - before


def _overlaps_window(event: GoogleEvent, lo: datetime, hi: datetime) -> bool:
    """Whether an event's time meets ``[lo, hi)`` (a tombstone without times is taken as inside)."""
    start = event.start.as_utc() if event.start else None
    end = event.end.as_utc() if event.end else None
    return start is None or end is None or (start < hi and end > lo)


def sync_calendar(
    command: SyncCommand,
    *,
    api: CalendarApi,
    store: StateStore,
    queue: TaskQueue,
    clock: Clock,
    config: SyncConfig,
    holder: str | None = None,
) -> SyncSummary:
    """Sync one calendar (``UnknownResource`` if the key is not registered; retryable errors raise)."""
    return SyncService(command, api=api, store=store, queue=queue, clock=clock, config=config, holder=holder).run()
