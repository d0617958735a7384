"""Every log-based metric counts a message the code really logs.

The alert policies are only as good as their metrics: a renamed log line silently turns an alert off
(the way a peer's renewal cron was never registered). This reads the metric filters from
``monitoring.tf`` and the first argument of every logger call in ``shared/`` and ``functions/``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "infra" / "terraform" / "modules" / "calsync" / "monitoring.tf"
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


def metric_messages() -> set[str]:
    text = MONITORING.read_text()
    names: set[str] = set()
    for clause in re.findall(r'jsonPayload\.message=(\(.*?\)|\\"[^\\]+\\")', text):
        names.update(re.findall(r'\\"([^\\]+)\\"', clause))
    return names


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def logged_messages() -> set[str]:
    found: set[str] = set()
    for folder in ("shared", "functions"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in LOG_METHODS
                    and node.args
                ):
                    found.update(_strings(node.args[0]))
    return found


def test_monitoring_declares_metrics() -> None:
    assert {"sync.completed", "sync.failed", "webhook.rejected", "channel.expiring_soon"} <= metric_messages()


def test_every_metric_message_is_logged_by_the_code() -> None:
    missing = metric_messages() - logged_messages()
    assert not missing, f"log-based metrics count messages nothing logs: {sorted(missing)}"
