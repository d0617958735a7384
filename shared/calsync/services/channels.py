"""Push channel lifecycle: open a channel on a calendar (events.watch) and renew it before it expires.

Google never renews a channel: a new one (new id) must be opened before the old one expires, and the
two overlap for a while. The order here is the one that never leaves a calendar without a live
channel and never orphans one: **watch first, persist the new channel, then retire the old one**
(mark it ``replaced`` and call channels.stop; a failed stop is logged, not fatal — the old channel
then simply expires). Stored ids are never overwritten before the new watch succeeded. A failed watch
sets the calendar's status to ``webhook_expired`` so the poll job keeps it in sync meanwhile.

The per-channel token is a random nonce; only its sha256 is stored, and the webhook compares hashes
in constant time. ``expiration`` is always read from Google's answer (the TTL asked for is a wish).

Guide: https://developers.google.com/workspace/calendar/api/guides/push
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from calsync import errors
from calsync.logs import get_logger
from calsync.model import CalendarRecord, ChannelRecord
from calsync.ports import CalendarApi, Clock, PushStore, StateStore, TaskQueue
from calsync.services.sync import sanitized_error
from calsync.services.tasks import channel_sync_task_name, sync_task

log = get_logger(__name__)

RenewOutcome = Literal["fresh", "renewed", "opened", "failed", "skipped"]
# Calendars a human must fix first: a watch would fail the same way (and a retry storm helps nobody).
NOT_RENEWABLE_STATUSES = frozenset({"needs_reauth", "error"})


@dataclass(frozen=True)
class ChannelConfig:
    """Settings the channel lifecycle needs (``calsync.bootstrap.channel_config``; no defaults but ``Settings``')."""

    webhook_url: str
    channel_ttl_s: int
    renew_margin_s: int
    sync_queue: str
    sync_url: str


def new_channel_id() -> str:
    """A fresh channel id (uuid4 hex: 32 characters, within Google's 64)."""
    return uuid.uuid4().hex


def new_nonce() -> str:
    """A fresh per-channel secret sent as the channel token."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a channel token (sha256 hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_channel(
    calendar_key: str,
    *,
    api: CalendarApi,
    store: StateStore,
    queue: TaskQueue,
    clock: Clock,
    config: ChannelConfig,
    initial_sync: bool = True,
) -> ChannelRecord:
    """Watch a calendar with a new channel, persist it, then enqueue an initial sync (``channel_created``).

    Raises ``UnknownResource`` for an unknown calendar and the ``CalendarApiError`` of a failed watch
    (after setting the calendar to ``webhook_expired`` with a sanitized message). A failed enqueue of
    the initial sync is logged only: the channel exists, and the poll job covers the gap.
    """
    calendar = store.get_calendar(calendar_key)
    if calendar is None:
        raise errors.UnknownResource(f"unknown calendar {calendar_key!r}", details={"calendar_key": calendar_key})
    channel_id = new_channel_id()
    nonce = new_nonce()
    try:
        watch = api.watch_events(
            calendar.google_calendar_id,
            channel_id=channel_id,
            address=config.webhook_url,
            token=nonce,
            ttl_s=config.channel_ttl_s,
        )
    except errors.CalendarApiError as exc:
        store.update_calendar(calendar_key, {"status": "webhook_expired", "error_message": sanitized_error(exc)})
        log.warning("channel.watch_failed", calendar_key=calendar_key, error_code=exc.code, http_status=exc.status)
        raise
    now = clock.now()
    record = ChannelRecord(
        channel_id=channel_id,
        calendar_key=calendar_key,
        resource_id=watch.resource_id,
        resource_uri=watch.resource_uri,
        expiration=watch.expiration,
        token_hash=hash_token(nonce),
        created_at=now,
    )
    store.put_channel(record)
    if calendar.status == "webhook_expired":
        store.update_calendar(calendar_key, {"status": "ok", "error_message": None})
    log.info("channel.opened", calendar_key=calendar_key, channel_id=channel_id)
    if initial_sync:
        name = channel_sync_task_name(channel_id)
        task = sync_task(config.sync_queue, config.sync_url, calendar_key, "channel_created", now, name=name)
        try:
            queue.enqueue(task)
        except errors.CalsyncError as exc:
            log.warning("channel.initial_sync_not_enqueued", calendar_key=calendar_key, error_code=exc.code)
    return record


def _live(channel: ChannelRecord, now: datetime) -> bool:
    return channel.status == "active" and (channel.expiration is None or channel.expiration > now)


def current_channel(channels: list[ChannelRecord], now: datetime) -> ChannelRecord | None:
    """The live active channel that expires last, or None."""
    live = [c for c in channels if _live(c, now)]
    return max(live, key=lambda c: (c.expiration is None, c.expiration or now)) if live else None


def needs_renewal(calendar: CalendarRecord, current: ChannelRecord | None, now: datetime, margin_s: float) -> bool:
    """True when a calendar's watch is missing, failed, or expires within the margin."""
    if calendar.status in NOT_RENEWABLE_STATUSES:
        return False
    if calendar.status == "webhook_expired" or current is None:
        return True
    return current.expiration is not None and current.expiration <= now + timedelta(seconds=margin_s)


def retire_channel(
    channel: ChannelRecord,
    *,
    calendar_id: str,
    replaced_by: str | None,
    api: CalendarApi,
    store: StateStore,
    now: datetime,
) -> None:
    """Mark a channel replaced (or expired) and stop it at Google, as the owner of the watched
    ``calendar_id``; a failed stop is logged, not raised."""
    expired = channel.expiration is not None and channel.expiration <= now
    status: Literal["replaced", "expired"] = "expired" if expired and replaced_by is None else "replaced"
    store.put_channel(channel.model_copy(update={"status": status, "replaced_by": replaced_by}))
    if expired:
        return  # Google has dropped it already; nothing to stop.
    try:
        api.stop_channel(calendar_id, channel.channel_id, channel.resource_id)
    except errors.CalendarApiError as exc:
        # Not fatal: the replacement is live; the old channel expires on its own and its late
        # notifications are answered 200 without work because it is marked replaced.
        log.warning(
            "channel.stop_failed", calendar_key=channel.calendar_key, channel_id=channel.channel_id, error_code=exc.code
        )


def renew_channel(
    calendar_key: str,
    *,
    api: CalendarApi,
    store: PushStore,
    queue: TaskQueue,
    clock: Clock,
    config: ChannelConfig,
    force: bool = False,
) -> RenewOutcome:
    """Renew one calendar's watch when it is missing, failed or near expiry; safe to run twice.

    New channel first, persisted, then the old one(s) retired. A failed watch leaves the old channel
    untouched (still live until it expires) and the calendar ``webhook_expired``.
    """
    calendar = store.get_calendar(calendar_key)
    if calendar is None:
        raise errors.UnknownResource(f"unknown calendar {calendar_key!r}", details={"calendar_key": calendar_key})
    if calendar.status in NOT_RENEWABLE_STATUSES:
        return "skipped"
    now = clock.now()
    channels = store.list_channels_for_calendar(calendar_key)
    active = [c for c in channels if c.status == "active"]
    current = current_channel(active, now)
    if not force and not needs_renewal(calendar, current, now, config.renew_margin_s):
        # A crash after persisting a new channel can leave an older one active: retire it now.
        assert current is not None  # needs_renewal is False only with a current channel
        for old in active:
            if old.channel_id != current.channel_id:
                retire_channel(
                    old,
                    calendar_id=calendar.google_calendar_id,
                    replaced_by=current.channel_id,
                    api=api,
                    store=store,
                    now=now,
                )
        return "fresh"
    try:
        # A gap (no live channel, or a failed one) may have lost notifications: sync once opened.
        new = open_channel(
            calendar_key,
            api=api,
            store=store,
            queue=queue,
            clock=clock,
            config=config,
            initial_sync=current is None or calendar.status == "webhook_expired",
        )
    except errors.CalendarApiError:
        return "failed"
    for old in active:
        retire_channel(
            old, calendar_id=calendar.google_calendar_id, replaced_by=new.channel_id, api=api, store=store, now=now
        )
    log.info("channel.renewed", calendar_key=calendar_key, channel_id=new.channel_id, count=len(active))
    return "renewed" if current is not None else "opened"
