"""Maintenance, the scheduled jobs of the renew function: channel renewal, the polling net, cleanup.

Cloud Scheduler calls them at least once (``{"job": "renew"}`` every 6 h, ``{"job": "poll"}`` every
10 min, ``{"job": "cleanup"}`` daily); each is safe to run twice and returns a typed result
(``calsync.results``). Renew and poll find their work by indexed queries paged with cursors, so a
run reads the documents that are due, not every calendar and channel (10,000 calendars polled every
10 minutes would otherwise cost ~2.9 M reads a day).

- **renew**: calendars whose active channel expires within the margin (or has lapsed) and calendars
  ``webhook_expired`` (a failed watch). Up to ``renew_inline_max`` are renewed inline; above that
  each becomes a per-calendar task (named per calendar and hour, so a re-run adds nothing).
- **poll**: push is "not 100% reliable". Enqueue a ``poll`` sync for every calendar never synced,
  last synced before ``now - (poll_stale_s - poll_interval_s)`` (so none is older than
  ``poll_stale_s`` when the next run comes), or ``webhook_expired``; page by page of ``poll_limit``
  until none is left, skipping calendars in rate-limit backoff or waiting for a human
  (``needs_reauth``, ``error``). Task names are per calendar and poll interval.
- **cleanup**: delete records past their ``expire_at`` (plans with their progress, allocations,
  channels, free/busy states, unknown-channel records; Firestore's TTL policies delete them too), and
  mirror events that ended before the retention and resolved conflicts older
  than theirs; then the watch audit: a calendar ``ok`` without a live channel (registered but never
  watched, or a channel that lapsed) becomes ``webhook_expired``, which the renew and poll queries
  find. Firestore only; never touches Google. The audit is the one full read of calendars and
  channels, once a day.
- **cleanup, people's content** (a migration): mirror documents of people's events written before
  calsync kept busy time only lose their title, description, location and guests. It runs here, not
  on the next sync of the calendar: a sync rewrites only the events Google lists as changed, and its
  merge-write never removes a field, so an unchanged old document would keep its content for ever.
  The daily run reads people's events only (few on calsync calendars) and writes just those that
  still hold content, so it is idempotent and costs nothing once every document is clean.

The due work is derived from fields every calendar and channel document already has
(``last_synced_at``, ``status``, ``expiration``), so existing documents need no migration.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Literal, TypeVar, get_args

from calsync import errors
from calsync.job_results import CleanupRun, PollRun, RenewRun
from calsync.logs import get_logger
from calsync.model import CalendarRecord, ChannelRecord
from calsync.ports import CalendarApi, Clock, ExpiringKind, PushStore, TaskQueue
from calsync.services.channels import (
    NOT_RENEWABLE_STATUSES,
    ChannelConfig,
    RenewOutcome,
    current_channel,
    renew_channel,
)
from calsync.services.tasks import poll_task_name, renew_task, sync_task

log = get_logger(__name__)
EXPIRING_SOON = timedelta(hours=12)

# Records that carry ``expire_at`` (model retention constants): Firestore's TTL deletes them too.
EXPIRING: tuple[ExpiringKind, ...] = get_args(ExpiringKind)
# A cleanup run deletes at most this many batches per kind; the next daily run continues.
CLEANUP_MAX_BATCHES = 40
RENEW_PAGE_SIZE = 500  # channels read per page when looking for the due ones
UNWATCHED_MESSAGE = "no live push channel"
T = TypeVar("T")


@dataclass(frozen=True)
class JobsConfig:
    """Settings the scheduled jobs need (``calsync.bootstrap.jobs_config``; no defaults but ``Settings``')."""

    channel: ChannelConfig
    renew_url: str
    renew_queue: str
    renew_inline_max: int
    poll_limit: int
    poll_stale_s: int
    poll_interval_s: int
    mirror_retention_days: int
    conflict_retention_days: int
    cleanup_batch: int


def _pages(fetch: Callable[[T | None], list[T]], size: int) -> Iterator[list[T]]:
    """Pages of a cursor query until a short page: each document is read once per run."""
    after: T | None = None
    while True:
        page = fetch(after)
        if page:
            yield page
        if len(page) < size:
            return
        after = page[-1]


def renewal_due(store: PushStore, now: datetime, *, margin_s: float, page_size: int) -> tuple[list[str], int]:
    """Keys of calendars whose channel expires within ``margin_s`` or that are ``webhook_expired``
    (by query, in that order, each once), and how many channels expire within ``EXPIRING_SOON``."""
    margin = timedelta(seconds=margin_s)
    due: dict[str, None] = {}
    soon = 0
    for page in _pages(
        lambda after: store.list_active_channels_expiring_before(
            now + max(margin, EXPIRING_SOON), limit=page_size, after=after
        ),
        page_size,
    ):
        for channel in page:
            assert channel.expiration is not None  # the query matches expiring channels only
            if channel.expiration - now < EXPIRING_SOON:
                # Renewal should have replaced it a day ahead: the "channel expiring" alert counts these.
                log.warning("channel.expiring_soon", calendar_key=channel.calendar_key, channel_id=channel.channel_id)
                soon += 1
            if channel.expiration < now + margin:
                due[channel.calendar_key] = None
    for calendar_page in _pages(
        lambda after: store.list_calendars_by_status(
            "webhook_expired", limit=page_size, after_key=after.key if after else None
        ),
        page_size,
    ):
        due.update(dict.fromkeys(c.key for c in calendar_page))
    return list(due), soon


def run_renew(*, api: CalendarApi, store: PushStore, queue: TaskQueue, clock: Clock, config: JobsConfig) -> RenewRun:
    """Renew due channels inline, or fan out per-calendar tasks when there are many; the counts."""
    now = clock.now()
    due, soon = renewal_due(store, now, margin_s=config.channel.renew_margin_s, page_size=RENEW_PAGE_SIZE)
    counts: Counter[str] = Counter()
    fanned_out = bool(config.renew_url) and len(due) > config.renew_inline_max
    for key in due:
        if fanned_out:
            task = renew_task(config.renew_queue, config.renew_url, key, now)
            counts["enqueued" if queue.enqueue(task) else "already_queued"] += 1
        else:
            counts[renew_one(key, api=api, store=store, queue=queue, clock=clock, config=config)] += 1
    return RenewRun.model_validate({"due": len(due), "fanned_out": fanned_out, "expiring_soon": soon, **counts})


def renew_one(
    calendar_key: str, *, api: CalendarApi, store: PushStore, queue: TaskQueue, clock: Clock, config: JobsConfig
) -> RenewOutcome | Literal["unknown_calendar"]:
    """Renew one calendar (a fan-out task, or one step of an inline run); the outcome."""
    try:
        return renew_channel(calendar_key, api=api, store=store, queue=queue, clock=clock, config=config.channel)
    except errors.UnknownResource:
        return "unknown_calendar"  # deleted between planning and renewal: nothing to do


def poll_cutoff(now: datetime, *, stale_s: float, interval_s: float) -> datetime:
    """Calendars last synced before this are polled now: by the next run they would pass ``stale_s``."""
    return now - timedelta(seconds=max(stale_s - interval_s, 0))


def _skipped(calendar: CalendarRecord, now: datetime) -> bool:
    """Waiting for a human, or in rate-limit backoff: not polled this run."""
    in_backoff = calendar.backoff_until is not None and calendar.backoff_until > now
    return calendar.status in NOT_RENEWABLE_STATUSES or in_backoff


def run_poll(*, store: PushStore, queue: TaskQueue, clock: Clock, config: JobsConfig) -> PollRun:
    """Enqueue ``poll`` syncs for every calendar due (stale, never synced or ``webhook_expired``), page by
    page of ``poll_limit``; the counts."""
    now = clock.now()
    size = config.poll_limit
    cutoff = poll_cutoff(now, stale_s=config.poll_stale_s, interval_s=config.poll_interval_s)
    stale = _pages(lambda after: store.list_calendars_synced_before(cutoff, limit=size, after=after), size)
    expired = _pages(
        lambda after: store.list_calendars_by_status(
            "webhook_expired", limit=size, after_key=after.key if after else None
        ),
        size,
    )
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    channel = config.channel
    for pages in (stale, expired):
        for page in pages:
            counts["pages"] += 1
            for calendar in page:
                if calendar.key in seen:
                    continue
                seen.add(calendar.key)
                if _skipped(calendar, now):
                    counts["skipped"] += 1
                    continue
                name = poll_task_name(calendar.key, now, config.poll_interval_s)
                task = sync_task(channel.sync_queue, channel.sync_url, calendar.key, "poll", now, name=name)
                counts["enqueued" if queue.enqueue(task) else "already_queued"] += 1
    return PollRun(
        due=counts["enqueued"] + counts["already_queued"],
        enqueued=counts["enqueued"],
        already_queued=counts["already_queued"],
        skipped=counts["skipped"],
        pages=counts["pages"],
    )


def audit_watches(store: PushStore, now: datetime) -> int:
    """Mark ``webhook_expired`` every ``ok`` calendar without a live channel (so the renew and poll
    queries find it); the count. Reads every calendar and active channel: the daily cleanup only."""
    grouped: dict[str, list[ChannelRecord]] = {}
    for channel in store.list_active_channels():
        grouped.setdefault(channel.calendar_key, []).append(channel)
    marked = 0
    for calendar in store.list_calendars():
        if calendar.status == "ok" and current_channel(grouped.get(calendar.key, []), now) is None:
            store.update_calendar(calendar.key, {"status": "webhook_expired", "error_message": UNWATCHED_MESSAGE})
            log.warning("calendar.unwatched", calendar_key=calendar.key)
            marked += 1
    return marked


def run_cleanup(*, store: PushStore, clock: Clock, config: JobsConfig) -> CleanupRun:
    """Delete mirror events past retention and old resolved conflicts in bounded batches, drop people's
    content from old mirror documents, then audit the watches; the counts."""
    now = clock.now()
    mirror_cutoff = now - timedelta(days=config.mirror_retention_days)
    conflict_cutoff = now - timedelta(days=config.conflict_retention_days)
    mirror_deleted = _drain(lambda: store.delete_mirror_events_ended_before(mirror_cutoff, config.cleanup_batch))
    conflicts_deleted = _drain(lambda: store.delete_resolved_conflicts_before(conflict_cutoff, config.cleanup_batch))
    expired: dict[str, int] = {k: _drain(partial(store.delete_expired, k, now, config.cleanup_batch)) for k in EXPIRING}
    scrubbed = _drain(lambda: store.scrub_people_content(config.cleanup_batch))
    return CleanupRun(
        mirror_events_deleted=mirror_deleted,
        people_content_scrubbed=scrubbed,
        conflicts_deleted=conflicts_deleted,
        expired_deleted=expired,
        unwatched=audit_watches(store, now),
    )


def _drain(step: Callable[[], int]) -> int:
    total = 0
    for _ in range(CLEANUP_MAX_BATCHES):
        deleted = step()
        total += deleted
        if deleted == 0:
            break
    return total
