"""``ports.PlanStore`` in memory: plans, per-chunk progress and the shared pacing timeline."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from calsync.model import Plan, PlanChunkProgress


class InMemoryPlanStore:
    """Plans, progress and quota timelines in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: dict[str, Plan] = {}
        self.progress: dict[tuple[str, str, int], PlanChunkProgress] = {}
        self.quota: dict[str, datetime] = {}
        self._plan_guard = threading.Lock()

    def put_plan(self, plan: Plan) -> None:
        """Create or replace a plan."""
        self.plans[plan.id] = plan.model_copy(deep=True)

    def get_plan(self, plan_id: str) -> Plan | None:
        """The plan with this id, or None."""
        plan = self.plans.get(plan_id)
        return plan.model_copy(deep=True) if plan else None

    def transition_plan(self, plan_id: str, expected: str, fields: Mapping[str, Any]) -> bool:
        """Compare-and-set the plan's status atomically."""
        with self._plan_guard:
            plan = self.plans.get(plan_id)
            if plan is None or plan.status != expected:
                return False
            self.plans[plan_id] = Plan.model_validate({**plan.model_dump(), **dict(fields)})
            return True

    def reserve_quota(self, name: str, seconds: float, now: datetime) -> datetime:
        """Reserve ``seconds`` after the timeline's end (or ``now``) atomically; the window's start."""
        with self._plan_guard:
            start = max(now, self.quota.get(name, now))
            self.quota[name] = start + timedelta(seconds=seconds)
            return start

    def put_plan_progress(self, progress: PlanChunkProgress) -> None:
        """Create or replace one chunk's progress."""
        key = (progress.plan_id, progress.calendar_key, progress.chunk)
        self.progress[key] = progress.model_copy(deep=True)

    def list_plan_progress(self, plan_id: str) -> list[PlanChunkProgress]:
        """The progress documents of a plan, in Firestore's order of their ids (``{calendar}__{chunk}``)."""
        mine = [v for k, v in self.progress.items() if k[0] == plan_id]
        return [v.model_copy(deep=True) for v in sorted(mine, key=lambda p: f"{p.calendar_key}__{p.chunk}")]

    def get_plan_progress(self, plan_id: str, calendar_key: str, chunk: int) -> PlanChunkProgress | None:
        """One chunk's progress, or None."""
        found = self.progress.get((plan_id, calendar_key, chunk))
        return found.model_copy(deep=True) if found else None
