"""``ports.CalendarStore`` on Firestore: calendar records and their per-calendar leases.

- ``{env}_calendars/{key}``: ``CalendarRecord``.
- ``{env}_locks/{key}``: the per-calendar lease (holder, expires_at, pending), kept apart from the
  calendar document so the lock's conditional writes contend with nothing else.

No transactions on the lease: Firestore's pessimistic transactions livelock on one hot document (on
the emulator every caller failed with 3 concurrent syncs of a calendar). Each step is one read and
one single-document write preconditioned on that read (create, or the read's update_time); a caller
that lost a race re-reads and decides again, so every write is a compare-and-set
(https://cloud.google.com/firestore/docs/manage-data/transactions#transactions_and_batched_writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random

from calsync import errors
from calsync.adapters.firestore.base import FirestoreBase, classified
from calsync.model import CalendarRecord

# The lease's compare-and-set steps: attempts per call, and the jitter between them (spreads racers apart).
LOCK_ATTEMPTS = 10
LOCK_RETRY_JITTER_S = 0.05


def lock_retrying() -> Retrying:
    """Re-run a read-then-preconditioned-write step when another caller wrote in between."""
    return Retrying(
        retry=retry_if_exception_type((gexc.AlreadyExists, gexc.FailedPrecondition, gexc.NotFound)),
        stop=stop_after_attempt(LOCK_ATTEMPTS),
        wait=wait_random(0, LOCK_RETRY_JITTER_S),
        reraise=True,  # a race lost LOCK_ATTEMPTS times surfaces as StoreUnavailable (retryable)
    )


class FirestoreCalendarStore(FirestoreBase):
    """Calendar records and leases in Firestore (see the module docstring for the layout)."""

    @classified
    def get_calendar(self, key: str) -> CalendarRecord | None:
        """The calendar with this key, or None."""
        self._schema()
        snap = self._calendar_ref(key).get()
        return CalendarRecord.model_validate(snap.to_dict()) if snap.exists else None

    @classified
    def put_calendar(self, record: CalendarRecord) -> None:
        """Create or replace a calendar record."""
        self._schema()
        self._calendar_ref(record.key).set(record.model_dump())

    @classified
    def update_calendar(self, key: str, fields: Mapping[str, Any]) -> None:
        """Set some fields of an existing calendar record (``UnknownResource`` if it does not exist)."""
        self._schema()
        try:
            self._calendar_ref(key).update(dict(fields))
        except gexc.NotFound as exc:
            raise errors.UnknownResource(f"unknown calendar {key}") from exc

    @classified
    def list_calendars(self) -> list[CalendarRecord]:
        """Every calendar record, by key."""
        self._schema()
        return [CalendarRecord.model_validate(s.to_dict()) for s in self._col("calendars").order_by("key").stream()]

    @classified
    def acquire_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Take the lease (or a stale one, or our own) by compare-and-set; if another holds it, mark pending."""
        self._schema()
        ref = self._col("locks").document(calendar_key)
        lease = {"holder": holder, "expires_at": now + timedelta(seconds=lease_s), "pending": False}

        def attempt() -> bool:
            snap = ref.get()
            if not snap.exists:
                ref.create(lease)  # AlreadyExists: another caller created it after our read
                return True
            lock = snap.to_dict() or {}
            if lock["expires_at"] <= now or lock["holder"] == holder:
                ref.update(lease, option=self.client.write_option(last_update_time=snap.update_time))
                return True
            if not lock.get("pending"):
                # Unconditional but for existence (update's own precondition): a second mark is harmless,
                # and NotFound (released since the read) retries, so this caller takes the free lease.
                ref.update({"pending": True})
            return False

        result: bool = lock_retrying()(attempt)
        return result

    @classified
    def release_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Release unless pending (compare-and-set on the read): then keep, extend, clear it, return True."""
        self._schema()
        ref = self._col("locks").document(calendar_key)

        def attempt() -> bool:
            snap = ref.get()
            lock = snap.to_dict() if snap.exists else None
            if lock is None or lock["holder"] != holder:
                return False
            unchanged = self.client.write_option(last_update_time=snap.update_time)
            if lock.get("pending"):
                ref.update({"pending": False, "expires_at": now + timedelta(seconds=lease_s)}, option=unchanged)
                return True
            # FailedPrecondition: a trigger marked pending after our read; the re-read sees it.
            ref.delete(option=unchanged)
            return False

        result: bool = lock_retrying()(attempt)
        return result
