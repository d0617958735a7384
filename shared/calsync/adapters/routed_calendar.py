"""``RoutedCalendarApi``: each Calendar call made as whoever can reach the calendar.

A clinic connected through OAuth owns its calendars with its own Google account; every other
calendar is reached through the default identity (keyless delegation). This adapter picks, per call,
the API of the calendar's owner (``choose``, by Google calendar id), so publishing, conflict
resolution, event routes and channel renewal work on connected clinics' calendars unchanged.
Calls that name no calendar (``insert_calendar``, ``free_busy``) use the default. A batch is split by
owner and its results put back in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from calsync.model import EventsPage, GoogleEvent, WatchChannel
from calsync.ports import BatchOp, BatchResult, BusyTimes, CalendarApi, ListEvents


class RoutedCalendarApi(CalendarApi):
    """The ``CalendarApi`` port, routed per calendar to its owner's API."""

    def __init__(self, default: CalendarApi, choose: Callable[[str], CalendarApi]) -> None:
        """``choose(google_calendar_id)``: the API acting as that calendar's owner."""
        self.default = default
        self._choose = choose

    def list_events(self, query: ListEvents) -> EventsPage:
        """events.list as the calendar's owner."""
        return self._choose(query.calendar_id).list_events(query)

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        """events.get as the calendar's owner."""
        return self._choose(calendar_id).get_event(calendar_id, event_id)

    def execute_op(self, op: BatchOp) -> GoogleEvent | None:
        """events.insert, update or delete as the calendar's owner."""
        return self._choose(op.calendar_id).execute_op(op)

    def watch_events(self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl_s: int) -> WatchChannel:
        """events.watch as the calendar's owner."""
        return self._choose(calendar_id).watch_events(
            calendar_id, channel_id=channel_id, address=address, token=token, ttl_s=ttl_s
        )

    def stop_channel(self, calendar_id: str, channel_id: str, resource_id: str) -> None:
        """channels.stop as the calendar's owner: the account that opened the channel, in any instance."""
        self._choose(calendar_id).stop_channel(calendar_id, channel_id, resource_id)

    def insert_calendar(self, summary: str, *, time_zone: str, writer: str | None = None) -> str:
        """calendars.insert as the default identity's ``writer`` (provisioning passes a clinic's API itself)."""
        return self.default.insert_calendar(summary, time_zone=time_zone, writer=writer)

    def get_calendar(self, calendar_id: str) -> Mapping[str, Any]:
        """calendars.get as the calendar's owner."""
        return self._choose(calendar_id).get_calendar(calendar_id)

    def insert_acl(self, calendar_id: str, *, email: str, role: str) -> None:
        """acl.insert as the calendar's owner."""
        self._choose(calendar_id).insert_acl(calendar_id, email=email, role=role)

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """The ops split by owner, each group batched by its API, the results in ``ops`` order."""
        groups: dict[int, tuple[CalendarApi, list[int]]] = {}
        for index, op in enumerate(ops):
            api = self._choose(op.calendar_id)
            groups.setdefault(id(api), (api, []))[1].append(index)
        results: list[BatchResult | None] = [None] * len(ops)
        for api, indexes in groups.values():
            for index, result in zip(indexes, api.execute_batch([ops[i] for i in indexes]), strict=True):
                results[index] = result
        return [r for r in results if r is not None]

    def free_busy(self, calendar_ids: Sequence[str], time_min: datetime, time_max: datetime) -> list[BusyTimes]:
        """freebusy.query as the default identity (a clinic's check passes the clinic's API itself)."""
        return self.default.free_busy(calendar_ids, time_min, time_max)
