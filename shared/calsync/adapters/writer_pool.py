"""``WriterPoolCalendarApi``: the ``CalendarApi`` port over a pool of acting accounts (writers).

Google limits what one acting account may create, share and invite ("Avoid Calendar use limits",
https://support.google.com/a/answer/2905486) and counts changes to secondary calendars against the
account that makes them, so calsync writes through several Workspace users (domain-wide delegation
subjects). Each calendar belongs to the writer that created it, for life: every call about a calendar
(reads too: the calendar is shared with its writer only) goes through that writer's adapter. The
writer is found once per instance from the calendar's record (``WriterStore.find_calendar``);
calendars with no record or no recorded writer belong to the first writer, as do calls that name no
calendar (channels.stop, freebusy.query). A ``QuotaExhausted`` answer carries the writer it locked
in ``details["writer"]``, so the services can record the lockout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from calsync import errors
from calsync.model import EventsPage, GoogleEvent, WatchChannel
from calsync.ports import BatchOp, BatchResult, BusyTimes, CalendarApi, ListEvents

T = TypeVar("T")
WRITER_DETAIL = "writer"


def tag_writer(exc: errors.CalendarApiError, writer: str) -> errors.CalendarApiError:
    """Name the writer on a usage-limit error (the lockout is that account's)."""
    if isinstance(exc, errors.QuotaExhausted):
        exc.details.setdefault(WRITER_DETAIL, writer)
    return exc


class WriterPoolCalendarApi(CalendarApi):
    """Routes each call to the adapter of the calendar's writer (see the module docstring)."""

    def __init__(
        self,
        writers: Sequence[str],
        api_for: Callable[[str], CalendarApi],
        writer_of: Callable[[str], str | None],
    ) -> None:
        """``api_for(writer)`` builds one writer's adapter; ``writer_of(google id)`` its recorded writer."""
        if not writers:
            raise ValueError("a writer pool needs at least one writer")
        self.writers = list(writers)
        self._api_for = api_for
        self._writer_of = writer_of
        self._apis: dict[str, CalendarApi] = {}
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def api(self, writer: str) -> CalendarApi:
        """The adapter acting as ``writer`` (built once)."""
        with self._lock:
            api = self._apis.get(writer)
        if api is None:
            api = self._api_for(writer)
            with self._lock:
                api = self._apis.setdefault(writer, api)
        return api

    def writer(self, calendar_id: str) -> str:
        """The writer of a Google calendar (recorded ones are remembered: a writer is for life)."""
        with self._lock:
            known = self._owners.get(calendar_id)
        if known is not None:
            return known
        recorded = self._writer_of(calendar_id)
        if recorded is None:
            return self.writers[0]
        with self._lock:
            self._owners[calendar_id] = recorded
        return recorded

    def _as(self, writer: str, call: Callable[[CalendarApi], T]) -> T:
        try:
            return call(self.api(writer))
        except errors.CalendarApiError as exc:
            tag_writer(exc, writer)
            raise

    def _on(self, calendar_id: str, call: Callable[[CalendarApi], T]) -> T:
        return self._as(self.writer(calendar_id), call)

    # -- calls about one calendar -------------------------------------------------------------------

    def list_events(self, query: ListEvents) -> EventsPage:
        """events.list as the calendar's writer."""
        return self._on(query.calendar_id, lambda api: api.list_events(query))

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        """events.get as the calendar's writer."""
        return self._on(calendar_id, lambda api: api.get_event(calendar_id, event_id))

    def execute_op(self, op: BatchOp) -> GoogleEvent | None:
        """events.insert, update or delete as the calendar's writer."""
        return self._on(op.calendar_id, lambda api: api.execute_op(op))

    def watch_events(self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl_s: int) -> WatchChannel:
        """events.watch as the calendar's writer."""
        return self._on(
            calendar_id,
            lambda api: api.watch_events(calendar_id, channel_id=channel_id, address=address, token=token, ttl_s=ttl_s),
        )

    def get_calendar(self, calendar_id: str) -> Mapping[str, Any]:
        """calendars.get as the calendar's writer."""
        return self._on(calendar_id, lambda api: api.get_calendar(calendar_id))

    def insert_acl(self, calendar_id: str, *, email: str, role: str) -> None:
        """acl.insert as the calendar's writer (its owner)."""
        self._on(calendar_id, lambda api: api.insert_acl(calendar_id, email=email, role=role))

    def stop_channel(self, calendar_id: str, channel_id: str, resource_id: str) -> None:
        """channels.stop as the calendar's writer (the account that opened the channel)."""
        self._on(calendar_id, lambda api: api.stop_channel(calendar_id, channel_id, resource_id))

    # -- calls that choose their writer ------------------------------------------------------------

    def insert_calendar(self, summary: str, *, time_zone: str, writer: str | None = None) -> str:
        """calendars.insert as ``writer`` (None: the first); the new calendar is that writer's."""
        who = self.writers[0] if writer is None else writer
        calendar_id = self._as(who, lambda api: api.insert_calendar(summary, time_zone=time_zone))
        with self._lock:
            self._owners[calendar_id] = who
        return calendar_id

    def free_busy(self, calendar_ids: Sequence[str], time_min: datetime, time_max: datetime) -> list[BusyTimes]:
        """freebusy.query of people's own calendars, shared with the first writer."""
        return self._as(self.writers[0], lambda api: api.free_busy(calendar_ids, time_min, time_max))

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """Each writer's calls in its own batches; results in ``ops`` order."""
        by_writer: dict[str, list[int]] = {}
        for index, op in enumerate(ops):
            by_writer.setdefault(self.writer(op.calendar_id), []).append(index)
        results: dict[int, BatchResult] = {}
        for writer, indexes in by_writer.items():
            try:
                answered = self.api(writer).execute_batch([ops[i] for i in indexes])
            except errors.CalendarApiError as exc:
                tag_writer(exc, writer)
                raise
            for index, result in zip(indexes, answered, strict=True):
                if result.error is not None:
                    tag_writer(result.error, writer)
                results[index] = result
        return [results[i] for i in range(len(ops))]


def _conforms(api: WriterPoolCalendarApi) -> CalendarApi:
    """mypy checks that the pool implements the port."""
    return api
