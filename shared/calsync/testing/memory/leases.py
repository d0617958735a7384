"""``ports.LeaseStore`` in memory: lease renewal and the lease-fenced sync writes, over the calendar
store's leases and records and the mirror store's cursors (it is a part of ``InMemoryStateStore``)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from calsync import errors
from calsync.model import CalendarRecord, SyncCursor
from calsync.ports.queries import SyncCommit


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

    def commit_sync_state(self, commit: SyncCommit) -> bool:
        """If ``holder``'s lease is live at ``now``: calendar fields, then the cursor (all or nothing)."""
        with self._lock_guard:
            if not self._holds(commit.calendar_key, commit.holder, commit.now):
                return False
            if commit.calendar_fields:
                record = self.calendars.get(commit.calendar_key)
                if record is None:
                    raise errors.UnknownResource(f"unknown calendar {commit.calendar_key}")
                self.calendars[commit.calendar_key] = CalendarRecord.model_validate(
                    {**record.model_dump(), **dict(commit.calendar_fields)}
                )
            if commit.cursor is not None:
                self.cursors[commit.calendar_key] = commit.cursor.model_copy(deep=True)
            elif commit.clear_cursor:
                self.cursors.pop(commit.calendar_key, None)
            return True
