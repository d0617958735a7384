"""Webhook notification handling on fakes: authentication, dedup, debounce, status codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync import errors
from calsync.bootstrap import push_config
from calsync.model import CalendarRecord, ChannelRecord
from calsync.ports import TaskRequest
from calsync.services.channels import hash_token
from calsync.services.push import (
    MAX_BODY_BYTES,
    RateLimiter,
    UnknownChannelCache,
    bucket_end,
    check_body,
    debounce_bucket,
    handle_notification,
    parse_headers,
)
from calsync.testing import FrozenClock, InMemoryStateStore, RecordingTaskQueue
from calsync.testing.settings import local_settings

CONFIG = push_config(local_settings(sync_url="http://sync.local/", debounce_s=30))
TOKEN = "nonce-" + "x" * 37
KEY = "room-1"


class FailingQueue:
    """A queue whose Cloud Tasks is down."""

    def enqueue(self, task: TaskRequest) -> bool:
        raise errors.QueueUnavailable("down")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def store(clock: FrozenClock) -> InMemoryStateStore:
    store = InMemoryStateStore()
    store.put_calendar(CalendarRecord(key=KEY, google_calendar_id="room1@g", kind="room"))
    store.put_channel(
        ChannelRecord(
            channel_id="chan1",
            calendar_key=KEY,
            resource_id="res-1",
            expiration=clock.now() + timedelta(days=7),
            token_hash=hash_token(TOKEN),
            created_at=clock.now(),
        )
    )
    return store


def headers(number: int = 2, state: str = "exists", **over: str) -> dict[str, str]:
    base = {
        "X-Goog-Channel-ID": "chan1",
        "X-Goog-Channel-Token": TOKEN,
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/room1/events",
    }
    base.update(over)
    return base


def handle(store: InMemoryStateStore, queue: object, clock: FrozenClock, hdrs: dict[str, str]):  # type: ignore[no-untyped-def]
    return handle_notification(hdrs, store=store, queue=queue, clock=clock, config=CONFIG)  # type: ignore[arg-type]


def test_exists_enqueues_one_named_sync_task_scheduled_at_bucket_end(store, clock) -> None:
    queue = RecordingTaskQueue()
    outcome = handle(store, queue, clock, headers())
    assert (outcome.http_status, outcome.reason, outcome.enqueued) == (200, "enqueued", True)
    [task] = queue.tasks
    bucket = debounce_bucket(clock.now(), 30)
    assert task.payload["calendar_id"] == KEY
    assert task.payload["reason"] == "webhook"
    assert task.name is not None
    assert task.name.endswith(f"-{bucket}")
    assert task.schedule_time == bucket_end(bucket, 30)
    assert task.schedule_time > clock.now()
    channel = store.get_channel("chan1")
    assert channel is not None
    assert channel.last_message_number == 2
    assert channel.last_webhook_at == clock.now()
    assert channel.last_enqueued_bucket == bucket


def test_burst_in_one_bucket_is_one_task_next_bucket_another(store, clock) -> None:
    queue = RecordingTaskQueue()
    clock.advance(-(clock.now().timestamp() % 30))  # start of a bucket
    for number in (2, 5, 9):
        assert handle(store, queue, clock, headers(number)).http_status == 200
        clock.advance(5)
    assert len(queue.tasks) == 1
    clock.advance(30)
    outcome = handle(store, queue, clock, headers(12, "not_exists"))
    assert outcome.enqueued
    assert len(queue.tasks) == 2
    assert store.get_channel("chan1").last_message_number == 12  # type: ignore[union-attr]


def test_duplicate_or_lower_message_number_is_200_without_enqueue(store, clock) -> None:
    queue = RecordingTaskQueue()
    handle(store, queue, clock, headers(7))
    clock.advance(60)  # a new bucket: only the number decides
    for number in (7, 3):
        outcome = handle(store, queue, clock, headers(number))
        assert (outcome.http_status, outcome.reason, outcome.enqueued) == (200, "duplicate", False)
    assert len(queue.tasks) == 1


def test_sync_state_is_recorded_without_sync(store, clock) -> None:
    queue = RecordingTaskQueue()
    outcome = handle(store, queue, clock, headers(1, "sync"))
    assert (outcome.http_status, outcome.reason) == (200, "sync_message")
    assert queue.tasks == []
    assert store.get_channel("chan1").last_message_number == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"X-Goog-Channel-Token": "wrong"}, "token_mismatch"),
        ({"X-Goog-Resource-ID": "res-other"}, "resource_mismatch"),
        ({"X-Goog-Channel-ID": "nobody"}, "unknown_channel"),
    ],
)
def test_forbidden_cases_enqueue_nothing(store, clock, override, reason) -> None:
    queue = RecordingTaskQueue()
    outcome = handle(store, queue, clock, headers(**override))
    assert (outcome.http_status, outcome.reason) == (403, reason)
    assert queue.tasks == []
    assert store.get_channel("chan1").last_message_number == 0  # type: ignore[union-attr]


def test_missing_token_is_forbidden(store, clock) -> None:
    hdrs = headers()
    del hdrs["X-Goog-Channel-Token"]
    assert handle(store, RecordingTaskQueue(), clock, hdrs).http_status == 403


def test_expired_channel_is_forbidden(store, clock) -> None:
    queue = RecordingTaskQueue()
    clock.advance(8 * 86400)
    outcome = handle(store, queue, clock, headers())
    assert (outcome.http_status, outcome.reason) == (403, "expired_channel")
    assert queue.tasks == []


def test_replaced_channel_is_200_without_work(store, clock) -> None:
    channel = store.get_channel("chan1")
    assert channel is not None
    store.put_channel(channel.model_copy(update={"status": "replaced", "replaced_by": "chan2"}))
    queue = RecordingTaskQueue()
    outcome = handle(store, queue, clock, headers())
    assert (outcome.http_status, outcome.reason) == (200, "replaced_channel")
    assert queue.tasks == []


def test_unknown_channel_is_recorded_rate_limited(store, clock) -> None:
    queue = RecordingTaskQueue()
    for _ in range(3):
        handle(store, queue, clock, headers(**{"X-Goog-Channel-ID": "stray", "X-Goog-Resource-ID": "res-stray"}))
        clock.advance(60)
    seen = store.unknown_channels["stray"]
    assert seen.resource_id == "res-stray"
    assert seen.count == 1  # within the hour: one write
    clock.advance(3600)
    handle(store, queue, clock, headers(**{"X-Goog-Channel-ID": "stray", "X-Goog-Resource-ID": "res-stray"}))
    assert store.unknown_channels["stray"].count == 2


def test_process_rate_limiter_caps_unknown_channel_writes(store, clock) -> None:
    limiter = RateLimiter(rate_per_s=0.0, burst=2)
    for i in range(5):
        handle_notification(
            headers(**{"X-Goog-Channel-ID": f"stray{i}"}),
            store=store,
            queue=RecordingTaskQueue(),
            clock=clock,
            config=CONFIG,
            unknown_limiter=limiter,
        )
    assert len(store.unknown_channels) == 2


class CountingStore(InMemoryStateStore):
    """The fake store, counting channel reads."""

    reads = 0

    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """Count, then read."""
        self.reads += 1
        return super().get_channel(channel_id)


def _cached(store: InMemoryStateStore, clock: FrozenClock, cache: UnknownChannelCache, **over: str):  # type: ignore[no-untyped-def]
    return handle_notification(
        headers(**over), store=store, queue=RecordingTaskQueue(), clock=clock, config=CONFIG, unknown_cache=cache
    )


def test_negative_cache_answers_a_repeated_unknown_id_without_a_store_read(clock) -> None:
    store = CountingStore()
    cache = UnknownChannelCache(max_ids=100)
    for _ in range(5):
        outcome = _cached(store, clock, cache, **{"X-Goog-Channel-ID": "stray"})
        assert (outcome.http_status, outcome.reason) == (403, "unknown_channel")
        clock.advance(10)
    assert store.reads == 1
    clock.advance(CONFIG.unknown_channel_cache_s)  # the entry expires by the injected clock
    _cached(store, clock, cache, **{"X-Goog-Channel-ID": "stray"})
    assert store.reads == 2


def test_negative_cache_skips_sync_messages_that_race_the_watch(store, clock) -> None:
    """Google may send a channel's sync message before the watch returns, so before its record exists."""
    cache = UnknownChannelCache(max_ids=100)
    early = _cached(store, clock, cache, state="sync", **{"X-Goog-Channel-ID": "fresh", "X-Goog-Message-Number": "1"})
    assert (early.http_status, early.reason) == (403, "unknown_channel")
    assert len(cache) == 0
    store.put_channel(store.get_channel("chan1").model_copy(update={"channel_id": "fresh"}))  # type: ignore[union-attr]
    later = _cached(store, clock, cache, **{"X-Goog-Channel-ID": "fresh"})
    assert (later.http_status, later.reason) == (200, "enqueued")


