"""Fakes of calsync's ports for tests, the local stack and benchmarks (cosmicpython style: fakes
implement the real ports; ``tests/contract`` checks them against the real adapters).

Not deployed: ``scripts/bundle.py`` leaves this package out of the functions' source zips.

- ``InMemoryStateStore`` (``ports.PublishStore``), composed of one in-memory store per store port
  (``memory/``); ``CountingStore``, which counts the mirror reads/writes of any store, and
  ``ReadCountingStore``, which counts the calendar and channel documents its reads return;
- ``FakeCalendarApi`` (``ports.CalendarApi``);
- ``FrozenClock`` (``ports.Clock``) and ``RecordingTaskQueue`` (``ports.TaskQueue``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calsync.testing.calendar_api import FakeCalendarApi
from calsync.testing.clock import FrozenClock, RecordingTaskQueue
from calsync.testing.fakes import CountingStore, InMemoryStateStore, ReadCountingStore
from calsync.testing.memory.calendars import InMemoryCalendarStore
from calsync.testing.memory.channels import InMemoryChannelStore
from calsync.testing.memory.conflicts import InMemoryConflictStore
from calsync.testing.memory.directory import InMemoryDirectoryStore
from calsync.testing.memory.mirror import InMemoryMirrorStore
from calsync.testing.memory.plans import InMemoryPlanStore
from calsync.testing.memory.writers import InMemoryWriterStore

__all__ = [
    "CountingStore",
    "FakeCalendarApi",
    "FrozenClock",
    "InMemoryCalendarStore",
    "InMemoryChannelStore",
    "InMemoryConflictStore",
    "InMemoryDirectoryStore",
    "InMemoryMirrorStore",
    "InMemoryPlanStore",
    "InMemoryStateStore",
    "InMemoryWriterStore",
    "ReadCountingStore",
    "RecordingTaskQueue",
]

if TYPE_CHECKING:  # each fake implements its port (mypy checks these assignments)
    from calsync import ports

    _api: ports.CalendarApi = FakeCalendarApi()
    _clock: ports.Clock = FrozenClock()
    _queue: ports.TaskQueue = RecordingTaskQueue()
    _store: ports.PublishStore = InMemoryStateStore()
    _calendars: ports.CalendarStore = InMemoryCalendarStore()
    _mirror: ports.MirrorStore = InMemoryMirrorStore()
    _conflicts: ports.ConflictStore = InMemoryConflictStore()
    _channels: ports.ChannelStore = InMemoryChannelStore()
    _plans: ports.PlanStore = InMemoryPlanStore()
    _directory: ports.DirectoryStore = InMemoryDirectoryStore()
    _writers: ports.WriterStore = InMemoryWriterStore()
