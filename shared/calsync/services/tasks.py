"""Every Cloud Task calsync enqueues: its body, its target and its deterministic name.

Names make tasks idempotent: Cloud Tasks refuses a second task with a name it has seen (for about an
hour after the first one ran), so a retried trigger, a duplicated notification or a re-run job adds
nothing. Names allow only ``[A-Za-z0-9_-]``, so calendar keys appear as a digest (``task_key``).
Guide: https://cloud.google.com/tasks/docs/tutorial-gcf#deduplicating_tasks

- sync tasks (the sync function's body ``{"calendar_id", "reason", "requested_at"}``): one per
  webhook debounce bucket, poll interval, admin request (10 s), new channel, or continuation page;
- renewal tasks (the renew function's ``{"job": "renew_calendar"}``): one per calendar and hour;
- publish tasks (``{"plan_id", "calendar_key", "chunk"}`` on ``PUBLISH_TASK_ROUTE``): one per plan,
  calendar, chunk and apply attempt.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from calsync.model import PlanChunkProgress, SyncReason
from calsync.ports import TaskRequest

PUBLISH_TASK_ROUTE = "/publish/tasks/apply"
# Requests to force a sync within this many seconds share one task.
ADMIN_SYNC_WINDOW_S = 10


def task_key(calendar_key: str) -> str:
    """A task-name-safe digest of a calendar key (names allow only [A-Za-z0-9_-])."""
    return hashlib.sha256(calendar_key.encode()).hexdigest()[:20]


def sync_task(
    queue: str,
    url: str,
    calendar_key: str,
    reason: SyncReason,
    now: datetime,
    *,
    name: str | None,
    schedule_time: datetime | None = None,
) -> TaskRequest:
    """A sync task for one calendar (the wire field ``calendar_id`` carries calsync's key)."""
    return TaskRequest(
        queue=queue,
        url=url,
        payload={"calendar_id": calendar_key, "reason": reason, "requested_at": now.isoformat()},
        name=name,
        schedule_time=schedule_time,
    )


def continuation_task_name(env: str, calendar_key: str, cursor_id: str, saves: int) -> str:
    """The continuation of a pass out of budget: one per saved position (the pass's ``saves``-th save)."""
    return f"{env}-sync-{task_key(calendar_key)}-cont-{cursor_id}-{saves}"


def admin_sync_task_name(env: str, calendar_key: str, now: datetime) -> str:
    """A sync forced by an admin: requests within ``ADMIN_SYNC_WINDOW_S`` share one name."""
    return f"{env}-sync-{task_key(calendar_key)}-admin-{int(now.timestamp()) // ADMIN_SYNC_WINDOW_S}"


def poll_task_name(calendar_key: str, now: datetime, interval_s: int) -> str:
    """A poll sync: one per calendar and poll interval."""
    return f"sync-poll-{task_key(calendar_key)}-{int(now.timestamp()) // interval_s}"


def channel_sync_task_name(channel_id: str) -> str:
    """The initial sync of a new channel: one per channel."""
    return f"sync-chan-{channel_id}"


def webhook_task_name(calendar_key: str, bucket: int) -> str:
    """The sync of a webhook debounce bucket: one per calendar and bucket."""
    return f"sync-webhook-{task_key(calendar_key)}-{bucket}"


def renew_task_name(calendar_key: str, now: datetime) -> str:
    """Deterministic name of a per-calendar renewal task (one per calendar per hour)."""
    return f"renew-{task_key(calendar_key)}-{now.strftime('%Y%m%d%H')}"


def renew_task(queue: str, url: str, calendar_key: str, now: datetime) -> TaskRequest:
    """A per-calendar renewal task of the renew function's fan-out."""
    return TaskRequest(
        queue=queue,
        url=url,
        payload={"job": "renew_calendar", "calendar_id": calendar_key},
        name=renew_task_name(calendar_key, now),
    )


def publish_task_name(env: str, plan_id: str, calendar_key: str, chunk: int, attempt: int = 0) -> str:
    """The deterministic name of one chunk's task in one apply attempt."""
    name = f"{env}-publish-{plan_id}-{task_key(calendar_key)}-{chunk}"
    return f"{name}-r{attempt}" if attempt else name


def publish_task(
    queue: str, publish_url: str, *, env: str, chunk: PlanChunkProgress, at: datetime, attempt: int
) -> TaskRequest:
    """The task of one chunk of a running plan, scheduled at its paced start."""
    plan_id, calendar_key = chunk.plan_id, chunk.calendar_key
    return TaskRequest(
        queue=queue,
        url=publish_url.rstrip("/") + PUBLISH_TASK_ROUTE,
        payload={"plan_id": plan_id, "calendar_key": calendar_key, "chunk": chunk.chunk},
        name=publish_task_name(env, plan_id, calendar_key, chunk.chunk, attempt),
        schedule_time=at,
    )
