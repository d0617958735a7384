"""What stands between a request and the API: quotas, injected faults and the stats counters.

Quotas follow https://developers.google.com/workspace/calendar/api/guides/quota (sliding per-minute
windows, 600/min/user and 10,000/min/project); rejections use the reasons of
https://developers.google.com/workspace/calendar/api/guides/errors.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter, deque
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from devstack.calendar_emulator.errors import ApiError

DEFAULT_REASONS = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    410: "deleted",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
}


class QuotaSpec(BaseModel):
    """Body of ``POST /_emulator/quota`` (omitted fields keep their value)."""

    model_config = ConfigDict(extra="forbid")

    per_user_per_minute: int | None = Field(default=None, ge=0)
    per_project_per_minute: int | None = Field(default=None, ge=0)
    window_s: float | None = Field(default=None, gt=0)
    rate_429: float | None = Field(default=None, ge=0.0, le=1.0)
    retry_after_s: int | None = Field(default=None, ge=0)


class FaultSpec(BaseModel):
    """One injected failure (body of ``POST /_emulator/faults``)."""

    model_config = ConfigDict(extra="forbid")

    method: str = "*"
    path: str
    status: int = Field(ge=400, le=599)
    reason: str | None = None
    message: str | None = None
    count: int = Field(default=1, ge=1)
    retry_after_s: int | None = Field(default=None, ge=0)
    delay_ms: int = Field(default=0, ge=0)


class PushSpec(BaseModel):
    """Body of ``POST /_emulator/push``."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["normal", "drop", "duplicate", "reorder", "delay"] = "normal"
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    delay_ms: int = Field(default=300, ge=0)


class Quota:
    """Sliding-window request counters per user and per project."""

    def __init__(self) -> None:
        self.spec = QuotaSpec(per_user_per_minute=600, per_project_per_minute=10_000, window_s=60.0, rate_429=0.0)
        self._users: dict[str, deque[float]] = {}
        self._project: deque[float] = deque()
        self._lock = threading.Lock()

    def configure(self, spec: QuotaSpec) -> QuotaSpec:
        """Apply the fields given in ``spec``; returns the configuration in force."""
        self.spec = self.spec.model_copy(update=spec.model_dump(exclude_unset=True))
        return self.spec

    def admit(self, user: str, cost: int = 1) -> None:
        """Count ``cost`` units for ``user``, or raise the rate-limit error Google would answer."""
        now = time.monotonic()
        window = float(self.spec.window_s or 60.0)
        with self._lock:
            hits = self._users.setdefault(user, deque())
            for queue in (hits, self._project):
                while queue and queue[0] <= now - window:
                    queue.popleft()
            if len(hits) + cost > int(self.spec.per_user_per_minute or 0):
                raise self._reject("userRateLimitExceeded", "User Rate Limit Exceeded")
            if len(self._project) + cost > int(self.spec.per_project_per_minute or 0):
                raise self._reject("rateLimitExceeded", "Rate Limit Exceeded")
            hits.extend([now] * cost)
            self._project.extend([now] * cost)

    def _reject(self, reason: str, message: str) -> ApiError:
        headers = {}
        if self.spec.retry_after_s is not None:
            headers["Retry-After"] = str(self.spec.retry_after_s)
        if random.random() < float(self.spec.rate_429 or 0.0):
            return ApiError(429, "rateLimitExceeded", "Rate Limit Exceeded", headers=headers)
        return ApiError(403, reason, message, headers=headers)


class Faults:
    """Queued injected failures, matched by method and a regex searched in the request path."""

    def __init__(self) -> None:
        self.queue: list[FaultSpec] = []
        self._lock = threading.Lock()

    def take(self, method: str, path: str) -> FaultSpec | None:
        """Consume one use of the first fault matching ``method`` and ``path``."""
        with self._lock:
            for fault in self.queue:
                if fault.method not in ("*", method.upper()) or not re.search(fault.path, path):
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self.queue.remove(fault)
                return fault
        return None


def fault_error(fault: FaultSpec) -> ApiError:
    """The Google-shaped error an injected fault answers with."""
    reason = fault.reason or DEFAULT_REASONS.get(fault.status, "backendError")
    headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
    return ApiError(fault.status, reason, fault.message, headers=headers)


class Stats:
    """Counters exposed by ``GET /_emulator/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.methods: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to a named counter."""
        with self._lock:
            self.counters[name] += n

    def request(self, key: str, method_id: str | None) -> None:
        """Count one API request (or batch part) by ``"METHOD /path/{template}"`` and method id."""
        with self._lock:
            self.requests[key] += 1
            if method_id:
                self.methods[method_id] += 1

    def snapshot(self) -> dict[str, object]:
        """All counters as JSON."""
        with self._lock:
            c = self.counters
            return {
                "requests": dict(self.requests),
                "methods": dict(self.methods),
                "batch": {"requests": c["batch_requests"], "parts": c["batch_parts"]},
                "push": {
                    "deliveries": c["push_deliveries"],
                    "failures": c["push_failures"],
                    "retries": c["push_retries"],
                    "dropped": c["push_dropped"],
                    "duplicated": c["push_duplicated"],
                    "skipped_inactive": c["push_skipped_inactive"],
                },
                "quota_rejections": c["quota_rejections"],
                "usage_limit_rejections": c["usage_limit_rejections"],
                "faults_injected": c["faults_injected"],
            }

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self.requests.clear()
            self.methods.clear()
            self.counters.clear()
