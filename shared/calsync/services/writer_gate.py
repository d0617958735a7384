"""A writer's lockout, as every writing task sees it: wait, probe once, or write.

A task that writes through a writer (a publish chunk, a provisioning step) asks
``WriterStore.admit_writer`` first:

- the writer is locked → the task is put back at the lock's end and acknowledged. Cloud Tasks counts
  every non-2xx answer, 429 with ``Retry-After`` included, as an attempt against the queue's
  ``max_attempts``/``max_retry_duration`` (https://cloud.google.com/tasks/docs/configuring-queues#retry),
  and a lockout lasts hours; so the task is re-created under a new name with ``schedule_time`` at the
  unlock instant (``deferred_task``) and the running one answers 200. No retry is spent.
- the lockout has run out → one task is the probe (``WriterStore.admit_writer``); its writes go through
  ``GuardedApi`` with ``probe=True``, which sends one write alone first, so a writer still locked sees
  one rejected request per lockout period;
- otherwise it writes; any 403 ``quotaExceeded`` its calls meet is noted by ``GuardedApi`` and the
  caller records the lockout (``services.writers.record_lockout``) and defers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from calsync import errors
from calsync.model import EventsPage, GoogleEvent, WatchChannel
from calsync.ports import BatchOp, BatchResult, BusyTimes, CalendarApi, ListEvents, TaskRequest
from calsync.services.writers import locked_writer


def deferred_task(task: TaskRequest, until: datetime) -> TaskRequest:
    """``task`` again at ``until`` under a name of its own (one per lock end: duplicates collapse)."""
    name = f"{task.name}-w{int(until.timestamp())}" if task.name else None
    return dataclasses.replace(task, name=name, schedule_time=until)


class GuardedApi(CalendarApi):
    """A writer's ``CalendarApi`` for one task: notes usage-limit answers; as the probe, one write first."""

    def __init__(self, inner: CalendarApi, writer: str, *, probe: bool = False) -> None:
        self.inner = inner
        self.writer = writer
        self.probe = probe
        self.quota: errors.QuotaExhausted | None = None

    def _note(self, error: errors.CalsyncError | None) -> None:
        quota = error if isinstance(error, errors.QuotaExhausted) else None
        if self.quota is None and quota is not None and locked_writer(quota, self.writer) == self.writer:
            self.quota = quota

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.quota is not None and self.probe:
            raise self.quota  # the probe learnt the writer is still locked: nothing more is sent
        try:
            return fn(*args, **kwargs)
        except errors.QuotaExhausted as exc:
            self._note(exc)
            raise

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """The batch; as the probe, the first write alone, the rest only if it went through."""
        writes = [i for i, op in enumerate(ops) if op.kind != "get"]
        if not (self.probe and len(writes) > 1):
            results: list[BatchResult] = self._call(self.inner.execute_batch, ops)
        else:
            first: list[BatchResult] = self._call(self.inner.execute_batch, [ops[writes[0]]])
            self._note(first[0].error)
            if self.quota is not None:
                results = [BatchResult(op=op, error=self.quota) for op in ops]
                results[writes[0]] = first[0]
            else:
                rest_ops = [op for i, op in enumerate(ops) if i != writes[0]]
                rest = iter(self._call(self.inner.execute_batch, rest_ops))
                results = [first[0] if i == writes[0] else next(rest) for i in range(len(ops))]
        for result in results:
            self._note(result.error)
        return results

    def list_events(self, query: ListEvents) -> EventsPage:
        """events.list."""
        page: EventsPage = self._call(self.inner.list_events, query)
        return page

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        """events.get."""
        event: GoogleEvent = self._call(self.inner.get_event, calendar_id, event_id)
        return event

    def execute_op(self, op: BatchOp) -> GoogleEvent | None:
        """events.insert, update or delete."""
        event: GoogleEvent | None = self._call(self.inner.execute_op, op)
        return event

    def watch_events(self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl_s: int) -> WatchChannel:
        """events.watch."""
        channel: WatchChannel = self._call(
            self.inner.watch_events, calendar_id, channel_id=channel_id, address=address, token=token, ttl_s=ttl_s
        )
        return channel

    def stop_channel(self, calendar_id: str, channel_id: str, resource_id: str) -> None:
        """channels.stop."""
        self._call(self.inner.stop_channel, calendar_id, channel_id, resource_id)

    def insert_calendar(self, summary: str, *, time_zone: str, writer: str | None = None) -> str:
        """calendars.insert."""
        calendar_id: str = self._call(self.inner.insert_calendar, summary, time_zone=time_zone, writer=writer)
        return calendar_id

    def get_calendar(self, calendar_id: str) -> Mapping[str, Any]:
        """calendars.get."""
        calendar: Mapping[str, Any] = self._call(self.inner.get_calendar, calendar_id)
        return calendar

    def insert_acl(self, calendar_id: str, *, email: str, role: str) -> None:
        """acl.insert."""
        self._call(self.inner.insert_acl, calendar_id, email=email, role=role)

    def free_busy(self, calendar_ids: Sequence[str], time_min: datetime, time_max: datetime) -> list[BusyTimes]:
        """freebusy.query."""
        busy: list[BusyTimes] = self._call(self.inner.free_busy, calendar_ids, time_min, time_max)
        return busy


def _conforms(api: GuardedApi) -> CalendarApi:
    """mypy checks that the guard implements the port."""
    return api
