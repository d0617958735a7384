"""The benchmark harness's helpers: percentiles, the markdown table, the naive poller on fakes, the
in-process scheduled queue and the load client's notification headers. No timings are asserted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.baseline_poller import FullWindowPoller
from bench.harness import CountingStore, Row, fmt, markdown_table, percentile, ratio
from bench.load_client import notification_headers
from bench.p5_publish import ScheduledQueue
from calsync.ports import TaskRequest
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore

CAL = "room@group"
KEY = "room-1"


def test_percentile_interpolates_between_ranks() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 25) == 2.0
    assert percentile([10.0, 20.0], 99) == pytest.approx(19.9)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_ratio_and_fmt() -> None:
    assert ratio(4, 10_000) == "2.5e+03x"
    assert ratio(2, 8) == "4x"
    assert ratio(0, 8) == "—"
    assert ratio(None, 8) == "—"
    assert fmt(10_000) == "10,000"
    assert fmt(4.0) == "4"
    assert fmt(0.12345) == "0.123"
    assert fmt(1754.6) == "1,755"
    assert fmt(75.25) == "75.2"
    assert fmt(None) == "—"


def test_markdown_table_has_header_separator_and_escaped_cells() -> None:
    table = markdown_table([Row("P1", "calls", "1", "4", "4x", "a|b")]).splitlines()
    assert table[0] == "| bench | metric | calsync | reference | ratio | note |"
    assert table[1] == "| --- | --- | --- | --- | --- | --- |"
    assert table[2] == "| P1 | calls | 1 | 4 | 4x | a\\|b |"
    assert len(table) == 3


def _event(i: int, now: datetime) -> dict[str, Any]:
    start = now + timedelta(days=1, hours=i)
    return {
        "id": f"ev{i:05d}",
        "summary": f"consulta {i}",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
    }


def test_naive_poller_lists_everything_and_writes_only_what_changed() -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    api = FakeCalendarApi(clock, page_size=4)
    api.add_calendar(CAL)
    for i in range(10):
        api.insert_event(CAL, _event(i, clock.now()))
    store = CountingStore(InMemoryStateStore())
    poller = FullWindowPoller(api=api, store=store, clock=clock, calendar_key=KEY, google_calendar_id=CAL)

    first = poller.poll()
    assert (first.pages, first.listed, first.read, first.written) == (3, 10, 0, 10)

    api.person_edit(CAL, "ev00003", summary="remarcada")
    api.person_delete(CAL, "ev00007")
    store.reset()
    second = poller.poll()
    # The whole window again (3 pages of 4), the whole mirror read, only the edit and the deletion written.
    assert (second.pages, second.listed, second.read) == (3, 9, 10)
    assert (second.written, second.tombstoned) == (1, 1)
    assert store.counts["mirror_reads"] == 10
    assert store.counts["mirror_writes"] == 2
    mirror = store.get_events(KEY, ["ev00003", "ev00007"])
    assert mirror["ev00003"].summary == "remarcada"
    assert mirror["ev00007"].status == "cancelled"

    store.reset()
    idle = poller.poll()
    assert (idle.pages, idle.written, idle.tombstoned) == (3, 0, 0)


def test_rewrite_all_poller_writes_every_listed_event() -> None:
    clock = FrozenClock()
    api = FakeCalendarApi(clock)
    api.add_calendar(CAL)
    for i in range(5):
        api.insert_event(CAL, _event(i, clock.now()))
    store = InMemoryStateStore()
    poller = FullWindowPoller(
        api=api, store=store, clock=clock, calendar_key=KEY, google_calendar_id=CAL, rewrite_all=True
    )
    poller.poll()
    assert poller.poll().written == 5


def test_scheduled_queue_orders_by_schedule_time_and_dedups_names() -> None:
    queue = ScheduledQueue()
    past = datetime.now(UTC) - timedelta(seconds=10)
    later = TaskRequest(queue="q", url="u", payload={"n": 2}, name="b", schedule_time=past + timedelta(seconds=2))
    sooner = TaskRequest(queue="q", url="u", payload={"n": 1}, name="a", schedule_time=past)
    assert queue.enqueue(later)
    assert queue.enqueue(sooner)
    assert not queue.enqueue(sooner)  # same name: refused, like Cloud Tasks
    first = queue.next_due()
    queue.retry(sooner, past + timedelta(seconds=5))
    assert [first, queue.next_due(), queue.next_due(), queue.next_due()] == [sooner, later, sooner, None]


def test_notification_headers_round_robin_with_growing_message_numbers() -> None:
    channels = [{"id": f"c{i}", "token": f"t{i}", "resource_id": f"r{i}"} for i in range(3)]
    headers = [notification_headers(channels, i) for i in range(7)]
    assert [h["X-Goog-Channel-ID"] for h in headers] == ["c0", "c1", "c2", "c0", "c1", "c2", "c0"]
    assert [h["X-Goog-Message-Number"] for h in headers] == ["2", "2", "2", "3", "3", "3", "4"]
    assert {h["X-Goog-Resource-State"] for h in headers} == {"exists"}
    assert headers[4]["X-Goog-Channel-Token"] == "t1"
    assert notification_headers([], 5) == {}
