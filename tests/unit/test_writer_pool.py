"""The writer pool on the fakes: new calendars spread over the writers and stay theirs; every call about a
calendar goes through its writer; a usage-limit error names the writer it locked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calsync import errors
from calsync.adapters.writer_pool import WriterPoolCalendarApi
from calsync.model import CalendarRecord, Professional, Room
from calsync.ports import BatchOp
from calsync.services.channels import ChannelConfig
from calsync.services.provision import Provisioning, provision_clinic
from calsync.services.writers import Usage, WriterConfig, choose_writer, cost_s, locked_writer, writer_of
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue

NOW = datetime(2030, 3, 4, 12, tzinfo=UTC)
A, B = "agenda-1@clinic.example", "agenda-2@clinic.example"
CONTROL = "control@group.calendar.google.com"
CHANNELS = ChannelConfig(
    webhook_url="https://hook.test/", channel_ttl_s=3600, renew_margin_s=600, sync_queue="q", sync_url="http://s/"
)
POOL = WriterConfig(writers=(A, B), calendars=25, shares=50)


def pool_world() -> tuple[WriterPoolCalendarApi, dict[str, FakeCalendarApi], InMemoryStateStore, FrozenClock]:
    clock = FrozenClock(NOW)
    fakes = {A: FakeCalendarApi(clock), B: FakeCalendarApi(clock)}
    fakes[B]._seq = iter(range(500_000, 600_000))  # type: ignore[assignment]  # ids unique across writers
    fakes[A].add_calendar(CONTROL)
    store = InMemoryStateStore()

    def recorded(google_id: str) -> str | None:
        record = store.find_calendar(google_id)
        return record.writer if record is not None else None

    return WriterPoolCalendarApi([A, B], fakes.__getitem__, recorded), fakes, store, clock


def provision(api: WriterPoolCalendarApi, store: InMemoryStateStore, clock: FrozenClock) -> None:
    p = Provisioning(api=api, store=store, queue=RecordingTaskQueue(), clock=clock, channels=CHANNELS, writers=POOL)
    provision_clinic("c1", p, control_calendar_id=CONTROL)


def test_new_calendars_spread_over_the_writers_and_stay_theirs() -> None:
    api, fakes, store, clock = pool_world()
    store.replace_professionals(
        "c1", [Professional(clinic_id="c1", id=f"p{i}", name=f"P{i}", email=f"p{i}@x.test") for i in range(3)]
    )
    store.replace_rooms("c1", [Room(clinic_id="c1", id=f"r{i}", name=f"R{i}") for i in range(3)])
    provision(api, store, clock)
    records = [r for r in store.list_calendars() if r.kind != "control"]
    by_writer = {w: [r for r in records if r.writer == w] for w in (A, B)}
    assert (len(by_writer[A]), len(by_writer[B])) == (3, 3)
    for writer, mine in by_writer.items():
        assert all(r.google_calendar_id in fakes[writer].calendars for r in mine)  # created as that writer
    assert {w.writer: w.calendars for w in store.list_writers()} == {A: 3, B: 3}

    # Every later call about a calendar acts as its writer, reads included; a batch is split per writer.
    theirs = by_writer[B][0].google_calendar_id
    event = api.insert_event(
        theirs, {"id": "e1abc", "summary": "x", "start": {"date": "2030-03-05"}, "end": {"date": "2030-03-06"}}
    )
    assert "e1abc" in fakes[B].calendars[theirs]
    assert api.get_event(theirs, event.id).id == "e1abc"
    ours = by_writer[A][0].google_calendar_id
    gets = [BatchOp(kind="get", calendar_id=gid, event_id="e1abc") for gid in (theirs, ours)]
    results = api.execute_batch(gets)
    assert results[0].ok
    assert isinstance(results[1].error, errors.NotFound)


def test_a_channel_is_stopped_as_its_calendars_writer() -> None:
    """events.watch acted as the calendar's writer; channels.stop must act as the same account."""
    api, fakes, store, clock = pool_world()
    store.replace_rooms("c1", [Room(clinic_id="c1", id=f"r{i}", name=f"R{i}") for i in range(2)])
    provision(api, store, clock)
    theirs = next(r for r in store.list_calendars() if r.writer == B).google_calendar_id
    channel = api.watch_events(theirs, channel_id="ch-b", address="https://x/", token="t", ttl_s=3600)
    api.stop_channel(theirs, "ch-b", channel.resource_id)
    assert "ch-b" not in fakes[B].channels
    assert fakes[A].calls["stop_channel"] == 0


def test_calendars_without_a_writer_belong_to_the_first() -> None:
    assert writer_of(CalendarRecord(key="k", google_calendar_id="g", kind="room"), POOL) == A
    assert writer_of(CalendarRecord(key="k", google_calendar_id="g", kind="room", writer=B), POOL) == B
    api, _, _, _ = pool_world()
    assert api.writer(CONTROL) == A
    assert api.get_calendar(CONTROL)["id"] == CONTROL


def test_the_writer_free_first_takes_the_next_calendar() -> None:
    store = InMemoryStateStore()
    assert choose_writer(store, POOL, NOW) == A  # nothing reserved: pool order
    store.reserve_writer(A, 60.0, NOW, calendars=1)
    assert choose_writer(store, POOL, NOW) == B  # A's budget is taken for a minute
    store.reserve_writer(B, 60.0, NOW, calendars=1)
    assert choose_writer(store, POOL, NOW + timedelta(minutes=5)) == A  # both idle again: tie, pool order
    store.lock_writer(A, NOW + timedelta(hours=4), NOW, reason="quotaExceeded")
    assert choose_writer(store, POOL, NOW + timedelta(minutes=5)) == B  # a locked writer takes nothing new


def test_usage_costs_the_largest_share_of_any_budget() -> None:
    config = WriterConfig(window_s=60, fraction=0.5, calendars=20, shares=40, events=1000)
    assert cost_s(Usage(calendars=1, shares=1, requests=2), config) == pytest.approx(6.0)  # 1 of 10 a minute
    assert cost_s(Usage(events=50, requests=50), config) == pytest.approx(50 / 8)  # requests: 480 a minute


def test_a_usage_limit_error_names_its_writer() -> None:
    api, fakes, store, _ = pool_world()
    store.put_calendar(CalendarRecord(key="k", google_calendar_id="g-b", kind="room", writer=B))
    fakes[B].add_calendar("g-b")
    fakes[B].fail_next(
        "insert_event", errors.QuotaExhausted("Calendar usage limits exceeded.", status=403, reason="quotaExceeded")
    )
    with pytest.raises(errors.QuotaExhausted) as caught:
        api.insert_event(
            "g-b", {"id": "e2abc", "summary": "x", "start": {"date": "2030-03-05"}, "end": {"date": "2030-03-06"}}
        )
    assert locked_writer(caught.value, A) == B
    assert locked_writer(errors.RateLimited("slow down"), A) is None