def test_negative_cache_is_bounded(clock) -> None:
    cache = UnknownChannelCache(max_ids=3)
    until = clock.now() + timedelta(minutes=5)
    for i in range(10):
        cache.add(f"id{i}", until)
    assert len(cache) == 3
    assert not cache.contains("id0", clock.now())
    assert cache.contains("id9", clock.now())


def test_unknown_channel_records_are_capped_and_expire(store, clock) -> None:
    config = push_config(local_settings(sync_queue="q", sync_url="http://sync.local/", unknown_channel_max=5))
    for i in range(20):
        handle_notification(
            headers(**{"X-Goog-Channel-ID": f"junk{i}"}),
            store=store,
            queue=RecordingTaskQueue(),
            clock=clock,
            config=config,
        )
        clock.advance(1)
    kept = store.list_unknown_channels()
    assert len(kept) == 5
    assert all(u.expire_at == u.last_seen_at + timedelta(seconds=config.unknown_channel_retention_s) for u in kept)


def test_queue_down_is_503_and_google_retry_is_not_a_duplicate(store, clock) -> None:
    outcome = handle(store, FailingQueue(), clock, headers(4))
    assert (outcome.http_status, outcome.reason) == (503, "queue_unavailable")
    assert store.get_channel("chan1").last_message_number == 0  # type: ignore[union-attr]
    queue = RecordingTaskQueue()
    retry = handle(store, queue, clock, headers(4))
    assert retry.enqueued
    assert len(queue.tasks) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"X-Goog-Message-Number": "abc"},
        {"X-Goog-Message-Number": "0"},
        {"X-Goog-Message-Number": "-1"},
        {"X-Goog-Message-Number": ""},
        {"X-Goog-Resource-State": "add"},
        {"X-Goog-Channel-ID": ""},
        {"X-Goog-Channel-ID": "x" * 65},
        {"X-Goog-Channel-ID": "bad id"},
        {"X-Goog-Resource-ID": ""},
        {"X-Goog-Channel-Token": "t" * 257},
    ],
)
def test_malformed_headers_are_400(store, clock, bad) -> None:
    queue = RecordingTaskQueue()
    outcome = handle(store, queue, clock, headers(**bad))
    assert outcome.http_status == 400
    assert queue.tasks == []


