"""``ports.CalendarStore`` in memory: calendar records and per-calendar leases with ``pending``."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from calsync import errors
from calsync.model import CalendarRecord

_NEVER = datetime.min.replace(tzinfo=UTC)


def _synced_order(record: CalendarRecord) -> tuple[bool, datetime, str]:
    """Firestore's order: null before any timestamp, then the time, then the key."""
    synced = record.last_synced_at
    return (synced is not None, synced or _NEVER, record.key)


class InMemoryCalendarStore:
    """Calendar records and leases in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.calendars: dict[str, CalendarRecord] = {}
        self.locks: dict[str, dict[str, Any]] = {}
        self._lock_guard = threading.Lock()

    def get_calendar(self, key: str) -> CalendarRecord | None:
        """The calendar with this key, or None."""
        record = self.calendars.get(key)
        return record.model_copy(deep=True) if record else None

    def put_calendar(self, record: CalendarRecord) -> None:
        """Create or replace a calendar record."""
        self.calendars[record.key] = record.model_copy(deep=True)

    def update_calendar(self, key: str, fields: Mapping[str, Any]) -> None:
        """Set some fields of an existing calendar record (``UnknownResource`` if it does not exist)."""
        record = self.calendars.get(key)
        if record is None:
            raise errors.UnknownResource(f"unknown calendar {key}")
        self.calendars[key] = CalendarRecord.model_validate({**record.model_dump(), **dict(fields)})

    def list_calendars(self) -> list[CalendarRecord]:
        """Every calendar record, by key."""
        return [r.model_copy(deep=True) for _, r in sorted(self.calendars.items())]

    def list_calendars_synced_before(
        self, cutoff: datetime, *, limit: int, after: CalendarRecord | None = None
    ) -> list[CalendarRecord]:
        """Never synced (by key), then last synced before ``cutoff`` (by time, key); the page after ``after``."""
        due = [r for r in self.calendars.values() if r.last_synced_at is None or r.last_synced_at < cutoff]
        due.sort(key=_synced_order)
        if after is not None:
            due = [r for r in due if _synced_order(r) > _synced_order(after)]
        return [r.model_copy(deep=True) for r in due[:limit]]

    def list_calendars_by_status(
        self, status: str, *, limit: int, after_key: str | None = None
    ) -> list[CalendarRecord]:
        """Calendars with this status, by key, after ``after_key``."""
        found = [
            r for k, r in sorted(self.calendars.items()) if r.status == status and (after_key is None or k > after_key)
        ]
        return [r.model_copy(deep=True) for r in found[:limit]]

    def acquire_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Take the lease (or a stale one, or our own); if another holder has it, mark it pending."""
        with self._lock_guard:
            lock = self.locks.get(calendar_key)
            if lock is None or lock["expires_at"] <= now or lock["holder"] == holder:
                self.locks[calendar_key] = {
                    "holder": holder,
                    "expires_at": now + timedelta(seconds=lease_s),
                    "pending": False,
                }
                return True
            lock["pending"] = True
            return False

    def release_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Release, unless pending: then clear pending, extend the lease and return True."""
        with self._lock_guard:
            lock = self.locks.get(calendar_key)
            if lock is None or lock["holder"] != holder:
                return False
            if lock["pending"]:
                lock["pending"] = False
                lock["expires_at"] = now + timedelta(seconds=lease_s)
                return True
            del self.locks[calendar_key]
            return False
