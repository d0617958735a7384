"""``ports.LeaseStore`` on Firestore: renewing a sync's lease and fencing its progress with it.

The lease is ``{env}_locks/{key}`` (see ``calendars``). Renewal is a compare-and-set on that document,
like acquire and release. The writes that decide where the next pass starts (the sync token and
status on ``{env}_calendars/{key}``, the cursor under ``.../sync``) are made in one transaction that
first reads the lease: a holder whose lease expired or was taken over writes nothing. The transaction
only reads the lease document, once per pass or continuation, so it adds one short reader to the
1-3 writers a lease sees (https://cloud.google.com/firestore/docs/manage-data/transactions).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from calsync import errors
from calsync.adapters.firestore.base import FirestoreBase, classified
from calsync.adapters.firestore.calendars import lock_retrying
from calsync.adapters.firestore.mirror import cursor_documents
from calsync.ports.queries import SyncCommit


def _holds(lock: Mapping[str, Any] | None, holder: str, now: datetime) -> bool:
    return lock is not None and lock.get("holder") == holder and lock["expires_at"] > now


class FirestoreLeaseStore(FirestoreBase):
    """Lease renewal and the lease-fenced sync writes (see the module docstring)."""

    @classified
    def renew_lock(self, calendar_key: str, holder: str, *, lease_s: float, now: datetime) -> bool:
        """Extend our live lease by compare-and-set (``pending`` kept); False when it is not ours or expired."""
        self._schema()
        ref = self._col("locks").document(calendar_key)

        def attempt() -> bool:
            snap = ref.get()
            if not snap.exists or not _holds(snap.to_dict(), holder, now):
                return False
            unchanged = self.client.write_option(last_update_time=snap.update_time)
            # FailedPrecondition: a trigger marked pending (or a takeover) since the read; decide again.
            ref.update({"expires_at": now + timedelta(seconds=lease_s)}, option=unchanged)
            return True

        result: bool = lock_retrying()(attempt)
        return result

    @classified
    def lock_expires_at(self, calendar_key: str) -> datetime | None:
        """When the calendar's current lease ends (None: no lease)."""
        self._schema()
        snap = self._col("locks").document(calendar_key).get()
        if not snap.exists:
            return None
        expires: datetime = (snap.to_dict() or {})["expires_at"]
        return expires

    @classified
    def commit_sync_state(self, commit: SyncCommit) -> bool:
        """In one transaction, if ``holder``'s lease is live at ``now``: calendar fields, then the cursor."""
        self._schema()
        lock_ref = self._col("locks").document(commit.calendar_key)
        calendar_ref = self._calendar_ref(commit.calendar_key)
        sync = calendar_ref.collection("sync")
        touch_cursor = commit.cursor is not None or commit.clear_cursor

        @firestore.transactional
        def write(transaction: Any) -> bool:
            lock = lock_ref.get(transaction=transaction)
            old = sync.document("cursor").get(transaction=transaction) if touch_cursor else None
            if not lock.exists or not _holds(lock.to_dict(), commit.holder, commit.now):
                return False
            if commit.calendar_fields:
                transaction.update(calendar_ref, dict(commit.calendar_fields))
            if not touch_cursor:
                return True
            old_parts = int((old.to_dict() or {}).get("seen_chunks", 0)) if old is not None and old.exists else 0
            writes = cursor_documents(sync, commit.cursor) if commit.cursor is not None else []
            new_parts = len(writes) - 1 if writes else 0
            for n in range(new_parts, old_parts):
                transaction.delete(sync.document(f"seen_{n}"))
            if commit.cursor is None:
                transaction.delete(sync.document("cursor"))
            for ref, data in writes:
                transaction.set(ref, dict(data or {}))
            return True

        try:
            result: bool = write(self.client.transaction())
        except gexc.NotFound as exc:
            raise errors.UnknownResource(f"unknown calendar {commit.calendar_key}") from exc
        return result
