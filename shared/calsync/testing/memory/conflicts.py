"""``ports.ConflictStore`` in memory: conflicts by id, paged like the Firestore store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from calsync.model import Conflict
from calsync.ports.queries import ConflictQuery


class InMemoryConflictStore:
    """Conflicts in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts: dict[str, Conflict] = {}

    def get_conflicts(self, conflict_ids: Sequence[str]) -> dict[str, Conflict]:
        """The conflicts with these ids."""
        return {i: self.conflicts[i].model_copy(deep=True) for i in conflict_ids if i in self.conflicts}

    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Create or replace conflicts."""
        for conflict in conflicts:
            self.conflicts[conflict.id] = conflict.model_copy(deep=True)

    def list_conflicts(self, spec: ConflictQuery) -> tuple[list[Conflict], str | None]:
        """One page of conflicts by id; the token is the last id (a full page always has one)."""
        items = [
            c
            for _, c in sorted(self.conflicts.items())
            if (spec.calendar_key is None or c.calendar_key == spec.calendar_key)
            and (spec.status is None or c.status == spec.status)
            and (spec.kind is None or c.kind == spec.kind)
            and (not spec.page_token or c.id > spec.page_token)
        ]
        chunk = items[: spec.page_size]
        token = chunk[-1].id if len(chunk) == spec.page_size else None
        return [c.model_copy(deep=True) for c in chunk], token

    def delete_resolved_conflicts_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` conflicts resolved before ``cutoff``."""
        old = [
            k
            for k, c in self.conflicts.items()
            if c.status == "resolved" and c.resolved_at is not None and c.resolved_at < cutoff
        ][:limit]
        for key in old:
            del self.conflicts[key]
        return len(old)
