"""``ports.ConflictStore`` on Firestore: recorded divergences between Google and the backend.

- ``{env}_conflicts/{id}``: ``Conflict``, a flat collection. Listings use equality filters only
  (served by single-field indexes); the retention delete needs the composite ``(status, resolved_at)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.cloud.firestore_v1.base_query import FieldFilter

from calsync.adapters.firestore.base import FirestoreBase, classified
from calsync.model import Conflict
from calsync.ports.queries import ConflictQuery


class FirestoreConflictStore(FirestoreBase):
    """Conflicts in Firestore."""

    @classified
    def get_conflicts(self, conflict_ids: Sequence[str]) -> dict[str, Conflict]:
        """The conflicts with these ids (batched ``get_all``)."""
        self._schema()
        return self._get_all(self._col("conflicts"), conflict_ids, Conflict)

    @classified
    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Create or replace conflicts in batches."""
        self._schema()
        col = self._col("conflicts")
        self._commit([(col.document(c.id), c.model_dump()) for c in conflicts])

    @classified
    def list_conflicts(self, spec: ConflictQuery) -> tuple[list[Conflict], str | None]:
        """One page of conflicts by id (equality filters only: served by single-field indexes)."""
        self._schema()
        col = self._col("conflicts")
        query = col.order_by("__name__")
        for name, value in (("calendar_key", spec.calendar_key), ("status", spec.status), ("kind", spec.kind)):
            if value is not None:
                query = query.where(filter=FieldFilter(name, "==", value))
        if spec.page_token:
            query = query.start_after({"__name__": col.document(spec.page_token)})
        snaps = list(query.limit(spec.page_size).stream())
        token = snaps[-1].id if len(snaps) == spec.page_size else None
        return [Conflict.model_validate(s.to_dict()) for s in snaps], token

    @classified
    def delete_resolved_conflicts_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` resolved conflicts resolved before ``cutoff``."""
        self._schema()
        query = self._col("conflicts").where(filter=FieldFilter("status", "==", "resolved"))
        query = query.where(filter=FieldFilter("resolved_at", "<", cutoff)).limit(limit)
        refs = [snap.reference for snap in query.select([]).stream()]
        self._commit([(ref, None) for ref in refs])
        return len(refs)
