"""P6: renewal of N push channels (10,000 in the full run): Calendar calls per channel and wall time.

N calendars are created in the emulator and registered, and calsync's ``open_channel`` opens one
channel on each (notifications go to the bare function, which only answers 200). The renewal then
runs as in production when many channels are due: the renew job (``run_renew``) plans and fans out
one named task per calendar, and the tasks run ``renew_one`` (watch the new channel, persist it,
retire and stop the old one) on a pool of concurrent handlers, as Cloud Tasks dispatches them to the
renew function. Every channel is made due by a renewal margin longer than the channel TTL.

The emulator's quota is raised for this benchmark (10,000 channels means ≥ 20,000 calls, far over
600/min/user); in production the renew queue's dispatch rate keeps renewals under the quota.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import BenchStack, Row, fmt
from calsync.model import CalendarRecord
from calsync.services.channels import open_channel
from calsync.services.maintenance import renew_one, run_renew
from calsync.testing import RecordingTaskQueue

WORKERS = 8
TTL_S = 7 * 86400


def run(stack: BenchStack, *, channels: int) -> list[Row]:
    """Open ``channels`` channels, then renew them all; calls per channel and wall time."""
    stack.reset()  # also raises the quota (see the module docstring)
    bare_server, bare_url = stack.start_bare_function()
    try:
        return _run(stack, channels, bare_url)
    finally:
        stack.stop_server(bare_server)


def _run(stack: BenchStack, channels: int, sink_url: str) -> list[Row]:
    app = stack.container(
        {
            "webhook_url": sink_url,
            "sync_url": sink_url,
            "sync_queue": "q",
            "channel_ttl_s": TTL_S,
            # Every channel is due: the margin is longer than the TTL.
            "renew_margin_s": TTL_S * 2,
            "renew_url": "http://127.0.0.1:9/renew",
            "renew_inline_max": 0,
        }
    )
    api, store, clock = app.calendar_api, app.store, app.clock
    queue = RecordingTaskQueue()
    config = app.channel_config
    keys = [f"room-p6-{i:05d}" for i in range(channels)]

    def provision(key: str) -> None:
        gid = api.insert_calendar(key, time_zone="UTC")
        store.put_calendar(CalendarRecord(key=key, google_calendar_id=gid, kind="room"))
        open_channel(key, api=api, store=store, queue=queue, clock=clock, config=config, initial_sync=False)

    setup_started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(provision, keys))
    setup_s = time.monotonic() - setup_started

    emulator = stack.emulator
    emulator.reset_stats()
    jobs = app.jobs_config
    fan_out = RecordingTaskQueue()
    started = time.monotonic()
    planned = run_renew(api=api, store=store, queue=fan_out, clock=clock, config=jobs)
    tasks = fan_out.pop_all()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(
            pool.map(
                lambda t: renew_one(
                    str(t.payload["calendar_id"]), api=api, store=store, queue=queue, clock=clock, config=jobs
                ),
                tasks,
            )
        )
    wall = time.monotonic() - started
    stats = emulator.stats()
    calls = sum(int(v) for v in stats["methods"].values())
    renewed = outcomes.count("renewed")
    live = [c for c in emulator.control("channels", method="GET")["channels"] if c["active"]]
    if renewed != channels or len(live) != channels:
        raise RuntimeError(f"P6: {renewed} renewed, {len(live)} live channels, of {channels}: {planned}")
    methods = ", ".join(f"{k.removeprefix('calendar.')} {fmt(int(v))}" for k, v in sorted(stats["methods"].items()))
    n = fmt(channels)
    return [
        Row(
            "P6",
            f"renew {n} channels: Calendar calls per channel",
            fmt(calls / channels),
            note=f"{methods}; emulator quota raised for this benchmark",
        ),
        Row(
            "P6",
            f"renew {n} channels: wall time (s)",
            fmt(wall),
            note=f"renew job + {fmt(len(tasks))} fanned-out tasks on {WORKERS} concurrent handlers "
            f"({fmt(channels / wall)} channels/s); setup (create + watch) took {fmt(setup_s)} s",
        ),
    ]
