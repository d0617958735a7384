"""Builders shared by the sync unit tests (events, published snapshots, a wired service)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from calsync.bootstrap import sync_config
from calsync.model import CalendarRecord, MirrorEvent, PublishedSnapshot
from calsync.ports import CalendarApi, StateStore
from calsync.services.sync import SyncCommand, SyncConfig, SyncSummary, sync_calendar
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue
from calsync.testing.settings import local_settings

GCAL = "room1@group.calendar.google.com"
KEY = "room-1"
CONFIG = sync_config(
    local_settings(sync_url="http://sync.local/", lock_lease_s=60, sync_run_budget_s=120, display_time_zone="UTC")
)


def event_body(
    event_id: str,
    start: datetime,
    minutes: int = 60,
    *,
    allocation: str | None = None,
    env: str = "dev",
    attendees: list[str] | None = None,
) -> dict[str, Any]:
    """A wire event; tagged as ours when ``allocation`` is given."""
    body: dict[str, Any] = {
        "id": event_id,
        "summary": f"summary {event_id}",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat()},
    }
    if attendees:
        body["attendees"] = [{"email": a} for a in attendees]
    if allocation is not None:
        body["extendedProperties"] = {
            "private": {"source": "agendador", "env": env, "allocation_id": allocation, "calsync_schema": "1"}
        }
    return body


def publish(api: CalendarApi, store: StateStore, body: dict[str, Any], clock: FrozenClock) -> None:
    """What the publisher does: insert into Google and remember the published snapshot."""
    created = api.insert_event(GCAL, body)
    start = created.start.as_utc() if created.start else None
    end = created.end.as_utc() if created.end else None
    snapshot = PublishedSnapshot(
        etag=created.etag,
        start=start,
        end=end,
        attendees=sorted(a.email for a in created.attendees or [] if a.email),
        published_at=clock.now(),
    )
    store.put_events(
        [
            MirrorEvent(
                calendar_key=KEY,
                external_id=created.id,
                google_calendar_id=GCAL,
                start=start,
                end=end,
                origin="system",
                source_of_truth="backend",
                allocation_id=created.private_tags.get("allocation_id"),
                env="dev",
                published=snapshot,
            )
        ]
    )


class World:
    """Fakes wired together with one registered calendar."""

    def __init__(self, page_size: int = 2500) -> None:
        self.clock = FrozenClock()
        self.api = FakeCalendarApi(self.clock, page_size=page_size)
        self.api.add_calendar(GCAL)
        self.store = InMemoryStateStore()
        self.queue = RecordingTaskQueue()
        self.store.put_calendar(CalendarRecord(key=KEY, google_calendar_id=GCAL, kind="room"))

    def sync(self, reason: str = "poll", *, config: SyncConfig = CONFIG, holder: str | None = None) -> SyncSummary:
        """Run one sync invocation."""
        return sync_calendar(
            SyncCommand(calendar_key=KEY, reason=reason),  # type: ignore[arg-type]
            api=self.api,
            store=self.store,
            queue=self.queue,
            clock=self.clock,
            config=config,
            holder=holder,
        )

    def mirror(self) -> dict[str, MirrorEvent]:
        """The mirror of the calendar by event id."""
        return {e.external_id: e for (k, _), e in self.store.events.items() if k == KEY}