def test_header_names_are_case_insensitive() -> None:
    parsed = parse_headers({k.lower(): v for k, v in headers().items()})
    assert parsed is not None
    assert parsed.channel_id == "chan1"


def test_body_checks() -> None:
    assert check_body(0, b"") is None
    assert check_body(None, b"") is None
    assert check_body(2, b"{}").http_status == 400  # type: ignore[union-attr]
    assert check_body(None, b"x").http_status == 400  # type: ignore[union-attr]
    assert check_body(MAX_BODY_BYTES + 1, b"").http_status == 413  # type: ignore[union-attr]
    assert check_body(None, b"x" * (MAX_BODY_BYTES + 1)).http_status == 413  # type: ignore[union-attr]


_header_text = st.one_of(st.none(), st.text(max_size=80), st.from_regex(r"[A-Za-z0-9_\-]{1,70}", fullmatch=True))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    channel_id=_header_text,
    token=_header_text,
    resource_id=_header_text,
    state=st.one_of(st.none(), st.sampled_from(["sync", "exists", "not_exists", "add", ""]), st.text(max_size=12)),
    number=st.one_of(st.none(), st.integers(-5, 10**20).map(str), st.text(max_size=20)),
)
def test_property_invalid_channel_never_enqueues_and_never_5xx(
    store, clock, channel_id, token, resource_id, state, number
) -> None:
    """Any headers that don't authenticate as chan1 get a 4xx or a no-work 200, and nothing is queued."""
    queue = RecordingTaskQueue()
    hdrs = {
        name: value
        for name, value in {
            "X-Goog-Channel-ID": channel_id,
            "X-Goog-Channel-Token": token,
            "X-Goog-Resource-ID": resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": number,
        }.items()
        if value is not None
    }
    outcome = handle(store, queue, clock, hdrs)
    assert outcome.http_status < 500
    authentic = channel_id == "chan1" and token == TOKEN and resource_id == "res-1"
    if not authentic:
        assert queue.tasks == []
        assert outcome.http_status in (400, 403)
