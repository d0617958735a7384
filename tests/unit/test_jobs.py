"""Scheduled jobs on fakes: renew (inline and fan-out), poll selection, cleanup retention and watch audit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from calsync import errors
from calsync.bootstrap import jobs_config
from calsync.job_results import CleanupRun, PollRun, RenewRun
from calsync.model import Allocation, CalendarRecord, Conflict, FreeBusyState, MirrorEvent
from calsync.ports.queries import UnknownChannelSeen
from calsync.services.channels import open_channel
from calsync.services.maintenance import run_cleanup, run_poll, run_renew
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue
from calsync.testing.settings import local_settings

SETTINGS = local_settings(
    renew_url="http://renew.local/",
    renew_inline_max=3,
    poll_limit=2,
)
CONFIG = jobs_config(SETTINGS)
CHANNEL = CONFIG.channel


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


def test_renew_inline_opens_failed_watches_and_second_run_is_harmless(env) -> None:
    clock, store, api, queue = env
    add_calendars(env, 2, status="webhook_expired")
    result = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == RenewRun(due=2, fanned_out=False, opened=2)
    again = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert again == RenewRun(due=0, fanned_out=False)
    assert len(store.list_active_channels()) == 2


def test_renew_finds_channels_expiring_within_the_margin_by_query(env) -> None:
    clock, store, api, queue = env
    keys = add_calendars(env, 4)
    for key in keys:
        open_channel(key, api=api, store=store, queue=queue, clock=clock, config=CHANNEL, initial_sync=False)
    clock.advance(6 * 86400 + 60)  # 7-day channels: all within the 1-day margin, none lapsed
    store.update_calendar("k3", {"status": "needs_reauth"})
    [k2_channel] = store.list_channels_for_calendar("k2")
    store.put_channel(k2_channel.model_copy(update={"expiration": clock.now() + timedelta(days=3)}))
    result = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == RenewRun(due=3, fanned_out=False, renewed=2, skipped=1)
    assert {c.calendar_key for c in store.list_active_channels()} == {"k0", "k1", "k2", "k3"}
    assert run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG).due == 1  # k3 waits for a human


def test_renew_fans_out_many_calendars_as_named_tasks(env) -> None:
    clock, store, api, queue = env
    add_calendars(env, 5, status="webhook_expired")
    result = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == RenewRun(due=5, fanned_out=True, enqueued=5)
    assert {t.payload["calendar_id"] for t in queue.tasks} == {f"k{i}" for i in range(5)}
    assert all(t.payload["job"] == "renew_calendar" and t.url == "http://renew.local/" for t in queue.tasks)
    assert api.calls["watch_events"] == 0
    again = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert again.already_queued == 5  # at-least-once scheduler: same names, nothing new


def test_renew_counts_failures_and_skips_reauth(env) -> None:
    clock, store, api, queue = env
    add_calendars(env, 2, status="webhook_expired")
    store.update_calendar("k1", {"status": "needs_reauth"})
    api.fail_next("watch_events", errors.Forbidden("no", status=403, reason="forbidden"))
    result = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == RenewRun(due=1, fanned_out=False, failed=1)
    assert store.get_calendar("k0").status == "webhook_expired"  # type: ignore[union-attr]


def test_poll_pages_through_stale_and_expired_calendars_skipping_backoff_and_reauth(env) -> None:
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
    store.update_calendar("k4", {"last_synced_at": None})  # never synced
    # Pages of 2 (poll_limit): stale and never synced [k4, k1], [k2, k3], []; webhook_expired [k0].
    result = run_poll(store=store, queue=queue, clock=clock, config=CONFIG)
    assert result == PollRun(due=3, enqueued=3, already_queued=0, skipped=2, pages=3)
    assert [(t.payload["calendar_id"], t.payload["reason"]) for t in queue.tasks] == [
        ("k4", "poll"),
        ("k1", "poll"),
        ("k0", "poll"),
    ]
    again = run_poll(store=store, queue=queue, clock=clock, config=CONFIG)
    assert again.already_queued == 3  # same interval: same task names


def test_poll_syncs_a_calendar_before_it_passes_stale_s(env) -> None:
    """Due once older than stale_s minus one interval: by the next run it would be too old."""
    clock, store, _, queue = env
    now = clock.now()
    add_calendars(env, 2, last_synced_at=now - timedelta(seconds=3600 - 600 + 1))
    store.update_calendar("k1", {"last_synced_at": now - timedelta(seconds=3600 - 600 - 1)})
    result = run_poll(store=store, queue=queue, clock=clock, config=CONFIG)
    assert [t.payload["calendar_id"] for t in queue.tasks] == ["k0"]
    assert result.due == 1


def test_cleanup_audit_marks_calendars_without_a_live_channel_for_renew_and_poll(env) -> None:
    clock, store, api, queue = env
    keys = add_calendars(env, 3, last_synced_at=clock.now())
    for key in keys[:2]:
        open_channel(key, api=api, store=store, queue=queue, clock=clock, config=CHANNEL, initial_sync=False)
    [k1_channel] = store.list_channels_for_calendar("k1")
    store.put_channel(k1_channel.model_copy(update={"expiration": clock.now() - timedelta(minutes=1)}))  # lapsed
    assert run_cleanup(store=store, clock=clock, config=CONFIG).unwatched == 2
    assert [c.key for c in store.list_calendars() if c.status == "webhook_expired"] == ["k1", "k2"]
    renewed = run_renew(api=api, store=store, queue=queue, clock=clock, config=CONFIG)
    assert renewed == RenewRun(due=2, fanned_out=False, expiring_soon=1, opened=2)  # k1's lapsed channel
    assert run_cleanup(store=store, clock=clock, config=CONFIG).unwatched == 0


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
    result = run_cleanup(store=store, clock=clock, config=jobs_config(SETTINGS.model_copy(update={"cleanup_batch": 1})))
    nothing_expired = dict.fromkeys(("plans", "allocations", "channels", "free_busy", "unknown_channels"), 0)
    assert result == CleanupRun(
        mirror_events_deleted=2, conflicts_deleted=1, expired_deleted=nothing_expired, unwatched=1
    )
    assert sorted(eid for _, eid in store.events) == ["edge", "future"]
    assert sorted(store.conflicts) == ["c-new", "c-open"]
    assert run_cleanup(store=store, clock=clock, config=CONFIG).mirror_events_deleted == 0


def test_cleanup_deletes_every_expiring_kind_past_its_retention() -> None:
    store, clock = InMemoryStateStore(), FrozenClock()
    now = clock.now()
    long_ago = now - timedelta(days=400)
    store.put_allocations(
        [
            Allocation(
                id=aid,
                clinic_id="c1",
                professional_id="p",
                room_id="r",
                start=at,
                end=at + timedelta(hours=1),
                status="reviewed",
                attendees=["patient@example.com"],
            )
            for aid, at in (("old", long_ago), ("recent", now - timedelta(days=1)))
        ]
    )
    store.put_free_busy_states([FreeBusyState(clinic_id="c1", professional_id="p", readable=True, checked_at=long_ago)])
    store.record_unknown_channel(
        UnknownChannelSeen(
            "junk", None, long_ago, min_interval_s=1, expire_at=long_ago + timedelta(days=7), max_records=10
        )
    )

    result = run_cleanup(store=store, clock=clock, config=CONFIG)

    assert (result.expired_deleted["allocations"], result.expired_deleted["free_busy"]) == (1, 1)
    assert result.expired_deleted["unknown_channels"] == 1
    assert list(store.get_allocations(["old", "recent"])) == ["recent"]
    assert store.list_free_busy_states() == []
    assert store.list_unknown_channels() == []
