"""Google's JSON error body and the API errors the emulator raises.

Shape and reasons follow https://developers.google.com/workspace/calendar/api/guides/errors:
``{"error": {"errors": [{"domain", "reason", "message", ...}], "code", "message"}}``.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MESSAGES: dict[int, str] = {
    400: "Bad Request",
    401: "Invalid Credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Resource has been deleted",
    412: "Precondition Failed",
    429: "Rate Limit Exceeded",
    500: "Backend Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

USAGE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}


class ApiError(Exception):
    """An error answered with Google's error body."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str | None = None,
        *,
        domain: str | None = None,
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message or DEFAULT_MESSAGES.get(status, "Error")
        self.domain = domain or ("usageLimits" if reason in USAGE_LIMIT_REASONS else "global")
        self.location = location
        self.location_type = location_type
        self.headers = headers or {}
        super().__init__(f"{status} {reason}: {self.message}")

    def body(self) -> dict[str, Any]:
        """The JSON error document Google sends."""
        item: dict[str, Any] = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location_type:
            item["locationType"] = self.location_type
        if self.location:
            item["location"] = self.location
        return {"error": {"errors": [item], "code": self.status, "message": self.message}}


def not_found() -> ApiError:
    """404 notFound, for unknown or inaccessible calendars, events and channels."""
    return ApiError(404, "notFound", "Not Found")


def bad_request(message: str, *, reason: str = "invalid", location: str | None = None) -> ApiError:
    """400 with a parameter location, Google's shape for validation failures."""
    return ApiError(400, reason, message, location=location, location_type="parameter" if location else None)


def full_sync_required() -> ApiError:
    """410 fullSyncRequired with Google's exact body."""
    return ApiError(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        domain="calendar",
        location="syncToken",
        location_type="parameter",
    )


def deleted() -> ApiError:
    """410 deleted, for a second delete of an event."""
    return ApiError(410, "deleted", "Resource has been deleted")


def condition_not_met() -> ApiError:
    """412 conditionNotMet for an If-Match mismatch."""
    return ApiError(412, "conditionNotMet", "Precondition Failed", location="If-Match", location_type="header")
