"""``ports.RetentionStore`` on Firestore: delete records whose ``expire_at`` has passed.

Firestore's TTL policies (infra/terraform, one per collection and field ``expire_at``) delete the same
documents on their own, usually within a day; this is the cleanup job's share, so the schedule holds
where TTL does not run (the emulator) and without waiting. A plan goes with its ``progress`` documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from calsync.adapters.firestore.base import FirestoreBase, classified
from calsync.ports.stores import ExpiringKind


class FirestoreRetentionStore(FirestoreBase):
    """Deletes of expired records (``expire_at`` before now), a batch at a time."""

    @classified
    def delete_expired(self, kind: ExpiringKind, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` expired records of ``kind``; the count."""
        self._schema(self._client_for(kind))
        query = self._col(kind).where(filter=FieldFilter("expire_at", "<", now)).limit(limit)
        writes: list[tuple[Any, None]] = []
        count = 0
        for snap in query.stream():
            if kind == "plans":
                writes.extend((p.reference, None) for p in snap.reference.collection("progress").stream())
            writes.append((snap.reference, None))
            count += 1
        self._commit(writes, self._client_for(kind))
        return count
