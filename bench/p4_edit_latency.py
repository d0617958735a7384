"""P4: a person's edit in Google → calsync's mirror updated, p50/p99, through the whole push path.

Calendar emulator push → webhook function → Cloud Tasks emulator (task scheduled at the end of the
debounce bucket) → sync function → Firestore emulator. The channel is opened by calsync's own
``open_channel``. Each edit moves one event of the calendar by 15 minutes through the Calendar API;
the clock runs from just before the edit call until the mirror document shows the new start (polled
every 20 ms). Edits are sequential, so each one's latency includes the wait for its debounce bucket
to close (uniform in 0..debounce) plus task dispatch and one incremental sync.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import cast

from bench.harness import BenchStack, Row, fmt, percentile, wait_for
from calsync.adapters.cloud_tasks import CloudTasksQueue
from calsync.model import CalendarRecord
from calsync.ports import CalendarApi, StateStore
from calsync.services.channels import open_channel
from devstack.procs import HOST, free_port

KEY = "room-p4"
QUEUE = "bench-p4-sync"
EVENTS = 20
PRODUCTION_DEBOUNCE_S = 30


def edit_once(api: CalendarApi, store: StateStore, gcal: str, event_id: str) -> float:
    """Move one event by 15 minutes as a person would; seconds until the mirror shows the new start."""
    current = api.get_event(gcal, event_id)
    if current.start is None or current.start.date_time is None:
        raise RuntimeError("P4: seeded events have a dateTime start")
    start = current.start.date_time + timedelta(minutes=15)
    body = current.to_api()
    body["start"] = {"dateTime": start.isoformat()}
    body["end"] = {"dateTime": (start + timedelta(hours=1)).isoformat()}
    expected = start.astimezone(UTC)
    started = time.monotonic()
    api.update_event(gcal, event_id, body)
    wait_for(
        lambda: (m := store.get_events(KEY, [event_id]).get(event_id)) and m.start == expected,
        timeout_s=60,
        what="P4 mirror update",
        interval_s=0.02,
    )
    elapsed = time.monotonic() - started
    time.sleep(0.1)  # edits are spaced a little, as a person's are
    return elapsed


def run(stack: BenchStack, *, edits: int, debounce_s: int) -> list[Row]:
    """Measure ``edits`` sequential edits with a ``debounce_s`` webhook debounce."""
    stack.reset()
    ports = {"sync": free_port(), "webhook": free_port()}
    urls = {name: f"http://{HOST}:{port}/" for name, port in ports.items()}
    app = stack.container(
        {
            "sync_queue": QUEUE,
            "sync_url": urls["sync"],
            "webhook_url": urls["webhook"],
            "channel_ttl_s": 7 * 86400,
            "renew_margin_s": 86400,
        }
    )
    queue = cast(CloudTasksQueue, app.queue)
    queue.ensure_queue(QUEUE)
    env = stack.function_env(
        sync_queue=QUEUE, sync_url=urls["sync"], webhook_url=urls["webhook"], debounce_s=str(debounce_s)
    )
    sync_server, _ = stack.start_function("sync", env, ports["sync"])
    webhook_server, _ = stack.start_function("webhook", env, ports["webhook"])
    try:
        api, store = app.calendar_api, app.store
        gcal = api.insert_calendar("Sala P4", time_zone="America/Sao_Paulo")
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        bodies = [
            {
                "id": f"pevent{i:04d}",
                "summary": "personal",
                "start": {"dateTime": (base + timedelta(hours=3 * i)).isoformat()},
                "end": {"dateTime": (base + timedelta(hours=3 * i + 1)).isoformat()},
            }
            for i in range(EVENTS)
        ]
        stack.emulator.control("seed", {"calendarId": gcal, "events": bodies})
        store.put_calendar(CalendarRecord(key=KEY, google_calendar_id=gcal, kind="room"))
        open_channel(KEY, api=api, store=store, queue=queue, clock=app.clock, config=app.channel_config)
        wait_for(lambda: (c := store.get_calendar(KEY)) and c.sync_token, timeout_s=60, what="P4 initial sync")

        ids = [str(b["id"]) for b in bodies]
        latencies = [edit_once(api, store, gcal, ids[n % EVENTS]) for n in range(edits)]
        queue.close()
    finally:
        stack.stop_server(webhook_server)
        stack.stop_server(sync_server)
    note = (
        f"debounce {debounce_s} s for the bench; with the production default ({PRODUCTION_DEBOUNCE_S} s) "
        f"the bucket wait is U(0, {PRODUCTION_DEBOUNCE_S} s) instead of U(0, {debounce_s} s); "
        f"n={edits} sequential edits"
    )
    return [
        Row("P4", "person's edit → mirror updated: p50 (s)", fmt(percentile(latencies, 50)), note=note),
        Row(
            "P4",
            "person's edit → mirror updated: p99 (s)",
            fmt(percentile(latencies, 99)),
            note=f"max {fmt(max(latencies))} s; a poll-only sync at the 10-min poll interval waits ~300 s on average",
        ),
    ]
