"""Error types of calsync, classified once at the edge.

Adapters turn every upstream failure (Google API ``HttpError``, Firestore, Cloud Tasks) into one of
these types; services and entry points only ever see them. The split follows Google's error guide
(https://developers.google.com/workspace/calendar/api/guides/errors): quota 403s are not permission
403s, a 410 on a sync token is not a 410 on a deleted event.

Each class carries how an HTTP edge answers it (``calsync.http.edge`` reads these, nothing else maps
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

    def __init__(self, message: str = "", *, details: dict[str, object] | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        self.details = details or {}
        self.retry_after_s: float | None = None


# --- Domain / request errors -------------------------------------------------------------------


class InvalidRequest(CalsyncError):
    """The caller sent something malformed or not allowed (HTTP 400/422)."""

    code = "invalid_request"
    http_status = 400


class Unauthenticated(CalsyncError):
    """No or invalid credentials on an admin call (HTTP 401)."""

    code = "unauthenticated"
    http_status = 401
    # The caller's credentials, not the task, are wrong: answered, never acknowledged.
    drop_from_task = False


class PermissionDenied(CalsyncError):
    """The caller is known but may not do this (HTTP 403)."""

    code = "permission_denied"
    http_status = 403
    drop_from_task = False


class UnknownResource(CalsyncError):
    """A calsync resource (calendar key, plan, conflict, channel) does not exist (HTTP 404)."""

    code = "not_found"
    http_status = 404


class StaleState(CalsyncError):
    """What the caller saw has changed since (HTTP 409): plan again, re-read."""

    code = "conflict"
    http_status = 409


class MethodNotAllowed(CalsyncError):
    """The route exists but not with this method (HTTP 405)."""

    code = "method_not_allowed"
    http_status = 405


class EventStarted(StaleState):
    """The event or allocation has started (HTTP 409): calsync never moves, edits or deletes it."""

    code = "event_started"


class StoreUnavailable(CalsyncError):
    """The state store (Firestore) failed transiently."""

    retryable = True
    code = "store_unavailable"
    http_status = 503


class QueueUnavailable(CalsyncError):
    """The task queue (Cloud Tasks) failed transiently."""

    retryable = True
    code = "queue_unavailable"
    http_status = 503


class LockHeld(CalsyncError):
    """Another run holds the calendar's sync lease: retry once it ends (``retry_after_s``: what is left)."""

    retryable = True
    code = "lock_held"
    http_status = 429

    def __init__(
        self, message: str = "", *, retry_after_s: float | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class LeaseLost(CalsyncError):
    """A sync found its lease expired or taken over: it stopped without writing; a retry resumes."""

    retryable = True
    code = "lease_lost"
    http_status = 503
    default_retry_after_s = 10.0


class SecretUnavailable(CalsyncError):
    """A secret could not be read (missing, no version, or the backend failed)."""

    code = "secret_unavailable"


# --- Calendar API errors -------------------------------------------------------------------------


class CalendarApiError(CalsyncError):
    """An error answered by (or on the way to) the Google Calendar API."""

    code = "calendar_error"

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


class RateLimited(CalendarApiError):
    """403 rateLimitExceeded / userRateLimitExceeded or 429: back off and retry."""

    retryable = True
    code = "rate_limited"
    http_status = 429


class QuotaExhausted(CalendarApiError):
    """403 quotaExceeded (Workspace usage limit): the user is read-only for hours; retry much later."""

    retryable = True
    code = "quota_exhausted"
    http_status = 429
    default_retry_after_s = 300.0


class AuthRevoked(CalendarApiError):
    """401 after a refresh, or invalid_grant: a human must re-authorise; never retried in a loop."""

    code = "auth_revoked"


class SyncTokenGone(CalendarApiError):
    """410 fullSyncRequired / updatedMinTooLongAgo: wipe the token and run a full sync."""

    code = "sync_token_gone"


class ResourceGone(CalendarApiError):
    """410 deleted: the event was already deleted; for a delete this means done."""

    code = "resource_gone"


class Duplicate(CalendarApiError):
    """409 duplicate: the client-supplied id already exists (live or cancelled)."""

    code = "duplicate"
    http_status = 409


class BatchConflict(CalendarApiError):
    """409 conflict: a batched item conflicted with another item of the batch; retry it."""

    retryable = True
    code = "batch_conflict"
    http_status = 503


class PreconditionFailed(CalendarApiError):
    """412 conditionNotMet: the etag in If-Match is no longer current; re-read and re-apply."""

    code = "precondition_failed"
    http_status = 412


class Forbidden(CalendarApiError):
    """403 that is not about quota (no access, forbiddenForNonOrganizer, ...): final."""

    code = "forbidden"
    http_status = 403


class NotFound(CalendarApiError):
    """404: the calendar or event never existed or is not accessible."""

    code = "calendar_not_found"
    http_status = 404


class BadRequest(CalendarApiError):
    """400 (and other final 4xx): the request itself is wrong; never retried."""

    code = "bad_request"
    http_status = 400


class Transient(CalendarApiError):
    """5xx, timeouts and connection errors: retry with backoff."""

    retryable = True
    code = "transient"
    http_status = 503


class NotModified(CalendarApiError):
    """304 on a conditional get: the caller's copy is current."""

    code = "not_modified"
