"""Maintenance, the scheduled jobs of the renew function: channel renewal, the polling net, cleanup.

Cloud Scheduler calls them at least once (``{"job": "renew"}`` every 6 h, ``{"job": "poll"}`` every
10 min, ``{"job": "cleanup"}`` daily); each is safe to run twice and returns JSON counts.

- **renew**: calendars whose watch is missing, failed (``webhook_expired``) or expires within the
  margin. Up to ``renew_inline_max`` are renewed inline; above that each becomes a per-calendar task
  (named per calendar and hour, so a re-run adds nothing) so 10,000 channels fit the schedule.
- **poll**: push is "not 100% reliable". Enqueue a ``poll`` sync for calendars that are
  ``webhook_expired``, have no live channel, or whose last good sync is older than the staleness
  limit; at most ``poll_limit``, oldest first, skipping calendars in rate-limit backoff or waiting
  for a human (``needs_reauth``, ``error``). Task names are per calendar and poll interval.
- **cleanup**: delete mirror events that ended before the retention and resolved conflicts older
  than theirs. Firestore only; never touches Google.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from calsync import errors
from calsync.logs import get_logger
from calsync.model import CalendarRecord, ChannelRecord
from calsync.ports import CalendarApi, Clock, PushStore, TaskQueue
from calsync.services.channels import (
    NOT_RENEWABLE_STATUSES,
    ChannelConfig,
    current_channel,
    needs_renewal,
    renew_channel,
)
from calsync.services.tasks import poll_task_name, renew_task, sync_task

log = get_logger(__name__)
EXPIRING_SOON = timedelta(hours=12)

# A cleanup run deletes at most this many batches per kind; the next daily run continues.
CLEANUP_MAX_BATCHES = 40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class JobsConfig:
    """Settings the scheduled jobs need (built by the entry point from ``Settings``)."""

    channel: ChannelConfig
    renew_url: str = ""
    renew_queue: str = "calsync-sync"
    renew_inline_max: int = 10
    poll_limit: int = 100
    poll_stale_s: int = 3600
    poll_interval_s: int = 600
    mirror_retention_days: int = 180
    conflict_retention_days: int = 90
    cleanup_batch: int = 500


def _by_calendar(channels: Sequence[ChannelRecord]) -> dict[str, list[ChannelRecord]]:
    grouped: dict[str, list[ChannelRecord]] = {}
    for channel in channels:
        grouped.setdefault(channel.calendar_key, []).append(channel)
    return grouped


def plan_renewals(
    calendars: Sequence[CalendarRecord], active_channels: Sequence[ChannelRecord], now: datetime, margin_s: float
) -> list[str]:
    """Keys of calendars whose watch is missing, failed or expiring within ``margin_s`` (pure)."""
    grouped = _by_calendar(active_channels)
    return [c.key for c in calendars if needs_renewal(c, current_channel(grouped.get(c.key, []), now), now, margin_s)]


def select_poll_candidates(
    calendars: Sequence[CalendarRecord],
    active_channels: Sequence[ChannelRecord],
    now: datetime,
    *,
    stale_s: float,
    limit: int,
) -> list[CalendarRecord]:
    """Calendars the poll run syncs, oldest last sync first, at most ``limit`` (pure)."""
    grouped = _by_calendar(active_channels)
    stale_before = now - timedelta(seconds=stale_s)
    due = [
        c
        for c in calendars
        if c.status not in NOT_RENEWABLE_STATUSES
        and not (c.backoff_until is not None and c.backoff_until > now)
        and (
            c.status == "webhook_expired"
            or current_channel(grouped.get(c.key, []), now) is None
            or c.last_synced_at is None
            or c.last_synced_at < stale_before
        )
    ]
    due.sort(key=lambda c: (c.last_synced_at or _EPOCH, c.key))
    return due[:limit]


def run_renew(
    *, api: CalendarApi, store: PushStore, queue: TaskQueue, clock: Clock, config: JobsConfig
) -> dict[str, Any]:
    """Renew due channels inline, or fan out per-calendar tasks when there are many; the counts."""
    now = clock.now()
    active = store.list_active_channels()
    for channel in active:
        if channel.expiration is not None and channel.expiration - now < EXPIRING_SOON:
            # Renewal should have replaced it a day ahead: the "channel expiring" alert counts these.
            log.warning("channel.expiring_soon", calendar_key=channel.calendar_key, channel_id=channel.channel_id)
    due = plan_renewals(store.list_calendars(), active, now, config.channel.renew_margin_s)
    counts: Counter[str] = Counter()
    if config.renew_url and len(due) > config.renew_inline_max:
        for key in due:
            task = renew_task(config.renew_queue, config.renew_url, key, now)
            counts["enqueued" if queue.enqueue(task) else "already_queued"] += 1
        return {"job": "renew", "due": len(due), "fanned_out": True, **counts}
    for key in due:
        counts[renew_one(key, api=api, store=store, queue=queue, clock=clock, config=config)] += 1
    return {"job": "renew", "due": len(due), "fanned_out": False, **counts}


def renew_one(
    calendar_key: str, *, api: CalendarApi, store: PushStore, queue: TaskQueue, clock: Clock, config: JobsConfig
) -> str:
    """Renew one calendar (a fan-out task, or one step of an inline run); the outcome."""
    try:
        return renew_channel(calendar_key, api=api, store=store, queue=queue, clock=clock, config=config.channel)
    except errors.UnknownResource:
        return "unknown_calendar"  # deleted between planning and renewal: nothing to do


def run_poll(*, store: PushStore, queue: TaskQueue, clock: Clock, config: JobsConfig) -> dict[str, Any]:
    """Enqueue ``poll`` syncs for calendars push may have missed; the counts."""
    now = clock.now()
    due = select_poll_candidates(
        store.list_calendars(),
        store.list_active_channels(),
        now,
        stale_s=config.poll_stale_s,
        limit=config.poll_limit,
    )
    counts: Counter[str] = Counter()
    channel = config.channel
    for calendar in due:
        name = poll_task_name(calendar.key, now, config.poll_interval_s)
        created = queue.enqueue(sync_task(channel.sync_queue, channel.sync_url, calendar.key, "poll", now, name=name))
        counts["enqueued" if created else "already_queued"] += 1
    return {"job": "poll", "due": len(due), "enqueued": counts["enqueued"], "already_queued": counts["already_queued"]}


def run_cleanup(*, store: PushStore, clock: Clock, config: JobsConfig) -> dict[str, Any]:
    """Delete mirror events past retention and old resolved conflicts, in bounded batches; the counts."""
    now = clock.now()
    mirror_cutoff = now - timedelta(days=config.mirror_retention_days)
    conflict_cutoff = now - timedelta(days=config.conflict_retention_days)
    mirror_deleted = _drain(lambda: store.delete_mirror_events_ended_before(mirror_cutoff, config.cleanup_batch))
    conflicts_deleted = _drain(lambda: store.delete_resolved_conflicts_before(conflict_cutoff, config.cleanup_batch))
    return {"job": "cleanup", "mirror_events_deleted": mirror_deleted, "conflicts_deleted": conflicts_deleted}


def _drain(step: Callable[[], int]) -> int:
    total = 0
    for _ in range(CLEANUP_MAX_BATCHES):
        deleted = step()
        total += deleted
        if deleted == 0:
            break
    return total
