"""``ports.CalendarStore`` on Firestore: calendar records and their per-calendar leases.

- ``{env}_calendars/{key}``: ``CalendarRecord``; the scheduled jobs page through the calendars due
  by cursor queries on the composite indexes (last_synced_at, key) and (status, key).
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
from google.cloud.firestore_v1.base_query import FieldFilter
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
    def list_calendars_synced_before(
        self, cutoff: datetime, *, limit: int, after: CalendarRecord | None = None
    ) -> list[CalendarRecord]:
        """Never synced (by key), then last synced before ``cutoff`` (by time, key), after ``after``.

        Two cursor queries on the (last_synced_at, key) index: a range filter skips null values, so
        the never-synced calendars have their own ``== None`` query, and they come first (Firestore
        orders null before every timestamp).
        """
        self._schema()
        col = self._col("calendars")
        found: list[CalendarRecord] = []
        if after is None or after.last_synced_at is None:
            never = col.where(filter=FieldFilter("last_synced_at", "==", None)).order_by("key")
            if after is not None:
                never = never.start_after({"key": after.key})
            found = [CalendarRecord.model_validate(s.to_dict()) for s in never.limit(limit).stream()]
        if len(found) < limit:
            stale = col.where(filter=FieldFilter("last_synced_at", "<", cutoff))
            stale = stale.order_by("last_synced_at").order_by("key")
            if after is not None and after.last_synced_at is not None:
                stale = stale.start_after({"last_synced_at": after.last_synced_at, "key": after.key})
            found += [CalendarRecord.model_validate(s.to_dict()) for s in stale.limit(limit - len(found)).stream()]
        return found

    @classified
    def list_calendars_by_status(
        self, status: str, *, limit: int, after_key: str | None = None
    ) -> list[CalendarRecord]:
        """Calendars with this status, by key, after ``after_key`` (the (status, key) index)."""
        self._schema()
        query = self._col("calendars").where(filter=FieldFilter("status", "==", status)).order_by("key")
        if after_key is not None:
            query = query.start_after({"key": after_key})
        return [CalendarRecord.model_validate(s.to_dict()) for s in query.limit(limit).stream()]

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
