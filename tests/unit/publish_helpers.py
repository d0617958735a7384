"""A small clinic on the fakes for the publish tests: directory, calendars, allocations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from calsync import errors
from calsync.bootstrap import publish_config
from calsync.model import Allocation, CalendarRecord, Professional, Room
from calsync.ports import CalendarApi
from calsync.services.apply import Publishing
from calsync.services.plan import CONTROL_KEY, PublishConfig, professional_key, room_key
from calsync.services.writers import WriterConfig
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue
from calsync.testing.settings import local_settings

CLINIC = "c1"
CONTROL = "control@group.calendar.google.com"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CONFIG = publish_config(
    local_settings(control_calendar_id=CONTROL, publish_url="http://127.0.0.1:1", display_time_zone="UTC")
)


@dataclass
class World:
    """Fakes wired together."""

    clock: FrozenClock
    api: FakeCalendarApi
    store: InMemoryStateStore
    queue: RecordingTaskQueue

    def publishing(
        self, api: CalendarApi | None = None, config: PublishConfig = CONFIG, writers: WriterConfig | None = None
    ) -> Publishing:
        """Applying plans over this world's fakes (or ``api``), with ``config`` and ``writers``."""
        return Publishing(self.store, api or self.api, self.queue, self.clock, config, writers or WriterConfig())


def world(professionals: int = 2, rooms: int = 2) -> World:
    """A clinic whose calendars are registered on the fake Calendar API."""
    clock = FrozenClock(NOW)
    api = FakeCalendarApi(clock)
    store = InMemoryStateStore()
    store.replace_professionals(
        CLINIC,
        [Professional(clinic_id=CLINIC, id=f"p{i}", name=f"P{i}", email=f"p{i}@x.test") for i in range(professionals)],
    )
    store.replace_rooms(CLINIC, [Room(clinic_id=CLINIC, id=f"r{i}", name=f"R{i}") for i in range(rooms)])
    api.add_calendar(CONTROL)
    store.put_calendar(CalendarRecord(key=CONTROL_KEY, google_calendar_id=CONTROL, kind="control"))
    for i in range(professionals):
        gid = f"prof{i}@group"
        api.add_calendar(gid)
        store.put_calendar(
            CalendarRecord(
                key=professional_key(CLINIC, f"p{i}"),
                google_calendar_id=gid,
                kind="professional",
                clinic_id=CLINIC,
                owner_id=f"p{i}",
            )
        )
    for i in range(rooms):
        gid = f"room{i}@group"
        api.add_calendar(gid)
        store.put_calendar(
            CalendarRecord(
                key=room_key(CLINIC, f"r{i}"), google_calendar_id=gid, kind="room", clinic_id=CLINIC, owner_id=f"r{i}"
            )
        )
    return World(clock, api, store, RecordingTaskQueue())


def allocation(n: int, *, hours: float = 24, status: str = "reviewed", prof: int = 0, room: int = 0) -> Allocation:
    """Allocation ``a{n}`` starting ``hours`` after NOW, one hour long."""
    start = NOW + timedelta(hours=hours)
    return Allocation(
        id=f"a{n}",
        clinic_id=CLINIC,
        professional_id=f"p{prof}",
        room_id=f"r{room}",
        start=start,
        end=start + timedelta(hours=1),
        status=status,
        title=f"consulta {n}",
        attendees=["Pat@x.test"],
        revision=1,  # type: ignore[arg-type]
    )


def run_tasks(w: World) -> int:
    """Deliver every queued chunk task until none is left (a rate-limited one is retried); how many ran."""
    ran = 0
    while w.queue.tasks:
        for task in w.queue.pop_all():
            p = task.payload
            try:
                w.publishing().run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
            except errors.RateLimited:
                w.queue.tasks.append(task)  # Cloud Tasks retries it
            ran += 1
    return ran
