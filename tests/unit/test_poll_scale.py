"""Poll and renew at scale on fakes: every quiet calendar synced within ``poll_stale_s`` over simulated
poll runs, and reads per run proportional to the due work (a store that counts the documents read)."""

from __future__ import annotations

from datetime import timedelta

from calsync.bootstrap import jobs_config
from calsync.model import CalendarRecord, ChannelRecord
from calsync.services.maintenance import run_poll, run_renew
from calsync.testing import FrozenClock, InMemoryStateStore, ReadCountingStore, RecordingTaskQueue
from calsync.testing.settings import local_settings

STALE_S = 3600
INTERVAL_S = 600
JOBS = jobs_config(
    local_settings(
        renew_url="http://renew.local/",
        renew_inline_max=0,
        poll_stale_s=STALE_S,
        poll_interval_s=INTERVAL_S,
    )
)
CHANNEL = JOBS.channel


def quiet_calendars(store: InMemoryStateStore, clock: FrozenClock, n: int) -> list[str]:
    """``n`` calendars synced over the last hour, each with a live channel, and no push ever after."""
    now = clock.now()
    keys = [f"q{i:05d}" for i in range(n)]
    for i, key in enumerate(keys):
        synced = now - timedelta(seconds=(i * STALE_S) // n)
        store.put_calendar(CalendarRecord(key=key, google_calendar_id=f"{key}@g", kind="room", last_synced_at=synced))
        store.put_channel(
            ChannelRecord(
                channel_id=f"ch-{key}",
                calendar_key=key,
                resource_id="r",
                token_hash="h",
                created_at=now,
                expiration=now + timedelta(days=6, seconds=i),
            )
        )
    return keys


def test_every_quiet_calendar_is_synced_within_stale_s_with_limit_100() -> None:
    """1,000 quiet calendars, 100 per page: over 6 simulated hours none is ever older than stale_s."""
    clock = FrozenClock()
    store = InMemoryStateStore()
    queue = RecordingTaskQueue()
    keys = quiet_calendars(store, clock, 1000)
    worst = timedelta(0)
    for _ in range(6 * 3600 // INTERVAL_S):
        clock.advance(INTERVAL_S)
        now = clock.now()
        run_poll(store=store, queue=queue, clock=clock, config=JOBS)
        for task in queue.pop_all():
            # The enqueued poll sync runs before the next run and succeeds (quiet: nothing changed).
            store.update_calendar(str(task.payload["calendar_id"]), {"last_synced_at": now})
        for key in keys:
            synced = store.calendars[key].last_synced_at
            assert synced is not None
            # Just before the next run: the oldest a calendar gets.
            worst = max(worst, now + timedelta(seconds=INTERVAL_S) - synced)
    assert worst <= timedelta(seconds=STALE_S)


def test_poll_reads_only_the_due_calendars() -> None:
    """Of 1,000 calendars and channels, a poll run reads the 30 that are due (plus empty-page lookups)."""
    clock = FrozenClock()
    inner = InMemoryStateStore()
    keys = quiet_calendars(inner, clock, 1000)
    now = clock.now()
    for key in keys:
        inner.update_calendar(key, {"last_synced_at": now - timedelta(minutes=5)})
    for key in keys[:30]:
        inner.update_calendar(key, {"last_synced_at": now - timedelta(hours=2)})
    store = ReadCountingStore(inner)
    result = run_poll(store=store, queue=RecordingTaskQueue(), clock=clock, config=JOBS)
    assert (result.due, result.enqueued) == (30, 30)
    assert store.counts["documents"] == 30
    assert store.counts["billed"] <= 30 + 2  # the empty webhook_expired page bills one read
    assert store.counts["list_calendars"] == store.counts["list_active_channels"] == 0


def test_renew_reads_only_the_channels_expiring_within_the_margin() -> None:
    """Of 1,000 channels, the renew run reads the 20 expiring within the margin and fans them out."""
    clock = FrozenClock()
    inner = InMemoryStateStore()
    keys = quiet_calendars(inner, clock, 1000)
    now = clock.now()
    for key in keys[:20]:
        channel = inner.channels[f"ch-{key}"]
        inner.put_channel(channel.model_copy(update={"expiration": now + timedelta(hours=20)}))
    store = ReadCountingStore(inner)
    queue = RecordingTaskQueue()
    result = run_renew(api=None, store=store, queue=queue, clock=clock, config=JOBS)  # type: ignore[arg-type]
    assert (result.due, result.fanned_out, result.enqueued) == (20, True, 20)
    assert {t.payload["calendar_id"] for t in queue.tasks} == set(keys[:20])
    assert store.counts["documents"] == 20
    assert store.counts["list_calendars"] == store.counts["list_active_channels"] == 0
