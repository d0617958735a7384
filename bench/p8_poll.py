"""P8: the poll and renew jobs at N calendars (10,000 in the full run) on Google's Firestore emulator.

N quiet calendars (push never says anything) are registered with one live channel each, their last
good sync spread over the last ``stale_s`` and their channels' expirations over the next 7 days.
Then, in simulated time (a ``FrozenClock`` moved by the poll interval), the poll job runs again and
again (``run_poll`` on the Firestore store, wrapped in ``ReadCountingStore``); the poll syncs it
enqueues run before the next run and succeed (a quiet calendar: nothing changed; the bench writes
``last_synced_at``, as a sync does). Measured per run: Firestore documents read (and billed: one per
empty query); over the runs: the oldest a quiet calendar gets before the next run could sync it.
The renew job runs once (fan-out, tasks recorded, not run): documents read.

The reference is the previous code path, which read every calendar and every active channel on each
run (``list_calendars`` + ``list_active_channels``, measured once here through the same counter) and
enqueued at most ``poll_limit`` calendars per run, the oldest first (its staleness is simulated on
the same runs by that rule, on the bench's own copy of the sync times).
Production settings: ``poll_stale_s`` 1800, ``poll_interval_s`` 600, ``poll_limit`` 100.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from bench.harness import BenchStack, Row, fmt, ratio
from calsync.model import CalendarRecord, ChannelRecord
from calsync.services.maintenance import run_poll, run_renew
from calsync.testing import FrozenClock, ReadCountingStore, RecordingTaskQueue

WORKERS = 8
STALE_S = 1800
INTERVAL_S = 600
LIMIT = 100
TTL_S = 7 * 86400
RUNS = 2 * STALE_S // INTERVAL_S + 1  # every calendar comes due at least twice
START = datetime.fromisoformat("2026-03-02T12:00:00+00:00")


def run(stack: BenchStack, *, calendars: int) -> list[Row]:
    """Seed ``calendars`` quiet calendars and channels, run the poll job ``RUNS`` times and renew once."""
    stack.reset()
    clock = FrozenClock(START)
    app = stack.container(
        {
            "poll_stale_s": STALE_S,
            "poll_interval_s": INTERVAL_S,
            "poll_limit": LIMIT,
            "renew_margin_s": 86400,
            "renew_inline_max": 0,
            "renew_url": "http://127.0.0.1:9/renew",
        },
        clock=clock,
    )
    firestore, jobs = app.store, app.jobs_config
    keys = [f"room-p8-{i:05d}" for i in range(calendars)]
    synced = {key: START - timedelta(seconds=(i * STALE_S) // calendars) for i, key in enumerate(keys)}

    def seed(index: int) -> None:
        key = keys[index]
        firestore.put_calendar(
            CalendarRecord(key=key, google_calendar_id=f"{key}@g", kind="room", last_synced_at=synced[key])
        )
        firestore.put_channel(
            ChannelRecord(
                channel_id=f"ch-{key}",
                calendar_key=key,
                resource_id="r",
                token_hash="h",
                created_at=START,
                expiration=START + timedelta(seconds=(index * TTL_S) // calendars + 60),
            )
        )

    seed_started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(seed, range(calendars)))
    seed_s = time.monotonic() - seed_started

    store = ReadCountingStore(firestore)
    store.list_calendars()
    store.list_active_channels()
    old_reads = store.counts["billed"]

    queue = RecordingTaskQueue()
    old_synced = dict(synced)
    reads: list[int] = []
    due: list[int] = []
    job_s: list[float] = []
    worst = old_worst = 0.0
    for _ in range(RUNS):
        clock.advance(INTERVAL_S)
        now = clock.now()
        store.reset()
        started = time.monotonic()
        result = run_poll(store=store, queue=queue, clock=clock, config=jobs)
        job_s.append(time.monotonic() - started)
        reads.append(store.counts["billed"])
        due.append(result.due)
        polled = [str(t.payload["calendar_id"]) for t in queue.pop_all()]
        synced_now = {"last_synced_at": now}
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(firestore.update_calendar, polled, [synced_now] * len(polled)))
        synced.update(dict.fromkeys(polled, now))
        _old_rule(old_synced, now)
        next_run = now + timedelta(seconds=INTERVAL_S)
        worst = max(worst, (next_run - min(synced.values())).total_seconds())
        old_worst = max(old_worst, (next_run - min(old_synced.values())).total_seconds())

    store.reset()
    renewal = run_renew(api=app.calendar_api, store=store, queue=queue, clock=clock, config=jobs)
    renew_reads = store.counts["billed"]
    mean_reads = sum(reads) / len(reads)
    n = fmt(calendars)
    per_day = 144 * mean_reads + 4 * renew_reads + old_reads  # poll every 10 min, renew every 6 h, daily audit
    old_per_day = 148 * old_reads
    return [
        Row(
            "P8",
            f"poll at {n} quiet calendars: Firestore reads per run (mean of {RUNS})",
            fmt(mean_reads),
            fmt(old_reads),
            ratio(mean_reads, old_reads),
            f"reads = due calendars ({fmt(min(due))} to {fmt(max(due))} per run, pages of {LIMIT}) + empty pages; "
            f"reference: every calendar and active channel; job {fmt(max(job_s))} s at most (enqueue in memory)",
        ),
        Row(
            "P8",
            f"poll at {n} quiet calendars: worst staleness (s), target {STALE_S}",
            fmt(worst),
            fmt(old_worst),
            ratio(worst, old_worst),
            f"{RUNS} runs every {INTERVAL_S} s in simulated time; reference: {LIMIT} oldest per run "
            f"(the previous rule, simulated on the same runs), which covers {fmt(LIMIT * STALE_S // INTERVAL_S)} "
            f"calendars per {STALE_S} s, so its staleness keeps growing as runs go on",
        ),
        Row(
            "P8",
            f"renew at {n} channels: Firestore reads per run",
            fmt(renew_reads),
            fmt(old_reads),
            ratio(renew_reads, old_reads),
            f"{fmt(renewal.due)} channels expire within the 1-day margin (expirations spread over 7 days), "
            f"{fmt(renewal.enqueued)} tasks fanned out",
        ),
        Row(
            "P8",
            f"poll + renew + cleanup audit at {n} calendars: Firestore reads per day",
            fmt(per_day),
            fmt(old_per_day),
            ratio(per_day, old_per_day),
            f"144 polls + 4 renews (+ the daily watch audit: {fmt(old_reads)}); seeding took {fmt(seed_s)} s",
        ),
    ]


def _old_rule(last: dict[str, datetime], now: datetime) -> None:
    """The previous poll selection on quiet, watched calendars: the ``LIMIT`` oldest of the stale ones."""
    stale_before = now - timedelta(seconds=STALE_S)
    stale = sorted((at, key) for key, at in last.items() if at < stale_before)
    for _, key in stale[:LIMIT]:
        last[key] = now
