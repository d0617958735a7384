"""The position of a sync pass in progress, and its saved form (``SyncCursor``) for a continuation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

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
        return cls(
            mode=cursor.mode,
            cursor_id=cursor.cursor_id,
            started_at=cursor.started_at,
            page_token=cursor.page_token,
            base_sync_token=cursor.base_sync_token,
            time_min=cursor.time_min,
            time_max=cursor.time_max,
            tombstone_diff=cursor.tombstone_diff,
            seen_ids=set(cursor.seen_ids),
            pages=cursor.pages,
            resumed=True,
            follow_up=cursor.follow_up,
            next_sync_token=cursor.next_sync_token,
            saves=cursor.saves,
        )

    def cursor(self, calendar_key: str, query_version: str) -> SyncCursor:
        """This position, to save for a continuation."""
        return SyncCursor(
            calendar_key=calendar_key,
            cursor_id=self.cursor_id,
            mode=self.mode,
            page_token=self.page_token,
            next_sync_token=self.next_sync_token,
            query_version=query_version,
            base_sync_token=self.base_sync_token,
            time_min=self.time_min,
            time_max=self.time_max,
            tombstone_diff=self.tombstone_diff,
            seen_ids=sorted(self.seen_ids),
            pages=self.pages,
            started_at=self.started_at,
            follow_up=self.follow_up,
            saves=self.saves,
        )
