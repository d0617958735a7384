"""P2: full sync of one calendar of N events (10,000): calsync vs gcal_sync on the same data.

One calendar is seeded through the emulator's seed endpoint. calsync's ``sync_calendar`` runs twice:
into Google's Firestore emulator (what production does) and into the in-memory store of the unit
tests (like for like with gcal_sync, which keeps its events in memory). gcal_sync's
``CalendarEventSyncManager`` runs on the same calendar through its own aiohttp client. Calls are
counted by the emulator. The seeded calendar and the synced mirrors are handed on to P1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.baseline_poller import PAST_DAYS, FullWindowPoller
from bench.gcal_sync_driver import GcalSyncClient
from bench.harness import BenchStack, CountingStore, Row, Stopwatch, fmt, ratio
from calsync.bootstrap import SystemClock
from calsync.model import CalendarRecord
from calsync.ports import CalendarApi
from calsync.services.sync import SyncCommand, SyncConfig, SyncSummary, sync_calendar
from calsync.testing import InMemoryStateStore, RecordingTaskQueue

KEY = "room-bench"
NAIVE_KEY = "room-bench-naive"
MEMORY_KEY = "room-bench-memory"
READER = "bench-reader@clinic.example"


def event_body(i: int, base: datetime) -> dict[str, Any]:
    """Event ``i``: one hour, spread over the next ~8 days (a busy clinic's calendar)."""
    start = base + timedelta(hours=(i % 4000) * 0.05)
    return {
        "id": f"ev{i:06d}",
        "summary": f"consulta {i}",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
    }


@dataclass
class SyncWorld:
    """The seeded calendar and everything P1 continues with."""

    stack: BenchStack
    api: CalendarApi
    store: CountingStore
    queue: RecordingTaskQueue
    gcal: str
    bodies: list[dict[str, Any]]
    naive: FullWindowPoller
    gcal_sync: GcalSyncClient
    config: SyncConfig

    def sync(self, key: str = KEY, store: Any = None) -> SyncSummary:
        """One calsync sync of the seeded calendar."""
        return sync_calendar(
            SyncCommand(calendar_key=key, reason="poll"),
            api=self.api,
            store=store or self.store,
            queue=self.queue,
            clock=SystemClock(),
            config=self.config,
        )


def run(stack: BenchStack, events: int) -> tuple[list[Row], SyncWorld]:
    """Seed ``events`` events, full-sync them with calsync and gcal_sync; the rows and the world for P1."""
    stack.reset()
    emulator = stack.emulator
    app = stack.container({"sync_queue": "calsync-sync"})  # the default lease, renewed every page
    api = app.calendar_api
    gcal = api.insert_calendar("Sala bench", time_zone="UTC")
    api.insert_acl(gcal, email=READER, role="reader")
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    bodies = [event_body(i, base) for i in range(events)]
    emulator.control("seed", {"calendarId": gcal, "events": bodies})

    firestore_store = app.store
    store = CountingStore(firestore_store)
    for key in (KEY, NAIVE_KEY):
        firestore_store.put_calendar(CalendarRecord(key=key, google_calendar_id=gcal, kind="room"))
    memory = InMemoryStateStore()
    memory.put_calendar(CalendarRecord(key=MEMORY_KEY, google_calendar_id=gcal, kind="room"))
    queue = RecordingTaskQueue()
    clock = app.clock
    naive = FullWindowPoller(api=api, store=store, clock=clock, calendar_key=NAIVE_KEY, google_calendar_id=gcal)
    gcal_client = GcalSyncClient(
        stack.calendar_base, gcal, user=READER, time_min=clock.now() - timedelta(days=PAST_DAYS)
    )
    world = SyncWorld(stack, api, store, queue, gcal, bodies, naive, gcal_client, app.sync_config)

    emulator.reset_stats()
    with Stopwatch() as ours_memory:
        memory_summary = world.sync(MEMORY_KEY, memory)
    ours_memory_calls = emulator.calls()

    emulator.reset_stats()
    store.reset()
    with Stopwatch() as ours_firestore:
        summary = world.sync()
    ours_calls = emulator.calls()
    writes = store.counts["mirror_writes"]

    emulator.reset_stats()
    theirs = gcal_client.run()
    theirs_calls = emulator.calls()

    # The naive poller's first poll fills its own mirror (P1 measures its later polls).
    naive.poll()
    if (memory_summary.fetched, summary.fetched, theirs.events) != (events, events, events):
        raise RuntimeError(
            f"P2 did not see every event: calsync {memory_summary.fetched}/{summary.fetched}, gcal_sync {theirs.events}"
        )
    n = fmt(events)
    rows = [
        Row(
            "P2",
            f"full sync of {n} events: wall time (s), in-memory store",
            fmt(ours_memory.elapsed),
            fmt(theirs.seconds),
            ratio(ours_memory.elapsed, theirs.seconds),
            "both keep the events in memory; calsync through google-api-python-client, gcal_sync through aiohttp",
        ),
        Row(
            "P2",
            f"full sync of {n} events: Calendar API calls",
            fmt(ours_memory_calls),
            fmt(theirs_calls),
            ratio(ours_memory_calls, theirs_calls),
            "events.list pages: calsync 2500/page, gcal_sync its default 1000/page",
        ),
        Row(
            "P2",
            f"full sync of {n} events into Firestore (emulator): wall time (s)",
            fmt(ours_firestore.elapsed),
            "—",
            "—",
            f"calsync only (gcal_sync has no database store); {fmt(ours_calls)} calls, {fmt(writes)} mirror writes",
        ),
    ]
    return rows, world
