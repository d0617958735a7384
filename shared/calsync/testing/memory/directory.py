"""``ports.DirectoryStore`` in memory: each clinic's professionals and rooms, and allocations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from calsync.model import Allocation, FreeBusyState, Professional, Room
from calsync.testing.memory.mirror import MAX_EVENT_SPAN

Item = TypeVar("Item", Professional, Room)


def _replace(table: dict[tuple[str, str], Item], clinic_id: str, items: Sequence[Item]) -> None:
    for key in [k for k in table if k[0] == clinic_id]:
        del table[key]
    for item in items:
        table[(clinic_id, item.id)] = item.model_copy(deep=True)


def _list(table: dict[tuple[str, str], Item], clinic_id: str) -> list[Item]:
    return [v.model_copy(deep=True) for k, v in sorted(table.items()) if k[0] == clinic_id]


class InMemoryDirectoryStore:
    """The directory and allocations in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.professionals: dict[tuple[str, str], Professional] = {}
        self.rooms: dict[tuple[str, str], Room] = {}
        self.allocations: dict[str, Allocation] = {}
        self.free_busy: dict[tuple[str, str], FreeBusyState] = {}

    def replace_professionals(self, clinic_id: str, items: Sequence[Professional]) -> None:
        """Make ``items`` the clinic's professionals."""
        _replace(self.professionals, clinic_id, items)

    def list_professionals(self, clinic_id: str) -> list[Professional]:
        """The clinic's professionals, by id."""
        return _list(self.professionals, clinic_id)

    def put_free_busy_states(self, items: Sequence[FreeBusyState]) -> None:
        """Record each professional's free/busy state."""
        for item in items:
            self.free_busy[(item.clinic_id, item.professional_id)] = item.model_copy(deep=True)

    def list_free_busy_states(self, clinic_id: str | None = None) -> list[FreeBusyState]:
        """Free/busy states of one clinic (None: every clinic), by clinic and professional id."""
        return [v.model_copy(deep=True) for k, v in sorted(self.free_busy.items()) if clinic_id in (None, k[0])]

    def replace_rooms(self, clinic_id: str, items: Sequence[Room]) -> None:
        """Make ``items`` the clinic's rooms."""
        _replace(self.rooms, clinic_id, items)

    def list_rooms(self, clinic_id: str) -> list[Room]:
        """The clinic's rooms, by id."""
        return _list(self.rooms, clinic_id)

    def get_allocations(self, allocation_ids: Sequence[str]) -> dict[str, Allocation]:
        """The allocations with these ids."""
        return {i: self.allocations[i].model_copy(deep=True) for i in allocation_ids if i in self.allocations}

    def put_allocations(self, items: Sequence[Allocation]) -> None:
        """Create or replace allocations."""
        for item in items:
            self.allocations[item.id] = item.model_copy(deep=True)

    def list_allocations(self, clinic_id: str, time_min: datetime, time_max: datetime) -> list[Allocation]:
        """The clinic's allocations overlapping the window, by id (as Firestore's, only those starting
        at most ``MAX_EVENT_SPAN`` before ``time_min``)."""
        return [
            a.model_copy(deep=True)
            for _, a in sorted(self.allocations.items())
            if a.clinic_id == clinic_id and time_min - MAX_EVENT_SPAN <= a.start < time_max and a.end > time_min
        ]
