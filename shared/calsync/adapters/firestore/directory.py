"""``ports.DirectoryStore`` on Firestore: each clinic's professionals and rooms, and allocations.

- ``{env}_professionals/{clinic}__{id}`` and ``{env}_rooms/{clinic}__{id}``: the directory, replaced
  clinic by clinic (``PUT /clinics/{id}/professionals|rooms``).
- ``{env}_free_busy/{clinic}__{professional}``: ``FreeBusyState``, written by the availability check.
- ``{env}_allocations/{id}``: ``Allocation`` as agendador sent it; composite index ``(clinic_id, start)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from calsync.adapters.firestore.base import MAX_EVENT_SPAN, FirestoreBase, classified
from calsync.model import Allocation, FreeBusyState, Professional, Room


class FirestoreDirectoryStore(FirestoreBase):
    """The directory and allocations in Firestore."""

    def _replace_directory(self, name: str, clinic_id: str, items: Sequence[Any]) -> None:
        col = self._col(name)
        keep = {f"{clinic_id}__{item.id}": item.model_dump() for item in items}
        old = col.where(filter=FieldFilter("clinic_id", "==", clinic_id)).select([]).stream()
        writes: list[tuple[Any, Mapping[str, Any] | None]] = [(s.reference, None) for s in old if s.id not in keep]
        writes.extend((col.document(doc_id), data) for doc_id, data in keep.items())
        self._commit(writes)

    def _list_directory(self, name: str, clinic_id: str) -> list[dict[str, Any]]:
        query = self._col(name).where(filter=FieldFilter("clinic_id", "==", clinic_id))
        return sorted((s.to_dict() or {} for s in query.stream()), key=lambda d: str(d.get("id")))

    @classified
    def replace_professionals(self, clinic_id: str, items: Sequence[Professional]) -> None:
        """Make ``items`` the clinic's professionals (others of the clinic are removed)."""
        self._schema()
        self._replace_directory("professionals", clinic_id, items)

    @classified
    def list_professionals(self, clinic_id: str) -> list[Professional]:
        """The clinic's professionals, by id."""
        self._schema()
        return [Professional.model_validate(d) for d in self._list_directory("professionals", clinic_id)]

    @classified
    def put_free_busy_states(self, items: Sequence[FreeBusyState]) -> None:
        """Record each professional's free/busy state (one document each)."""
        self._schema()
        col = self._col("free_busy")
        self._commit([(col.document(f"{i.clinic_id}__{i.professional_id}"), i.model_dump()) for i in items])

    @classified
    def list_free_busy_states(self, clinic_id: str | None = None) -> list[FreeBusyState]:
        """Free/busy states of one clinic (None: every clinic), by clinic and professional id."""
        self._schema()
        query: Any = self._col("free_busy")
        if clinic_id is not None:
            query = query.where(filter=FieldFilter("clinic_id", "==", clinic_id))
        found = [FreeBusyState.model_validate(s.to_dict()) for s in query.stream()]
        return sorted(found, key=lambda f: (f.clinic_id, f.professional_id))

    @classified
    def replace_rooms(self, clinic_id: str, items: Sequence[Room]) -> None:
        """Make ``items`` the clinic's rooms (others of the clinic are removed)."""
        self._schema()
        self._replace_directory("rooms", clinic_id, items)

    @classified
    def list_rooms(self, clinic_id: str) -> list[Room]:
        """The clinic's rooms, by id."""
        self._schema()
        return [Room.model_validate(d) for d in self._list_directory("rooms", clinic_id)]

    @classified
    def get_allocations(self, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        """The allocations with these ids (batched ``get_all``)."""
        self._schema()
        return self._get_all(self._col("allocations"), allocation_ids, Allocation)

    @classified
    def put_allocations(self, items: Sequence[Allocation]) -> None:
        """Create or replace allocations in batches of at most 500."""
        self._schema()
        col = self._col("allocations")
        self._commit([(col.document(a.id), a.model_dump()) for a in items])

    @classified
    def list_allocations(self, clinic_id: str, time_min: datetime, time_max: datetime) -> list[Allocation]:
        """The clinic's allocations overlapping the window (range on ``start``, ``end`` checked here)."""
        self._schema()
        query = self._col("allocations").where(filter=FieldFilter("clinic_id", "==", clinic_id))
        query = query.where(filter=FieldFilter("start", "<", time_max))
        # Allocations last hours: bounding `start` from below keeps the scan to the window.
        query = query.where(filter=FieldFilter("start", ">=", time_min - MAX_EVENT_SPAN))
        found = [Allocation.model_validate(s.to_dict()) for s in query.stream()]
        return sorted((a for a in found if a.end > time_min), key=lambda a: a.id)
