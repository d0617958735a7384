"""The Google Calendar port: the Calendar API v3 calls calsync makes, and batch requests.

``adapters/google_calendar.py`` implements it on google-api-python-client
(https://developers.google.com/calendar/api/v3/reference); ``calsync.testing`` in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from calsync.errors import CalendarApiError, InvalidRequest
from calsync.model import EventsPage, GoogleEvent, WatchChannel

BatchKind = Literal["insert", "update", "delete", "get"]
# sendUpdates: "none" for mirror maintenance (no e-mail storms on resyncs or republishes), "all" when a
# person should be told (an ad-hoc event with guests). Chosen by the caller, never left to a default.
SendUpdates = Literal["all", "externalOnly", "none"]


@dataclass(frozen=True)
class ListEvents:
    """One page of events.list: the changes since ``sync_token``, or the events matching the filters.

    A sync token is never combined with filters (Google answers 400): such a query is refused here,
    before any request.
    """

    calendar_id: str
    _: KW_ONLY
    sync_token: str | None = None
    page_token: str | None = None
    time_min: datetime | None = None
    time_max: datetime | None = None
    single_events: bool = True
    show_deleted: bool | None = None
    private_filters: Sequence[str] = ()

    def __post_init__(self) -> None:
        filtered = self.time_min or self.time_max or self.private_filters or self.show_deleted is False
        if self.sync_token is not None and filtered:
            raise InvalidRequest("a sync token cannot be combined with filters")


@dataclass(frozen=True)
class BatchOp:
    """One call inside a batch request."""

    kind: BatchKind
    calendar_id: str
    event_id: str | None = None
    body: Mapping[str, Any] | None = None
    if_match: str | None = None
    conference: bool = False
    send_updates: SendUpdates = "none"


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one ``BatchOp``: an event (or None for a delete) or a classified error."""

    op: BatchOp
    event: GoogleEvent | None = None
    error: CalendarApiError | None = None

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.error is None


# FreeBusyRequest.calendarExpansionMax: at most 50 calendars per freebusy.query.
FREEBUSY_MAX_CALENDARS = 50


@dataclass(frozen=True)
class BusyTimes:
    """freebusy.query's answer for one calendar: busy intervals only, never event content.

    ``error`` is Google's reason when the calendar's free/busy cannot be read (``notFound``: not
    shared with the acting account, or no such calendar); ``busy`` is then empty.
    """

    calendar_id: str
    busy: tuple[tuple[datetime, datetime], ...] = ()
    error: str | None = None


def _written(event: GoogleEvent | None) -> GoogleEvent:
    if event is None:
        raise CalendarApiError("events.insert/update answered no event")
    return event


class CalendarApi(Protocol):
    """The Calendar API v3 calls calsync makes; every failure raises an ``errors`` type.

    The adapter and the fake subclass it: ``insert_event``, ``update_event`` and ``delete_event`` are
    written once here, as one-op calls of their ``execute_op``.
    """

    def list_events(self, query: ListEvents) -> EventsPage:
        """One page of events.list (``SyncTokenGone`` on 410 fullSyncRequired)."""
        ...

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        """events.get (cancelled events are returned too)."""
        ...

    def execute_op(self, op: BatchOp) -> GoogleEvent | None:
        """One ``BatchOp`` as its own request (retried like any call): the event, or None for a delete."""
        ...

    def insert_event(
        self,
        calendar_id: str,
        body: Mapping[str, Any],
        *,
        conference: bool = False,
        send_updates: SendUpdates = "none",
    ) -> GoogleEvent:
        """events.insert (``Duplicate`` on 409; ``conference`` asks for a Meet link)."""
        op = BatchOp("insert", calendar_id, body=body, conference=conference, send_updates=send_updates)
        return _written(self.execute_op(op))

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        body: Mapping[str, Any],
        *,
        if_match: str | None = None,
        send_updates: SendUpdates = "none",
    ) -> GoogleEvent:
        """events.update (full replace), guarded by ``If-Match`` when given."""
        op = BatchOp("update", calendar_id, event_id, body, if_match=if_match, send_updates=send_updates)
        return _written(self.execute_op(op))

    def delete_event(
        self,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        send_updates: SendUpdates = "none",
    ) -> None:
        """events.delete, guarded by ``If-Match`` when given (``ResourceGone`` if already deleted)."""
        self.execute_op(BatchOp("delete", calendar_id, event_id, if_match=if_match, send_updates=send_updates))

    def watch_events(self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl_s: int) -> WatchChannel:
        """events.watch: open a push channel on a calendar."""
        ...

    def stop_channel(self, calendar_id: str, channel_id: str, resource_id: str) -> None:
        """channels.stop of a channel watching ``calendar_id`` (as the account that opened it: its owner)."""
        ...

    def insert_calendar(self, summary: str, *, time_zone: str, writer: str | None = None) -> str:
        """calendars.insert as ``writer`` (None: the default acting account); returns the new id."""
        ...

    def get_calendar(self, calendar_id: str) -> Mapping[str, Any]:
        """calendars.get."""
        ...

    def insert_acl(self, calendar_id: str, *, email: str, role: str) -> None:
        """acl.insert: share a calendar with a person."""
        ...

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """Run up to the configured number of calls in batch requests; results in ``ops`` order."""
        ...

    def free_busy(self, calendar_ids: Sequence[str], time_min: datetime, time_max: datetime) -> list[BusyTimes]:
        """freebusy.query for up to ``FREEBUSY_MAX_CALENDARS`` calendars; one answer per id, in order."""
        ...
