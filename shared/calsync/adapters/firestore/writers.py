"""``ports.WriterStore`` on Firestore: the writer pool's timelines, calendar counts and lockouts.

- ``{env}_writers/{writer}``: ``WriterRecord``. The usage timeline is reserved in a transaction, so
  concurrent provisionings and publishes of one writer together stay under its budget; a lockout is
  recorded once Google answers 403 ``quotaExceeded`` and read (without a transaction) by every task
  before it writes, so a locked writer costs one document read per task and no Google call.
- ``{env}_provisioning/{calendar key}``: ``ProvisionMark``, the creation task scheduled for a calendar.
- a calendar's writer is found by the Google id on ``{env}_calendars`` (single-field index).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from calsync.adapters.firestore.base import FirestoreBase, classified
from calsync.model import CalendarRecord, ProvisionMark, WriterRecord
from calsync.ports.writers import Admission

# The document id of the account itself (no delegation subject): ids cannot be empty.
SELF_WRITER_ID = "-"


def _doc_id(writer: str) -> str:
    return writer or SELF_WRITER_ID


class FirestoreWriterStore(FirestoreBase):
    """Writer records in Firestore (see the module docstring for the layout)."""

    def _writer_ref(self, writer: str) -> Any:
        return self._col("writers").document(_doc_id(writer))

    @classified
    def find_calendar(self, google_calendar_id: str) -> CalendarRecord | None:
        """The calendar registered with this Google id, or None."""
        self._schema()
        query = self._col("calendars").where(filter=FieldFilter("google_calendar_id", "==", google_calendar_id))
        for snap in query.limit(1).stream():
            return CalendarRecord.model_validate(snap.to_dict())
        return None

    @classified
    def list_writers(self) -> list[WriterRecord]:
        """Every writer record, by writer."""
        self._schema()
        records = [WriterRecord.model_validate(s.to_dict()) for s in self._col("writers").stream()]
        return sorted(records, key=lambda r: r.writer)

    def _transact(self, writer: str, change: Any) -> Any:
        """Run ``change(record) -> (record, answer)`` on the writer's document in a transaction."""
        ref = self._writer_ref(writer)

        @firestore.transactional
        def run(transaction: Any) -> Any:
            snap = ref.get(transaction=transaction)
            current = WriterRecord.model_validate(snap.to_dict()) if snap.exists else WriterRecord(writer=writer)
            record, answer = change(current)
            if record is not None:
                transaction.set(ref, record.model_dump())
            return answer

        return run(self.client.transaction())

    @classified
    def reserve_writer(self, writer: str, seconds: float, now: datetime, *, calendars: int = 0) -> datetime:
        """Reserve ``seconds`` after the timeline's end (or ``now``); the window's start."""
        self._schema()

        def change(record: WriterRecord) -> tuple[WriterRecord, datetime]:
            start = max(now, record.next_free_at) if record.next_free_at is not None else now
            update = {
                "next_free_at": start + timedelta(seconds=seconds),
                "calendars": record.calendars + calendars,
                "updated_at": now,
            }
            return record.model_copy(update=update), start

        result: datetime = self._transact(writer, change)
        return result

    @classified
    def lock_writer(self, writer: str, until: datetime, now: datetime, *, reason: str) -> WriterRecord:
        """Record a lockout until ``until`` (a later one already recorded is kept)."""
        self._schema()

        def change(record: WriterRecord) -> tuple[WriterRecord, WriterRecord]:
            later = max(until, record.locked_until) if record.locked_until is not None else until
            update = {"locked_until": later, "lock_reason": reason, "locks": record.locks + 1, "updated_at": now}
            locked = record.model_copy(update=update)
            return locked, locked

        result: WriterRecord = self._transact(writer, change)
        return result

    @classified
    def admit_writer(self, writer: str, now: datetime, *, probe_s: float) -> Admission:
        """None: write now; else when to come back (one probe per ended lockout)."""
        self._schema()
        snap = self._writer_ref(writer).get()
        if not snap.exists or (snap.to_dict() or {}).get("locked_until") is None:
            return Admission()

        def change(record: WriterRecord) -> tuple[WriterRecord | None, Admission]:
            if record.locked_until is None:
                return None, Admission()
            if now < record.locked_until:
                return None, Admission(wait_until=record.locked_until)
            update = {"locked_until": now + timedelta(seconds=probe_s), "probes": record.probes + 1, "updated_at": now}
            return record.model_copy(update=update), Admission(probe=True)

        result: Admission = self._transact(writer, change)
        return result

    @classified
    def unlock_writer(self, writer: str, now: datetime) -> None:
        """Clear the lockout (only a transaction when there is one)."""
        self._schema()
        snap = self._writer_ref(writer).get()
        if not snap.exists or (snap.to_dict() or {}).get("locked_until") is None:
            return

        def change(record: WriterRecord) -> tuple[WriterRecord | None, None]:
            if record.locked_until is None:
                return None, None
            return record.model_copy(update={"locked_until": None, "lock_reason": None, "updated_at": now}), None

        self._transact(writer, change)

    @classified
    def get_provision_mark(self, calendar_key: str) -> ProvisionMark | None:
        """The creation task scheduled for a calendar, if any."""
        self._schema()
        snap = self._col("provisioning").document(calendar_key).get()
        return ProvisionMark.model_validate(snap.to_dict()) if snap.exists else None

    @classified
    def put_provision_mark(self, mark: ProvisionMark) -> None:
        """Record the creation task scheduled for a calendar."""
        self._schema()
        self._col("provisioning").document(mark.calendar_key).set(mark.model_dump())
