"""Error types of calsync, classified once at the edge.

Adapters turn every upstream failure (Google API ``HttpError``, Firestore, Cloud Tasks) into one of
these types; services and entry points only ever see them. The split follows Google's error guide
(https://developers.google.com/workspace/calendar/api/guides/errors): quota 403s are not permission
403s, a 410 on a sync token is not a 410 on a deleted event.

Each class carries, in its header, how an HTTP edge answers it (``calsync.http.edge`` reads these, nothing else maps
errors): ``http_status``, ``retryable`` (429/503 with ``Retry-After``, so Cloud Tasks and Cloud
Scheduler try again), ``default_retry_after_s`` (used when the upstream gave no ``retry_after_s``)
and ``drop_from_task`` (a final error on a Cloud Tasks request is acknowledged with 200 ``dropped``).
"""

from __future__ import annotations

from typing import ClassVar

DEFAULT_RETRY_AFTER_S = 30.0


class CalsyncError(Exception):
    """Base class of every calsync error.

    ``retryable`` tells an entry point whether the work may succeed later (answer 429/503) or is final
    (answer 4xx, or acknowledge-and-drop for Cloud Tasks).
    """

    retryable: bool = False  # an adapter may set it on one instance (an outage of a final-looking error)
    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    default_retry_after_s: ClassVar[float] = DEFAULT_RETRY_AFTER_S
    drop_from_task: ClassVar[bool] = True

    def __init_subclass__(
        cls,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retryable: bool | None = None,
        default_retry_after_s: float | None = None,
        drop_from_task: bool | None = None,
    ) -> None:
        """Set a subclass's answer in its header; what is not given is inherited."""
        super().__init_subclass__()
        given = {
            "code": code,
            "http_status": http_status,
            "retryable": retryable,
            "default_retry_after_s": default_retry_after_s,
            "drop_from_task": drop_from_task,
        }
        for name, value in given.items():
            if value is not None:
                setattr(cls, name, value)

    def __init__(self, message: str = "", *, details: dict[str, object] | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        self.details = details or {}
        self.retry_after_s: float | None = None


# --- Domain / request errors -------------------------------------------------------------------


class InvalidRequest(CalsyncError, code="invalid_request", http_status=400):
    """The caller sent something malformed or not allowed (HTTP 400/422)."""


class Unauthenticated(CalsyncError, code="unauthenticated", http_status=401, drop_from_task=False):
    """No or invalid credentials on an admin call (HTTP 401); the caller's, not the task's: never dropped."""


class PermissionDenied(CalsyncError, code="permission_denied", http_status=403, drop_from_task=False):
    """The caller is known but may not do this (HTTP 403)."""


class UnknownResource(CalsyncError, code="not_found", http_status=404):
    """A calsync resource (calendar key, plan, conflict, channel) does not exist (HTTP 404)."""


class StaleState(CalsyncError, code="conflict", http_status=409):
    """What the caller saw has changed since (HTTP 409): plan again, re-read."""


class MethodNotAllowed(CalsyncError, code="method_not_allowed", http_status=405):
    """The route exists but not with this method (HTTP 405)."""


class EventStarted(StaleState, code="event_started"):
    """The event or allocation has started (HTTP 409): calsync never moves, edits or deletes it."""


class StoreUnavailable(CalsyncError, code="store_unavailable", http_status=503, retryable=True):
    """The state store (Firestore) failed transiently."""


class QueueUnavailable(CalsyncError, code="queue_unavailable", http_status=503, retryable=True):
    """The task queue (Cloud Tasks) failed transiently."""


class LockHeld(CalsyncError, code="lock_held", http_status=429, retryable=True):
    """Another run holds the calendar's sync lease: retry once it ends (``retry_after_s``: what is left)."""

    def __init__(
        self, message: str = "", *, retry_after_s: float | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class LeaseLost(CalsyncError, code="lease_lost", http_status=503, retryable=True, default_retry_after_s=10.0):
    """A sync found its lease expired or taken over: it stopped without writing; a retry resumes."""


class SecretUnavailable(CalsyncError, code="secret_unavailable"):
    """A secret could not be read (missing, no version, or the backend failed)."""


# --- Calendar API errors -------------------------------------------------------------------------


class CalendarApiError(CalsyncError, code="calendar_error"):
    """An error answered by (or on the way to) the Google Calendar API."""

    def __init__(
        self,
        message: str = "",
        *,
        status: int = 0,
        reason: str = "",
        retry_after_s: float | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.status = status
        self.reason = reason
        self.retry_after_s = retry_after_s


class RateLimited(CalendarApiError, code="rate_limited", http_status=429, retryable=True):
    """403 rateLimitExceeded / userRateLimitExceeded or 429: back off and retry."""


class QuotaExhausted(
    CalendarApiError, code="quota_exhausted", http_status=429, retryable=True, default_retry_after_s=300.0
):
    """403 quotaExceeded (Workspace usage limit): the user is read-only for hours; retry much later."""


class AuthRevoked(CalendarApiError, code="auth_revoked"):
    """401 after a refresh, or invalid_grant: a human must re-authorise; never retried in a loop."""


class SyncTokenGone(CalendarApiError, code="sync_token_gone"):
    """410 fullSyncRequired / updatedMinTooLongAgo: wipe the token and run a full sync."""


class ResourceGone(CalendarApiError, code="resource_gone"):
    """410 deleted: the event was already deleted; for a delete this means done."""


class Duplicate(CalendarApiError, code="duplicate", http_status=409):
    """409 duplicate: the client-supplied id already exists (live or cancelled)."""


class BatchConflict(CalendarApiError, code="batch_conflict", http_status=503, retryable=True):
    """409 conflict: a batched item conflicted with another item of the batch; retry it."""


class PreconditionFailed(CalendarApiError, code="precondition_failed", http_status=412):
    """412 conditionNotMet: the etag in If-Match is no longer current; re-read and re-apply."""


class Forbidden(CalendarApiError, code="forbidden", http_status=403):
    """403 that is not about quota (no access, forbiddenForNonOrganizer, ...): final."""


class NotFound(CalendarApiError, code="calendar_not_found", http_status=404):
    """404: the calendar or event never existed or is not accessible."""


class BadRequest(CalendarApiError, code="bad_request", http_status=400):
    """400 (and other final 4xx): the request itself is wrong; never retried."""


class Transient(CalendarApiError, code="transient", http_status=503, retryable=True):
    """5xx, timeouts and connection errors: retry with backoff."""


class NotModified(CalendarApiError, code="not_modified"):
    """304 on a conditional get: the caller's copy is current."""
