"""The writer pool's store port: which writer owns a calendar, usage timelines and lockouts.

Google limits what one acting account may do ("Avoid Calendar use limits",
https://support.google.com/a/answer/2905486), so calsync writes through a pool of accounts; this port
keeps what they share across function instances (``adapters/firestore/writers.py``, in memory
``calsync.testing.memory.writers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from calsync.model import CalendarRecord, ProvisionMark, WriterRecord


@dataclass(frozen=True)
class Admission:
    """May a task write as a writer now: no (``wait_until``), yes, or yes as the probe of an ended lockout."""

    wait_until: datetime | None = None
    probe: bool = False


class WriterStore(Protocol):
    """The writer pool's state: each writer's usage timeline, calendar count and lockout.

    Calendars belong to the writer that created them (``CalendarRecord.writer``); the usage timeline
    paces what every provisioning and publish of one writer does, together, under Google's limits.
    """

    def find_calendar(self, google_calendar_id: str) -> CalendarRecord | None:
        """The calendar registered with this Google id, or None."""
        ...

    def list_writers(self) -> list[WriterRecord]:
        """Every writer that has a record, by writer."""
        ...

    def reserve_writer(self, writer: str, seconds: float, now: datetime, *, calendars: int = 0) -> datetime:
        """Reserve ``seconds`` on the writer's timeline (and count ``calendars`` new ones), in one
        transaction; the start of the reserved window."""
        ...

    def lock_writer(self, writer: str, until: datetime, now: datetime, *, reason: str) -> WriterRecord:
        """Record a lockout until ``until`` (a later lockout already recorded is kept)."""
        ...

    def admit_writer(self, writer: str, now: datetime, *, probe_s: float) -> Admission:
        """Whether the writer may write now, else when to come back. Once a lockout has run out, the
        first caller is admitted as the probe and the others wait ``probe_s`` for its outcome."""
        ...

    def unlock_writer(self, writer: str, now: datetime) -> None:
        """Clear the writer's lockout (a write went through)."""
        ...

    def get_provision_mark(self, calendar_key: str) -> ProvisionMark | None:
        """The creation task scheduled for a calendar, if any."""
        ...

    def put_provision_mark(self, mark: ProvisionMark) -> None:
        """Record the creation task scheduled for a calendar."""
        ...
