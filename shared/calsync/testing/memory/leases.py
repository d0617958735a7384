"""``ports.LeaseStore`` in memory: lease renewal and the lease-fenced sync writes, over the calendar
store's leases and records and the mirror store's cursors (it is a part of ``InMemoryStateStore``)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from calsync import errors
from calsync.model import CalendarRecord, SyncCursor


class InMemoryLeaseStore:
    """Renews leases and commits a holder's sync state only while its lease is live."""

    calendars: dict[str, CalendarRecord]
    locks: dict[str, dict[str, Any]]
    cursors: dict[str, SyncCursor]
    _lock_guard: threading.Lock

    def _holds(self, calendar_key: str, holder: str, now: datetime) -> bool:
        lock = self.locks.get(calendar_key)
        return lock is not None and lock["holder"] == holder and lock["expires_at"] > now

    def renew_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Extend our live lease (``pending`` kept); False when it is not ours or has expired."""
        with self._lock_guard:
            if not self._holds(calendar_key, holder, now):
                return False
            self.locks[calendar_key]["expires_at"] = now + timedelta(seconds=lease_s)
            return True

    def lock_expires_at(self, calendar_key: str) -> datetime | None:
        """When the calendar's current lease ends (None: no lease)."""
        lock = self.locks.get(calendar_key)
        return None if lock is None else lock["expires_at"]

    def commit_sync_state(
        self,
        calendar_key: str,
        holder: str,
        *,
        now: datetime,
        calendar_fields: Mapping[str, Any] | None = None,
        cursor: SyncCursor | None = None,
        clear_cursor: bool = False,
    ) -> bool:
        """If ``holder``'s lease is live at ``now``: calendar fields, then the cursor (all or nothing)."""
        with self._lock_guard:
            if not self._holds(calendar_key, holder, now):
                return False
            if calendar_fields:
                record = self.calendars.get(calendar_key)
                if record is None:
                    raise errors.UnknownResource(f"unknown calendar {calendar_key}")
                self.calendars[calendar_key] = CalendarRecord.model_validate(
                    {**record.model_dump(), **dict(calendar_fields)}
                )
            if cursor is not None:
                self.cursors[calendar_key] = cursor.model_copy(deep=True)
            elif clear_cursor:
                self.cursors.pop(calendar_key, None)
            return True
