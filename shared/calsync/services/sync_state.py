"""The position of a sync pass in progress, and its saved form (``SyncCursor``) for a continuation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from calsync.copying import copy_into
from calsync.model import SyncCursor


@dataclass
class PassState:
    """Position of the pass in progress (what a cursor saves)."""

    mode: Literal["full", "incremental"]
    cursor_id: str
    started_at: datetime
    page_token: str | None = None
    base_sync_token: str | None = None
    time_min: datetime | None = None
    time_max: datetime | None = None
    tombstone_diff: bool = False
    seen_ids: set[str] = field(default_factory=set)
    pages: int = 0
    resumed: bool = False
    follow_up: bool = False
    next_sync_token: str | None = None  # the listing is complete; the tombstone diff may remain
    saves: int = 0

    @classmethod
    def of(cls, cursor: SyncCursor) -> PassState:
        """The pass a saved cursor resumes."""
        return copy_into(cls, cursor, seen_ids=set(cursor.seen_ids), resumed=True)

    def cursor(self, calendar_key: str, query_version: str) -> SyncCursor:
        """This position, to save for a continuation."""
        return copy_into(
            SyncCursor, self, calendar_key=calendar_key, query_version=query_version, seen_ids=sorted(self.seen_ids)
        )
