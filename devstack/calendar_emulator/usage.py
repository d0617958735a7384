"""Per-acting-account Calendar usage limits: sliding-window counters and the read-only lockout.

Models Google Workspace's "Avoid Calendar use limits" (https://support.google.com/a/answer/2905486):
an account that creates too many calendars or events, shares calendars with too many people, or
invites too many external guests in a short period becomes read-only for hours. Every write then
answers 403 ``usageLimits``/``quotaExceeded`` "Calendar usage limits exceeded."
(https://developers.google.com/workspace/calendar/api/guides/errors); reads keep working. Actions on
secondary calendars count against the acting account, so counters are keyed by the caller's email.
Limits are off (``None``) unless configured; windows and lockouts use the monotonic clock the API
quotas use, so tests can run them in seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devstack.calendar_emulator import wire
from devstack.calendar_emulator.errors import ApiError

KINDS = ("calendars_created", "events_created", "acl_shares", "external_invites")
USAGE_LIMITS_MESSAGE = "Calendar usage limits exceeded."
# Methods a read-only account cannot call (watch, channels.stop and freeBusy change no calendar data).
WRITE_METHODS = frozenset(
    {
        "calendar.calendars.insert",
        "calendar.calendars.delete",
        "calendar.acl.insert",
        "calendar.acl.delete",
        "calendar.events.insert",
        "calendar.events.update",
        "calendar.events.patch",
        "calendar.events.delete",
    }
)
# Google publishes neither the "short period" nor the exact read-only time ("several hours").
DEFAULT_WINDOW_S = 3600.0
DEFAULT_LOCKOUT_S = 3 * 3600.0


class UsageLimitsSpec(BaseModel):
    """Body of ``POST /_emulator/usage-limits``: per-window thresholds (``None`` = no limit)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    calendars_created: int | None = Field(default=None, ge=0)
    events_created: int | None = Field(default=None, ge=0)
    acl_shares: int | None = Field(default=None, ge=0)
    external_invites: int | None = Field(default=None, ge=0)
    window_s: float = Field(default=DEFAULT_WINDOW_S, gt=0)
    lockout_s: float = Field(default=DEFAULT_LOCKOUT_S, ge=0)

    def merged(self, data: Any) -> UsageLimitsSpec:
        """These limits with the keys of ``data`` applied; 400 ``invalid`` names the first bad key."""
        if not isinstance(data, dict):
            raise ApiError(400, "invalid", "usage-limits needs a JSON object")
        try:
            return UsageLimitsSpec.model_validate({**self.model_dump(), **data})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise ApiError(400, "invalid", f"{where}: {first['msg']}") from exc


def usage_limits_error() -> ApiError:
    """Google's 403 for an account past its Calendar usage limits."""
    return ApiError(403, "quotaExceeded", USAGE_LIMITS_MESSAGE, domain="usageLimits")


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def _emails(attendees: Any) -> set[str]:
    if not isinstance(attendees, list):
        return set()
    return {
        str(a["email"]).lower()
        for a in attendees
        if isinstance(a, dict) and a.get("email") and not a.get("resource")  # rooms are not guests
    }


def new_external_guests(acting: str, attendees: Any, before: Any = None) -> int:
    """Attendees of another domain than ``acting``'s that were not on the event ``before``."""
    home = _domain(acting)
    return sum(1 for email in _emails(attendees) - _emails(before) if _domain(email) != home)


class _Account:
    """One acting account's charges in the current window and its lockout."""

    def __init__(self) -> None:
        self.charges: dict[str, deque[tuple[float, int]]] = {kind: deque() for kind in KINDS}
        self.totals: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.locked_until: float = 0.0  # monotonic seconds
        self.locked_until_wall: str | None = None

    def prune(self, now: float, window_s: float) -> None:
        for kind, queue in self.charges.items():
            while queue and queue[0][0] <= now - window_s:
                self.totals[kind] -= queue.popleft()[1]


class UsageLimits:
    """Counts what each account creates, shares and invites; locks accounts that go past a limit."""

    def __init__(self, spec: UsageLimitsSpec | None = None, on_reject: Callable[[], None] = lambda: None) -> None:
        self.spec = spec or UsageLimitsSpec()
        self.on_reject = on_reject
        self._accounts: dict[str, _Account] = {}

    def configure(self, data: Any) -> UsageLimitsSpec:
        """Apply the keys of ``data`` (others keep their value); lockouts in progress stay."""
        self.spec = self.spec.merged(data)
        return self.spec

    def locked(self, email: str) -> bool:
        """True while ``email`` is read-only."""
        account = self._accounts.get(email)
        return account is not None and time.monotonic() < account.locked_until

    def admit_write(self, email: str) -> None:
        """Refuse any write of a locked account."""
        if self.locked(email):
            raise self._reject()

    def charge(self, email: str, amounts: Mapping[str, int]) -> None:
        """Count a write about to be committed, or refuse it (and lock the account) past a limit."""
        now = time.monotonic()
        account = self._accounts.setdefault(email, _Account())
        if now < account.locked_until:
            raise self._reject()
        account.prune(now, self.spec.window_s)
        for kind, n in amounts.items():
            limit = getattr(self.spec, kind)
            if n > 0 and limit is not None and account.totals[kind] + n > limit:
                if self.spec.lockout_s > 0:
                    account.locked_until = now + self.spec.lockout_s
                    until_ms = int((time.time() + self.spec.lockout_s) * 1000)
                    account.locked_until_wall = wire.format_ms(until_ms)
                raise self._reject()
        for kind, n in amounts.items():
            if n > 0:
                account.charges[kind].append((now, n))
                account.totals[kind] += n

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per account: counts within the current window and ``locked_until`` (RFC3339 or None)."""
        now = time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        for email, account in sorted(self._accounts.items()):
            account.prune(now, self.spec.window_s)
            locked = account.locked_until_wall if now < account.locked_until else None
            out[email] = {**account.totals, "locked_until": locked}
        return out

    def _reject(self) -> ApiError:
        self.on_reject()
        return usage_limits_error()
