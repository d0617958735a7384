"""``ports.PlanStore`` on Firestore: publish plans, their per-chunk progress and the pacing timeline.

- ``{env}_plans/{id}``: ``Plan``; its status moves by compare-and-set in a transaction, so of two
  applies of one plan exactly one wins.
- ``{env}_plans/{id}/progress/{calendar}__{chunk}``: one document per apply task's chunk (a retried
  task overwrites its own; no hot document).
- ``{env}_quota/{name}``: a pacing timeline shared by concurrent publishes, reserved transactionally
  so together they stay under Google's per-user quota
  (https://developers.google.com/calendar/api/guides/quota).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore

from calsync.adapters.firestore.base import FirestoreBase, classified
from calsync.model import Plan, PlanChunkProgress


class FirestorePlanStore(FirestoreBase):
    """Plans, progress and the quota timeline in Firestore."""

    @classified
    def put_plan(self, plan: Plan) -> None:
        """Create or replace a plan."""
        self._schema()
        self._col("plans").document(plan.id).set(plan.model_dump())

    @classified
    def get_plan(self, plan_id: str) -> Plan | None:
        """The plan with this id, or None."""
        self._schema()
        snap = self._col("plans").document(plan_id).get()
        return Plan.model_validate(snap.to_dict()) if snap.exists else None

    @classified
    def transition_plan(self, plan_id: str, expected: str, fields: Mapping[str, Any]) -> bool:
        """Compare-and-set the plan's status in a transaction (two applies: one wins)."""
        self._schema()
        ref = self._col("plans").document(plan_id)

        @firestore.transactional
        def transition(transaction: Any) -> bool:
            snap = ref.get(transaction=transaction)
            if not snap.exists or (snap.to_dict() or {}).get("status") != expected:
                return False
            transaction.update(ref, dict(fields))
            return True

        result: bool = transition(self.client.transaction())
        return result

    @classified
    def reserve_quota(self, name: str, seconds: float, now: datetime) -> datetime:
        """Reserve ``seconds`` after the timeline's end (or ``now``) in a transaction; the window's start."""
        self._schema()
        ref = self._col("quota").document(name)

        @firestore.transactional
        def reserve(transaction: Any) -> datetime:
            snap = ref.get(transaction=transaction)
            free_at = (snap.to_dict() or {}).get("next_free_at") if snap.exists else None
            start = max(now, free_at) if free_at is not None else now
            transaction.set(ref, {"next_free_at": start + timedelta(seconds=seconds), "updated_at": now})
            return start

        result: datetime = reserve(self.client.transaction())
        return result

    @classified
    def put_plan_progress(self, progress: PlanChunkProgress) -> None:
        """Create or replace one chunk's progress (one document per chunk: no hot document)."""
        self._schema()
        doc_id = f"{progress.calendar_key}__{progress.chunk}"
        self._col("plans").document(progress.plan_id).collection("progress").document(doc_id).set(progress.model_dump())

    @classified
    def list_plan_progress(self, plan_id: str) -> list[PlanChunkProgress]:
        """The progress documents of a plan's chunks."""
        self._schema()
        col = self._col("plans").document(plan_id).collection("progress")
        return [PlanChunkProgress.model_validate(s.to_dict()) for s in col.stream()]

    @classified
    def get_plan_progress(self, plan_id: str, calendar_key: str, chunk: int) -> PlanChunkProgress | None:
        """The progress document of one chunk, or None."""
        self._schema()
        col = self._col("plans").document(plan_id).collection("progress")
        snap = col.document(f"{calendar_key}__{chunk}").get()
        return PlanChunkProgress.model_validate(snap.to_dict()) if snap.exists else None
