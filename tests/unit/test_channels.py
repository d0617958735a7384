"""Channel lifecycle on fakes: open, renew (new first, then stop old), failures, idempotence."""

from __future__ import annotations

from datetime import timedelta

import pytest

from calsync import errors
from calsync.model import CalendarRecord, ChannelRecord
from calsync.services.channels import ChannelConfig, hash_token, open_channel, renew_channel
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue

GCAL = "room1@group.calendar.google.com"
KEY = "room-1"
CONFIG = ChannelConfig(
    webhook_url="https://hooks.example/webhook",
    channel_ttl_s=7 * 86400,
    renew_margin_s=86400,
    sync_queue="calsync-sync",
    sync_url="http://sync.local/",
)


class StopRecordingApi(FakeCalendarApi):
    """Records, at each channels.stop, which channels the store holds as active (the overlap)."""

    def __init__(self, clock: FrozenClock, store: InMemoryStateStore) -> None:
        super().__init__(clock)
        self.store = store
        self.active_at_stop: list[set[str]] = []
        self.live_at_google_at_stop: list[set[str]] = []
        self.watch_tokens: dict[str, str] = {}

    def stop_channel(self, calendar_id: str, channel_id: str, resource_id: str) -> None:
        self.active_at_stop.append({c.channel_id for c in self.store.list_active_channels()})
        self.live_at_google_at_stop.append(set(self.channels))
        super().stop_channel(calendar_id, channel_id, resource_id)

    def watch_events(self, calendar_id, *, channel_id, address, token, ttl_s):  # type: ignore[no-untyped-def]
        self.watch_tokens[channel_id] = token
        return super().watch_events(calendar_id, channel_id=channel_id, address=address, token=token, ttl_s=ttl_s)


@pytest.fixture
def env():  # type: ignore[no-untyped-def]
    clock = FrozenClock()
    store = InMemoryStateStore()
    api = StopRecordingApi(clock, store)
    api.add_calendar(GCAL)
    store.put_calendar(CalendarRecord(key=KEY, google_calendar_id=GCAL, kind="room"))
    return clock, store, api, RecordingTaskQueue()


def _open(env):  # type: ignore[no-untyped-def]
    clock, store, api, queue = env
    return open_channel(KEY, api=api, store=store, queue=queue, clock=clock, config=CONFIG)


def _renew(env, **kw):  # type: ignore[no-untyped-def]
    clock, store, api, queue = env
    return renew_channel(KEY, api=api, store=store, queue=queue, clock=clock, config=CONFIG, **kw)


def test_open_channel_persists_hashed_nonce_and_enqueues_initial_sync(env) -> None:
    clock, store, api, queue = env
    record = _open(env)
    stored = store.get_channel(record.channel_id)
    assert stored is not None
    assert len(record.channel_id) == 32
    nonce = api.watch_tokens[record.channel_id]
    assert len(nonce) >= 43
    assert stored.token_hash == hash_token(nonce)
    assert nonce not in stored.model_dump_json()
    assert stored.resource_id == f"res-{GCAL}"
    assert stored.expiration == clock.now() + timedelta(seconds=CONFIG.channel_ttl_s)
    assert stored.status == "active"
    [task] = queue.tasks
    assert task.payload["reason"] == "channel_created"
    assert task.payload["calendar_id"] == KEY


def test_open_channel_unknown_calendar(env) -> None:
    clock, store, api, queue = env
    with pytest.raises(errors.UnknownResource):
        open_channel("nope", api=api, store=store, queue=queue, clock=clock, config=CONFIG)


def test_renew_fresh_channel_is_a_no_op(env) -> None:
    _clock, store, api, _queue = env
    first = _open(env)
    assert _renew(env) == "fresh"
    assert _renew(env) == "fresh"
    assert [c.channel_id for c in store.list_active_channels()] == [first.channel_id]
    assert api.calls["watch_events"] == 1


