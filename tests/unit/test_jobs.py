"""Scheduled jobs on fakes: renew (inline and fan-out), poll selection, cleanup retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from calsync import errors
from calsync.model import CalendarRecord, Conflict, MirrorEvent
from calsync.services.channels import ChannelConfig, open_channel
from calsync.services.maintenance import JobsConfig, run_cleanup, run_poll, run_renew, select_poll_candidates
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue

CHANNEL = ChannelConfig(
    webhook_url="https://hooks.example/webhook",
    channel_ttl_s=7 * 86400,
    renew_margin_s=86400,
    sync_queue="calsync-sync",
    sync_url="http://sync.local/",
)
CONFIG = JobsConfig(channel=CHANNEL, renew_url="http://renew.local/", renew_inline_max=3, poll_limit=2)


@pytest.fixture
def env():  # type: ignore[no-untyped-def]
    clock = FrozenClock()
    store = InMemoryStateStore()
    api = FakeCalendarApi(clock)
    return clock, store, api, RecordingTaskQueue()


def add_calendars(env, n: int, **fields) -> list[str]:  # type: ignore[no-untyped-def]
    _clock, store, api, _ = env
    keys = []
    for i in range(n):
        gcal = f"cal{i}@g"
        api.add_calendar(gcal)
        store.put_calendar(CalendarRecord(key=f"k{i}", google_calendar_id=gcal, kind="room", **fields))
        keys.append(f"k{i}")
    return keys


def test_renew_inline_opens_missing_channels_and_second_run_is_harmless(env) -> None:
    clock, store, api, queue = env
    add_calendars(env, 2)
    result = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == {"job": "renew", "due": 2, "fanned_out": False, "opened": 2}
    again = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert again == {"job": "renew", "due": 0, "fanned_out": False}
    assert len(store.list_active_channels()) == 2


def test_renew_fans_out_many_calendars_as_named_tasks(env) -> None:
    clock, store, api, queue = env
    add_calendars(env, 5)
    result = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == {"job": "renew", "due": 5, "fanned_out": True, "enqueued": 5}
    assert {t.payload["calendar_id"] for t in queue.tasks} == {f"k{i}" for i in range(5)}
    assert all(t.payload["job"] == "renew_calendar" and t.url == "http://renew.local/" for t in queue.tasks)
    assert api.calls["watch_events"] == 0
    again = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert again["already_queued"] == 5  # at-least-once scheduler: same names, nothing new


def test_renew_counts_failures_and_skips_reauth(env) -> None:
    clock, store, api, queue = env
    add_calendars(env, 2)
    store.update_calendar("k1", {"status": "needs_reauth"})
    api.fail_next("watch_events", errors.Forbidden("no", status=403, reason="forbidden"))
    result = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == {"job": "renew", "due": 1, "fanned_out": False, "failed": 1}
    assert store.get_calendar("k0").status == "webhook_expired"  # type: ignore[union-attr]


def test_poll_selects_expired_missing_and_stale_oldest_first_within_limit(env) -> None:
    clock, store, api, queue = env
    now = clock.now()
    keys = add_calendars(env, 6, last_synced_at=now - timedelta(minutes=5))
    for key in keys:
        open_channel(key, api=api, store=store, queue=queue, clock=clock, config=CHANNEL)
    queue.pop_all()
    store.update_calendar("k0", {"status": "webhook_expired", "last_synced_at": now - timedelta(minutes=10)})
    store.update_calendar("k1", {"last_synced_at": now - timedelta(hours=3)})  # stale, oldest
    store.update_calendar(
        "k2", {"last_synced_at": now - timedelta(hours=2), "backoff_until": now + timedelta(minutes=5)}
    )
    store.update_calendar("k3", {"last_synced_at": now - timedelta(hours=2), "status": "needs_reauth"})
    for channel in store.list_channels_for_calendar("k4"):
        store.put_channel(channel.model_copy(update={"status": "replaced"}))  # k4 has no live channel
    due = select_poll_candidates(store.list_calendars(), store.list_active_channels(), now, stale_s=3600, limit=10)
    assert [c.key for c in due] == ["k1", "k0", "k4"]
    result = run_poll(store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == {"job": "poll", "due": 2, "enqueued": 2, "already_queued": 0}
    assert [(t.payload["calendar_id"], t.payload["reason"]) for t in queue.tasks] == [("k1", "poll"), ("k0", "poll")]
    again = run_poll(store=store, queue=queue, clock=clock, config=CONFIG)
    assert again["already_queued"] == 2  # same interval: same task names


def test_cleanup_removes_only_data_past_retention(env) -> None:
    clock, store, _, _ = env
    now = clock.now()

    def event(eid: str, days_ago: float) -> MirrorEvent:
        end = now - timedelta(days=days_ago)
        return MirrorEvent(
            calendar_key="k0", external_id=eid, google_calendar_id="g", start=end - timedelta(hours=1), end=end
        )

    # Retention walks the registered calendars (as Firestore's store does).
    store.put_calendar(CalendarRecord(key="k0", google_calendar_id="g", kind="room"))
    store.put_events([event("old", 181), event("edge", 179), event("future", -3), event("ancient", 400)])

    def conflict(cid: str, status: str, resolved_days_ago: float | None) -> Conflict:
        resolved = now - timedelta(days=resolved_days_ago) if resolved_days_ago is not None else None
        return Conflict(
            id=cid,
            kind="moved_in_google",
            calendar_key="k0",
            event_id="e",
            suggestion="s",
            status=status,  # type: ignore[arg-type]
            detected_at=now - timedelta(days=200),
            resolved_at=resolved,
        )

    store.put_conflicts(
        [conflict("c-old", "resolved", 100), conflict("c-new", "resolved", 10), conflict("c-open", "open", None)]
    )
    result = run_cleanup(store=store, clock=clock, config=JobsConfig(channel=CHANNEL, cleanup_batch=1))
    assert result == {"job": "cleanup", "mirror_events_deleted": 2, "conflicts_deleted": 1}
    assert sorted(eid for _, eid in store.events) == ["edge", "future"]
    assert sorted(store.conflicts) == ["c-new", "c-open"]
    assert run_cleanup(store=store, clock=clock, config=CONFIG)["mirror_events_deleted"] == 0
