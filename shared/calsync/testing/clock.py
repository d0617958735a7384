"""``ports.Clock`` and ``ports.TaskQueue`` in memory: a clock that moves when told, a recording queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.model import utc
from calsync.ports import TaskRequest


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start or datetime(2026, 3, 2, 12, 0, tzinfo=UTC))

    def now(self) -> datetime:
        """The frozen instant."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += timedelta(seconds=seconds)


class RecordingTaskQueue:
    """A ``TaskQueue`` that records tasks and dedups by name like Cloud Tasks does."""

    def __init__(self) -> None:
        self.tasks: list[TaskRequest] = []
        self._names: set[str] = set()

    def enqueue(self, task: TaskRequest) -> bool:
        """Record the task; False when a task with this name was already queued."""
        if task.name is not None:
            if task.name in self._names:
                return False
            self._names.add(task.name)
        self.tasks.append(task)
        return True

    def pop_all(self) -> list[TaskRequest]:
        """Take the recorded tasks (the names stay remembered)."""
        tasks, self.tasks = self.tasks, []
        return tasks