def test_renew_near_expiry_opens_new_before_stopping_old(env) -> None:
    clock, store, api, queue = env
    old = _open(env)
    queue.pop_all()
    clock.advance(CONFIG.channel_ttl_s - 3600)  # within the 24 h margin
    assert _renew(env) == "renewed"
    [new] = store.list_active_channels()
    assert new.channel_id != old.channel_id
    # When the old one was stopped the new one was already watching and stored as the active one:
    # never a moment without a live channel.
    assert api.live_at_google_at_stop == [{old.channel_id, new.channel_id}]
    assert api.active_at_stop == [{new.channel_id}]
    retired = store.get_channel(old.channel_id)
    assert retired is not None
    assert (retired.status, retired.replaced_by) == ("replaced", new.channel_id)
    assert old.channel_id not in api.channels
    assert queue.tasks == []  # overlap: nothing was missed, no extra sync
    assert _renew(env) == "fresh"  # re-running is harmless


def test_failed_watch_keeps_old_channel_and_marks_calendar(env) -> None:
    clock, store, api, queue = env
    old = _open(env)
    clock.advance(CONFIG.channel_ttl_s - 3600)
    api.fail_next("watch_events", errors.Transient("backend", status=503, reason="backendError"))
    assert _renew(env) == "failed"
    calendar = store.get_calendar(KEY)
    assert calendar is not None
    assert calendar.status == "webhook_expired"
    assert calendar.error_message == "transient (HTTP 503 backendError)"
    kept = store.get_channel(old.channel_id)
    assert kept is not None
    assert kept.status == "active"
    assert old.channel_id in api.channels  # never stopped
    # Next run succeeds: status back to ok, a sync is queued for the possible gap.
    queue.pop_all()
    assert _renew(env) == "renewed"
    assert store.get_calendar(KEY).status == "ok"  # type: ignore[union-attr]
    assert [t.payload["reason"] for t in queue.tasks] == ["channel_created"]


def test_failed_stop_is_not_fatal(env) -> None:
    clock, store, api, _queue = env
    old = _open(env)
    clock.advance(CONFIG.channel_ttl_s - 60)
    api.fail_next("stop_channel", errors.Transient("backend", status=500, reason="backendError"))
    assert _renew(env) == "renewed"
    assert store.get_channel(old.channel_id).status == "replaced"  # type: ignore[union-attr]


def test_missing_channel_is_opened_and_synced(env) -> None:
    _, store, _, queue = env
    assert _renew(env) == "opened"
    assert len(store.list_active_channels()) == 1
    assert [t.payload["reason"] for t in queue.tasks] == ["channel_created"]


def test_expired_channel_is_replaced_and_marked_expired(env) -> None:
    clock, store, _api, _queue = env
    old = _open(env)
    clock.advance(CONFIG.channel_ttl_s + 60)
    assert _renew(env) == "opened"
    assert store.get_channel(old.channel_id).status == "replaced"  # type: ignore[union-attr]


def test_leftover_active_channel_is_retired_on_next_run(env) -> None:
    """A crash after persisting the new channel leaves two active: the next run converges."""
    clock, store, _api, _queue = env
    old = _open(env)
    clock.advance(3600)
    newer = _open(env)
    assert _renew(env) == "fresh"
    assert [c.channel_id for c in store.list_active_channels()] == [newer.channel_id]
    assert store.get_channel(old.channel_id).replaced_by == newer.channel_id  # type: ignore[union-attr]


def test_needs_reauth_calendar_is_skipped(env) -> None:
    _, store, api, _ = env
    store.update_calendar(KEY, {"status": "needs_reauth"})
    assert _renew(env) == "skipped"
    assert api.calls["watch_events"] == 0


def test_channel_record_fields_roundtrip() -> None:
    record = ChannelRecord(
        channel_id="c", calendar_key=KEY, resource_id="r", token_hash="h", created_at=FrozenClock().now()
    )
    assert record.last_enqueued_bucket is None
