"""The sync's lease and budget against the deployed limits: a live run keeps its lease within the
function's timeout, and a trigger answered "held" (429) is retried past the longest lease allowed."""

from __future__ import annotations

from typing import Any

from calsync.config import Settings
from tests.infra.conftest import TfFolder


def _field(name: str) -> Any:
    return Settings.model_fields[name]


def _limit(name: str, kind: str) -> float:
    found = [getattr(m, kind) for m in _field(name).metadata if hasattr(m, kind)]
    assert found, f"{name} has no {kind} bound"
    return float(found[0])


def test_the_lease_and_the_budget_fit_the_sync_function_timeout(calsync_module: TfFolder) -> None:
    timeout_s = int(calsync_module.locals["functions"]["sync"]["timeout_s"])
    assert _field("lock_lease_s").default * 3 <= timeout_s  # a dead run's lease ends well before a retry
    assert _limit("lock_lease_s", "le") < timeout_s
    assert _limit("sync_run_budget_s", "le") < timeout_s  # a run stops and continues before it is killed


def test_the_sync_queue_retries_a_held_trigger_past_the_longest_lease(calsync_module: TfFolder) -> None:
    retry = calsync_module.resource("google_cloud_tasks_queue", "sync")["retry_config"]
    retry = retry[0] if isinstance(retry, list) else retry
    backoff_s, max_backoff_s = float(retry["min_backoff"].rstrip("s")), float(retry["max_backoff"].rstrip("s"))
    waited, doublings = 0.0, 0
    for _ in range(int(retry["max_attempts"]) - 1):
        waited += backoff_s
        if doublings < int(retry["max_doublings"]):
            backoff_s, doublings = min(backoff_s * 2, max_backoff_s), doublings + 1
    assert waited > 2 * _limit("lock_lease_s", "le")
