"""Ports: the interfaces services depend on (cosmicpython's adapters pattern).

Services receive these as arguments; ``adapters/`` implements them on Google's clients and
``calsync.testing`` implements them in memory. Nothing here imports google.*, flask or requests.

- ``calendar_api``: ``CalendarApi`` (Calendar API v3) and its batch types.
- ``stores``: one narrow store port per aggregate and the composites ``StateStore``, ``PushStore``
  and ``PublishStore``.
- ``queries``: the parameter objects of the store ports' wider calls, and ``pages``.
- here: ``Clock``, ``TaskQueue`` (Cloud Tasks) and ``Secrets``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import SecretStr

from calsync.ports.calendar_api import (
    FREEBUSY_MAX_CALENDARS,
    BatchKind,
    BatchOp,
    BatchResult,
    BusyTimes,
    CalendarApi,
    ListEvents,
    SendUpdates,
)
from calsync.ports.queries import ConflictQuery, MirrorQuery, SyncCommit, UnknownChannelSeen, pages
from calsync.ports.stores import (
    AllocationStore,
    CalendarStore,
    ChannelQueries,
    ChannelStore,
    CleanupStore,
    ConflictRetention,
    ConflictStore,
    DirectoryStore,
    DueCalendarQueries,
    ExpiringKind,
    LeaseStore,
    LockStore,
    MirrorRetention,
    MirrorStore,
    PlanStore,
    PublishStore,
    PushStore,
    QuotaStore,
    RetentionStore,
    StateStore,
)
from calsync.ports.writers import Admission, WriterStore

__all__ = [
    "FREEBUSY_MAX_CALENDARS",
    "Admission",
    "AllocationStore",
    "BatchKind",
    "BatchOp",
    "BatchResult",
    "BusyTimes",
    "CalendarApi",
    "CalendarStore",
    "ChannelQueries",
    "ChannelStore",
    "CleanupStore",
    "Clock",
    "ConflictQuery",
    "ConflictRetention",
    "ConflictStore",
    "DirectoryStore",
    "DueCalendarQueries",
    "ExpiringKind",
    "LeaseStore",
    "ListEvents",
    "LockStore",
    "MirrorQuery",
    "MirrorRetention",
    "MirrorStore",
    "PlanStore",
    "PublishStore",
    "PushStore",
    "QuotaStore",
    "RetentionStore",
    "Secrets",
    "SendUpdates",
    "StateStore",
    "SyncCommit",
    "TaskQueue",
    "TaskRequest",
    "UnknownChannelSeen",
    "WriterStore",
    "pages",
]


class Clock(Protocol):
    """Where services get the time from (tests freeze or advance it)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


# --- Cloud Tasks, secrets ------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRequest:
    """An HTTP task: POST ``payload`` as JSON to ``url`` (with an OIDC token in production)."""

    queue: str
    url: str
    payload: Mapping[str, Any]
    name: str | None = None
    schedule_time: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class TaskQueue(Protocol):
    """Cloud Tasks: at-least-once delivery of HTTP tasks."""

    def enqueue(self, task: TaskRequest) -> bool:
        """Create the task; False when a task with the same name already exists (already queued)."""
        ...


class Secrets(Protocol):
    """Where credentials come from (Secret Manager in the cloud, ``.env`` in dev)."""

    def get(self, name: str) -> SecretStr:
        """The latest version of secret ``name`` (``SecretUnavailable`` if missing)."""
        ...
