"""Google push notifications: decide what one notification means, then record it and enqueue a sync.

A notification carries no payload, only ``X-Goog-*`` headers saying *that* a calendar changed
(https://developers.google.com/workspace/calendar/api/guides/push#receiving-notifications). The
webhook therefore never calls Calendar: it authenticates the channel, deduplicates, and enqueues one
sync task per (calendar, debounce bucket), scheduled at the end of the bucket so the burst's last
change is already in Google when the sync lists it.

``parse_headers`` and ``decide`` are pure (Cal.com's decision-with-reason shape); ``handle_notification``
performs the I/O around them. Outcomes:

- malformed headers → 400; a body (Google sends none) → 400, or 413 when oversized;
- unknown channel, token or resource id mismatch, expired channel → 403, nothing enqueued (unknown ids
  are recorded, rate-limited, capped and expiring, with their resource id so an admin can stop them);
  an id found unknown is remembered by the process (``UnknownChannelCache``, bounded, expiring) and
  answered 403 again without a store read — except after a ``sync`` message, which Google may send
  before the watch that creates our channel has returned (so before its record exists);
- channel replaced by renewal (or stopped) → 200, no work: stopped channels keep notifying a while;
- message number not above the highest seen → duplicate, 200, no work;
- state ``sync`` → recorded, 200, no sync;
- ``exists``/``not_exists`` → enqueue the bucket's sync task once, record; queue down → 503 so Google
  retries (nothing is recorded first, so the retry is not mistaken for a duplicate).
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calsync import errors
from calsync.logs import get_logger
from calsync.model import ChannelRecord
from calsync.ports import ChannelQueries, ChannelStore, Clock, TaskQueue, TaskRequest
from calsync.ports.queries import UnknownChannelSeen
from calsync.services.channels import hash_token
from calsync.services.tasks import sync_task, webhook_task_name

log = get_logger(__name__)

# Google sends an empty body; anything above this is refused unread (413).
MAX_BODY_BYTES = 1024
# Google documents channel ids as [A-Za-z0-9\-_+/=]{1,64}; tokens up to 256 characters.
_CHANNEL_ID = re.compile(r"[A-Za-z0-9_\-+/=]{1,64}")
_RESOURCE_ID = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII, no spaces
_MESSAGE_NUMBER = re.compile(r"[0-9]{1,18}")
RESOURCE_STATES = ("sync", "exists", "not_exists")

Action = Literal["reject", "ignore", "record", "enqueue"]


class PushHeaders(BaseModel):
    """The ``X-Goog-*`` headers of one notification, validated."""

    model_config = ConfigDict(frozen=True)

    channel_id: str = Field(pattern=f"^{_CHANNEL_ID.pattern}$")
    message_number: int = Field(ge=1)
    resource_state: Literal["sync", "exists", "not_exists"]
    resource_id: str = Field(pattern=f"^{_RESOURCE_ID.pattern}$")
    token: str | None = Field(default=None, max_length=256)


@dataclass(frozen=True)
class PushDecision:
    """What to do with a notification: HTTP status, action and a reason code."""

    action: Action
    http_status: int
    reason: str
    bucket: int | None = None


@dataclass(frozen=True)
class PushConfig:
    """Settings the webhook needs (``calsync.bootstrap.push_config``; no defaults but ``Settings``')."""

    sync_queue: str
    sync_url: str
    debounce_s: int
    unknown_channel_interval_s: int
    unknown_channel_retention_s: int
    unknown_channel_max: int
    unknown_channel_cache_s: int


@dataclass(frozen=True)
class PushOutcome:
    """The webhook's answer and what it did (for the response and the summary log line)."""

    http_status: int
    reason: str
    enqueued: bool = False
    calendar_key: str | None = None
    channel_id: str | None = None
    resource_state: str | None = None
    message_number: int | None = None


class PushStateStore(ChannelStore, ChannelQueries, Protocol):
    """The store as the webhook uses it (structural: any state store implementing both)."""


class RateLimiter:
    """A per-process token bucket (caps writes caused by unauthenticated callers)."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Take a token if one is available."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class UnknownChannelCache:
    """Channel ids this process found unknown, each until an instant: the oldest go beyond ``max_ids``.

    Expiry is judged by the ``Clock`` the webhook passes in, so tests move it like any other time.
    """

    def __init__(self, max_ids: int) -> None:
        self._max_ids = max_ids
        self._until: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._until)

    def contains(self, channel_id: str, now: datetime) -> bool:
        """True while ``channel_id`` is remembered as unknown (an expired entry is dropped)."""
        with self._lock:
            until = self._until.get(channel_id)
            if until is None:
                return False
            if until <= now:
                del self._until[channel_id]
                return False
            return True

    def add(self, channel_id: str, until: datetime) -> None:
        """Remember ``channel_id`` as unknown until ``until``."""
        with self._lock:
            self._until[channel_id] = until
            self._until.move_to_end(channel_id)
            while len(self._until) > self._max_ids:
                self._until.popitem(last=False)


def parse_headers(headers: Mapping[str, str]) -> PushHeaders | None:
    """The validated notification headers, or None when any is missing or malformed."""
    lower = {key.lower(): value for key, value in headers.items()}  # header names are case-insensitive
    number = lower.get("x-goog-message-number", "")
    if not _MESSAGE_NUMBER.fullmatch(number):
        return None
    try:
        return PushHeaders(
            channel_id=lower.get("x-goog-channel-id", ""),
            message_number=int(number),
            resource_state=lower.get("x-goog-resource-state", ""),  # type: ignore[arg-type]  # validated
            resource_id=lower.get("x-goog-resource-id", ""),
            token=lower.get("x-goog-channel-token"),
        )
    except ValidationError:
        return None


def debounce_bucket(now: datetime, debounce_s: int) -> int:
    """The debounce bucket of an instant (buckets are ``debounce_s`` wide, aligned to the epoch)."""
    return int(now.timestamp()) // debounce_s


def bucket_end(bucket: int, debounce_s: int) -> datetime:
    """When a bucket closes: its sync task runs then, after every notification of the bucket."""
    return datetime.fromtimestamp((bucket + 1) * debounce_s, tz=UTC)


def _same(presented: str, stored: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), stored.encode("utf-8"))


def decide(notification: PushHeaders, channel: ChannelRecord | None, now: datetime, debounce_s: int) -> PushDecision:
    """Pure decision for an authenticated-or-not notification against its stored channel."""
    if channel is None:
        return PushDecision("reject", 403, "unknown_channel")
    if not _same(hash_token(notification.token or ""), channel.token_hash):
        return PushDecision("reject", 403, "token_mismatch")
    if not _same(notification.resource_id, channel.resource_id):
        return PushDecision("reject", 403, "resource_mismatch")
    if channel.status in ("replaced", "stopped"):
        return PushDecision("ignore", 200, "replaced_channel")
    if channel.status == "expired" or (channel.expiration is not None and channel.expiration <= now):
        return PushDecision("reject", 403, "expired_channel")
    if notification.message_number <= channel.last_message_number:
        return PushDecision("ignore", 200, "duplicate")
    if notification.resource_state == "sync":
        return PushDecision("record", 200, "sync_message")
    bucket = debounce_bucket(now, debounce_s)
    if channel.last_enqueued_bucket is not None and channel.last_enqueued_bucket >= bucket:
        return PushDecision("record", 200, "debounced", bucket)
    return PushDecision("enqueue", 200, "enqueued", bucket)


def webhook_task(config: PushConfig, calendar_key: str, bucket: int, now: datetime) -> TaskRequest:
    """The sync task of a (calendar, debounce bucket): one name per bucket, run when the bucket closes."""
    return sync_task(
        config.sync_queue,
        config.sync_url,
        calendar_key,
        "webhook",
        now,
        name=webhook_task_name(calendar_key, bucket),
        schedule_time=bucket_end(bucket, config.debounce_s),
    )


def check_body(content_length: int | None, body: bytes) -> PushOutcome | None:
    """400/413 for a notification with a body (Google sends none); None when the body is empty."""
    if (content_length or 0) > MAX_BODY_BYTES or len(body) > MAX_BODY_BYTES:
        return PushOutcome(413, "body_too_large")
    if content_length or body:
        return PushOutcome(400, "unexpected_body")
    return None


def _note_unknown(
    notification: PushHeaders,
    *,
    store: PushStateStore,
    now: datetime,
    config: PushConfig,
    limiter: RateLimiter | None,
    cache: UnknownChannelCache | None,
) -> None:
    """Remember an unknown id in the process (not after a ``sync`` message) and record it, rate-limited."""
    if cache is not None and notification.resource_state != "sync":
        cache.add(notification.channel_id, now + timedelta(seconds=config.unknown_channel_cache_s))
    if limiter is None or limiter.allow():
        store.record_unknown_channel(
            UnknownChannelSeen(
                notification.channel_id,
                notification.resource_id,
                now,
                min_interval_s=config.unknown_channel_interval_s,
                expire_at=now + timedelta(seconds=config.unknown_channel_retention_s),
                max_records=config.unknown_channel_max,
            )
        )


def _reject_unknown(notification: PushHeaders) -> PushOutcome:
    log.warning("webhook.rejected", reason="unknown_channel", channel_id=notification.channel_id)
    return PushOutcome(
        403,
        "unknown_channel",
        channel_id=notification.channel_id,
        resource_state=notification.resource_state,
        message_number=notification.message_number,
    )


def handle_notification(
    headers: Mapping[str, str],
    *,
    store: PushStateStore,
    queue: TaskQueue,
    clock: Clock,
    config: PushConfig,
    unknown_limiter: RateLimiter | None = None,
    unknown_cache: UnknownChannelCache | None = None,
) -> PushOutcome:
    """Authenticate, deduplicate and act on one notification (headers only; check the body first).

    ``StoreUnavailable``/``QueueUnavailable`` become a 503 outcome so Google redelivers.
    """
    notification = parse_headers(headers)
    if notification is None:
        return PushOutcome(400, "malformed_headers")
    if unknown_cache is not None and unknown_cache.contains(notification.channel_id, clock.now()):
        return _reject_unknown(notification)
    try:
        channel = store.get_channel(notification.channel_id)
        now = clock.now()
        decision = decide(notification, channel, now, config.debounce_s)
        calendar_key = channel.calendar_key if channel is not None else None
        if decision.reason == "unknown_channel":
            _note_unknown(
                notification, store=store, now=now, config=config, limiter=unknown_limiter, cache=unknown_cache
            )
        if decision.action == "reject":
            # Counted by the "webhook rejections" log-based metric.
            log.warning("webhook.rejected", reason=decision.reason, channel_id=notification.channel_id)
        if decision.action == "record":
            store.record_notification(notification.channel_id, notification.message_number, now)
        elif decision.action == "enqueue":
            assert channel is not None  # enqueue implies a channel and a bucket
            assert decision.bucket is not None
            queue.enqueue(webhook_task(config, channel.calendar_key, decision.bucket, now))
            # Recorded only after the task exists: a failed enqueue must not make Google's retry a duplicate.
            store.record_notification(
                notification.channel_id, notification.message_number, now, enqueued_bucket=decision.bucket
            )
    except (errors.StoreUnavailable, errors.QueueUnavailable) as exc:
        return PushOutcome(
            503,
            exc.code,
            channel_id=notification.channel_id,
            resource_state=notification.resource_state,
            message_number=notification.message_number,
        )
    return PushOutcome(
        decision.http_status,
        decision.reason,
        enqueued=decision.action == "enqueue",
        calendar_key=calendar_key,
        channel_id=notification.channel_id,
        resource_state=notification.resource_state,
        message_number=notification.message_number,
    )
