"""``RoutedCalendarApi``: each call goes to the API of the calendar's owner (two in-memory Calendars)."""

from __future__ import annotations

import pytest

from calsync import errors
from calsync.adapters.routed_calendar import RoutedCalendarApi
from calsync.ports import BatchOp, ListEvents
from calsync.testing import FakeCalendarApi, FrozenClock


@pytest.fixture
def apis() -> tuple[FakeCalendarApi, FakeCalendarApi, RoutedCalendarApi, str, str]:
    clock = FrozenClock()
    default, clinic = FakeCalendarApi(clock), FakeCalendarApi(clock)
    ours = default.insert_calendar("control", time_zone="UTC")
    clinic.insert_calendar("unused", time_zone="UTC")  # the fakes number calendars alike: keep the ids apart
    theirs = clinic.insert_calendar("room", time_zone="UTC")
    assert ours != theirs
    routed = RoutedCalendarApi(default, lambda calendar_id: clinic if calendar_id == theirs else default)
    return default, clinic, routed, ours, theirs


def event(summary: str) -> dict[str, object]:
    return {
        "summary": summary,
        "start": {"dateTime": "2026-03-03T10:00:00Z"},
        "end": {"dateTime": "2026-03-03T11:00:00Z"},
    }


def test_calls_go_to_the_calendars_owner(
    apis: tuple[FakeCalendarApi, FakeCalendarApi, RoutedCalendarApi, str, str],
) -> None:
    default, clinic, routed, ours, theirs = apis
    routed.insert_event(theirs, event("a"))
    routed.insert_event(ours, event("b"))
    assert [e.summary for e in routed.list_events(ListEvents(theirs)).items] == ["a"]
    assert [e.summary for e in routed.list_events(ListEvents(ours)).items] == ["b"]
    assert clinic.calls["insert_event"] == 1
    assert default.calls["insert_event"] == 1
    assert routed.get_calendar(theirs)["summary"] == "room"
    # Calls that name no calendar are the default identity's.
    routed.insert_calendar("new", time_zone="UTC")
    assert default.calls["insert_calendar"] == 2
    assert clinic.calls["insert_calendar"] == 2


def test_a_batch_is_split_by_owner_and_answered_in_order(
    apis: tuple[FakeCalendarApi, FakeCalendarApi, RoutedCalendarApi, str, str],
) -> None:
    _, clinic, routed, ours, theirs = apis
    ops = [
        BatchOp(kind="insert", calendar_id=theirs, body=event("1")),
        BatchOp(kind="insert", calendar_id=ours, body=event("2")),
        BatchOp(kind="get", calendar_id=theirs, event_id="missing"),
        BatchOp(kind="insert", calendar_id=theirs, body=event("4")),
    ]
    results = routed.execute_batch(ops)
    assert [r.op for r in results] == ops
    assert [r.event.summary if r.event else None for r in results] == ["1", "2", None, "4"]
    assert isinstance(results[2].error, errors.NotFound)
    assert clinic.calls["insert_event"] == 2
    assert clinic.calls["get_event"] == 1


def test_a_channel_is_stopped_by_the_calendars_owner_in_any_instance(
    apis: tuple[FakeCalendarApi, FakeCalendarApi, RoutedCalendarApi, str, str],
) -> None:
    """Renewal often runs in another function instance than the watch: the owner comes from the calendar."""
    default, clinic, routed, _, theirs = apis
    channel = routed.watch_events(theirs, channel_id="c1", address="https://x/", token="t", ttl_s=3600)
    elsewhere = RoutedCalendarApi(default, lambda calendar_id: clinic if calendar_id == theirs else default)
    elsewhere.stop_channel(theirs, "c1", channel.resource_id)
    assert clinic.calls["stop_channel"] == 1
    assert default.calls["stop_channel"] == 0
    with pytest.raises(errors.NotFound):
        routed.stop_channel(theirs, "c1", channel.resource_id)  # stopped once, at its owner
