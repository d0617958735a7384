"""The in-memory state store (every store port in one object) and a counting wrapper for any store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from calsync.model import Conflict, MirrorEvent
from calsync.ports import StateStore
from calsync.testing.memory.calendars import InMemoryCalendarStore
from calsync.testing.memory.channels import InMemoryChannelStore
from calsync.testing.memory.conflicts import InMemoryConflictStore
from calsync.testing.memory.directory import InMemoryDirectoryStore
from calsync.testing.memory.leases import InMemoryLeaseStore
from calsync.testing.memory.mirror import InMemoryMirrorStore
from calsync.testing.memory.plans import InMemoryPlanStore
from calsync.testing.memory.retention import InMemoryRetentionStore
from calsync.testing.memory.writers import InMemoryWriterStore


class InMemoryStateStore(
    InMemoryCalendarStore,
    InMemoryLeaseStore,
    InMemoryMirrorStore,
    InMemoryConflictStore,
    InMemoryChannelStore,
    InMemoryPlanStore,
    InMemoryDirectoryStore,
    InMemoryRetentionStore,
    InMemoryWriterStore,
):
    """``ports.PublishStore`` in memory: the aggregate stores of ``calsync.testing.memory`` in one."""

    def _registered(self, calendar_key: str) -> bool:
        """Retention walks the registered calendars (a mirror without a calendar record is left alone)."""
        return calendar_key in self.calendars


class CountingStore:
    """Wraps any ``StateStore`` and counts mirror reads/writes (the acceptance figures)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()
        self.read_ids: list[str] = []

    def reset(self) -> None:
        """Zero the counters."""
        self.counts.clear()
        self.read_ids.clear()

    def get_events(self, calendar_key: str, event_ids: Sequence[str]) -> dict[str, MirrorEvent]:
        """Counted ``get_events``."""
        self.counts["mirror_read_calls"] += 1
        self.counts["mirror_reads"] += len(event_ids)
        self.read_ids.extend(event_ids)
        return self.inner.get_events(calendar_key, event_ids)

    def put_events(self, events: Sequence[MirrorEvent]) -> None:
        """Counted ``put_events``."""
        self.counts["mirror_writes"] += len(events)
        self.inner.put_events(events)

    def merge_observed_events(self, events: Sequence[MirrorEvent]) -> None:
        """Counted ``merge_observed_events`` (mirror writes)."""
        self.counts["mirror_writes"] += len(events)
        self.inner.merge_observed_events(events)

    def record_published(self, events: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Counted ``record_published`` (mirror writes)."""
        self.counts["mirror_writes"] += len(events)
        return self.inner.record_published(events)

    def put_conflicts(self, conflicts: Sequence[Conflict]) -> None:
        """Counted ``put_conflicts``."""
        self.counts["conflict_writes"] += len(conflicts)
        self.inner.put_conflicts(conflicts)

    def window_event_ids(self, calendar_key: str, time_min: datetime, time_max: datetime) -> set[str]:
        """Counted window query."""
        self.counts["window_queries"] += 1
        return self.inner.window_event_ids(calendar_key, time_min, time_max)

    def system_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Counted overlap query."""
        self.counts["overlap_queries"] += 1
        return self.inner.system_events_overlapping(calendar_key, time_min, time_max)

    def manual_events_overlapping(self, calendar_key: str, time_min: datetime, time_max: datetime) -> list[MirrorEvent]:
        """Counted overlap query."""
        self.counts["overlap_queries"] += 1
        return self.inner.manual_events_overlapping(calendar_key, time_min, time_max)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ReadCountingStore:
    """Wraps any store and counts the calendar and channel documents its reads return.

    ``documents`` counts records returned; ``billed`` is what Firestore charges (one read per document,
    and one for a query or lookup that finds none); per-method counts are kept under the method's name.
    Every other method passes through uncounted.
    """

    COUNTED = frozenset(
        {
            "get_calendar",
            "list_calendars",
            "list_calendars_synced_before",
            "list_calendars_by_status",
            "get_channel",
            "active_channel",
            "list_channels_for_calendar",
            "list_active_channels",
            "list_active_channels_expiring_before",
        }
    )

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def reset(self) -> None:
        """Zero the counters."""
        self.counts.clear()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.COUNTED:
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            found = len(result) if isinstance(result, list) else int(result is not None)
            self.counts["documents"] += found
            self.counts["billed"] += max(found, 1)
            self.counts[name] += found
            return result

        return counted
