"""``ports.RetentionStore`` in memory: expired plans (with progress), allocations, channels, free/busy states."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

from calsync.model import Allocation, ChannelRecord, FreeBusyState, Plan, PlanChunkProgress, UnknownChannel
from calsync.ports.stores import ExpiringKind


class InMemoryRetentionStore:
    """Deletes of expired records over the composite store's tables (mix into ``InMemoryStateStore``)."""

    plans: dict[str, Plan]
    progress: dict[tuple[str, str, int], PlanChunkProgress]
    allocations: dict[str, Allocation]
    channels: dict[str, ChannelRecord]
    free_busy: dict[tuple[str, str], FreeBusyState]
    unknown_channels: dict[str, UnknownChannel]

    def delete_expired(self, kind: ExpiringKind, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` records of ``kind`` whose ``expire_at`` is before ``now``; the count."""
        tables: dict[str, MutableMapping[Any, Any]] = {
            "plans": self.plans,
            "allocations": self.allocations,
            "channels": self.channels,
            "free_busy": self.free_busy,
            "unknown_channels": self.unknown_channels,
        }
        table = tables[kind]
        expired = sorted(k for k, v in table.items() if v.expire_at is not None and v.expire_at < now)[:limit]
        for key in expired:
            del table[key]
            if kind == "plans":
                for progress_key in [p for p in self.progress if p[0] == key]:
                    del self.progress[progress_key]
        return len(expired)
