"""``ports.WriterStore`` in memory: the writer pool's timelines, calendar counts and lockouts."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from calsync.model import CalendarRecord, ProvisionMark, WriterRecord
from calsync.ports.writers import Admission


class InMemoryWriterStore:
    """Writer records in memory; ``find_calendar`` reads the calendars of the composed store."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: dict[str, WriterRecord] = {}
        self.provision_marks: dict[str, ProvisionMark] = {}
        self._writer_guard = threading.Lock()

    def find_calendar(self, google_calendar_id: str) -> CalendarRecord | None:
        """The calendar registered with this Google id, or None."""
        calendars: dict[str, CalendarRecord] = getattr(self, "calendars", {})
        for record in calendars.values():
            if record.google_calendar_id == google_calendar_id:
                return record.model_copy(deep=True)
        return None

    def list_writers(self) -> list[WriterRecord]:
        """Every writer record, by writer."""
        return [r.model_copy(deep=True) for _, r in sorted(self.writers.items())]

    def _record(self, writer: str) -> WriterRecord:
        return self.writers.get(writer) or WriterRecord(writer=writer)

    def reserve_writer(self, writer: str, seconds: float, now: datetime, *, calendars: int = 0) -> datetime:
        """Reserve ``seconds`` after the timeline's end (or ``now``) atomically; the window's start."""
        with self._writer_guard:
            record = self._record(writer)
            start = max(now, record.next_free_at) if record.next_free_at is not None else now
            update = {
                "next_free_at": start + timedelta(seconds=seconds),
                "calendars": record.calendars + calendars,
                "updated_at": now,
            }
            self.writers[writer] = record.model_copy(update=update)
            return start

    def lock_writer(self, writer: str, until: datetime, now: datetime, *, reason: str) -> WriterRecord:
        """Record a lockout until ``until`` (a later one already recorded is kept)."""
        with self._writer_guard:
            record = self._record(writer)
            later = max(until, record.locked_until) if record.locked_until is not None else until
            update = {"locked_until": later, "lock_reason": reason, "locks": record.locks + 1, "updated_at": now}
            self.writers[writer] = record.model_copy(update=update)
            return self.writers[writer].model_copy(deep=True)

    def admit_writer(self, writer: str, now: datetime, *, probe_s: float) -> Admission:
        """None: write now; else when to come back (one probe per ended lockout)."""
        with self._writer_guard:
            record = self.writers.get(writer)
            if record is None or record.locked_until is None:
                return Admission()
            if now < record.locked_until:
                return Admission(wait_until=record.locked_until)
            update = {"locked_until": now + timedelta(seconds=probe_s), "probes": record.probes + 1, "updated_at": now}
            self.writers[writer] = record.model_copy(update=update)
            return Admission(probe=True)

    def unlock_writer(self, writer: str, now: datetime) -> None:
        """Clear the lockout."""
        with self._writer_guard:
            record = self.writers.get(writer)
            if record is not None and record.locked_until is not None:
                update = {"locked_until": None, "lock_reason": None, "updated_at": now}
                self.writers[writer] = record.model_copy(update=update)

    def get_provision_mark(self, calendar_key: str) -> ProvisionMark | None:
        """The creation task scheduled for a calendar, if any."""
        mark = self.provision_marks.get(calendar_key)
        return mark.model_copy() if mark else None

    def put_provision_mark(self, mark: ProvisionMark) -> None:
        """Record the creation task scheduled for a calendar."""
        self.provision_marks[mark.calendar_key] = mark.model_copy()
