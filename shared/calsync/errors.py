"""Error types of calsync, classified once at the edge.

Adapters turn every upstream failure (Google API ``HttpError``, Firestore, Cloud Tasks) into one of
these types; services and entry points only ever see them. The split follows Google's error guide
(https://developers.google.com/workspace/calendar/api/guides/errors): quota 403s are not permission
403s, a 410 on a sync token is not a 410 on a deleted event.
"""

from __future__ import annotations


class CalsyncError(Exception):
    """Base class of every calsync error.

    ``retryable`` tells an entry point whether the work may succeed later (answer 429/503) or is final
    (answer 4xx, or acknowledge-and-drop for Cloud Tasks).
    """

    retryable: bool = False
    code: str = "error"

    def __init__(self, message: str = "", *, details: dict[str, object] | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        self.details = details or {}


# --- Domain / request errors -------------------------------------------------------------------


class InvalidRequest(CalsyncError):
    """The caller sent something malformed or not allowed (HTTP 400/422)."""

    code = "invalid_request"


class Unauthenticated(CalsyncError):
    """No or invalid credentials on an admin call (HTTP 401)."""

    code = "unauthenticated"


class PermissionDenied(CalsyncError):
    """The caller is known but may not do this (HTTP 403)."""

    code = "permission_denied"


class UnknownResource(CalsyncError):
    """A calsync resource (calendar key, plan, conflict, channel) does not exist (HTTP 404)."""

    code = "not_found"


class StaleState(CalsyncError):
    """What the caller saw has changed since (HTTP 409): plan again, re-read."""

    code = "conflict"


class EventStarted(StaleState):
    """The event or allocation has started (HTTP 409): calsync never moves, edits or deletes it."""

    code = "event_started"


class StoreUnavailable(CalsyncError):
    """The state store (Firestore) failed transiently."""

    retryable = True
    code = "store_unavailable"


class QueueUnavailable(CalsyncError):
    """The task queue (Cloud Tasks) failed transiently."""

    retryable = True
    code = "queue_unavailable"


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


class QuotaExhausted(CalendarApiError):
    """403 quotaExceeded (Workspace usage limit): the user is read-only for hours; retry much later."""

    retryable = True
    code = "quota_exhausted"


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


class BatchConflict(CalendarApiError):
    """409 conflict: a batched item conflicted with another item of the batch; retry it."""

    retryable = True
    code = "batch_conflict"


class PreconditionFailed(CalendarApiError):
    """412 conditionNotMet: the etag in If-Match is no longer current; re-read and re-apply."""

    code = "precondition_failed"


class Forbidden(CalendarApiError):
    """403 that is not about quota (no access, forbiddenForNonOrganizer, ...): final."""

    code = "forbidden"


class NotFound(CalendarApiError):
    """404: the calendar or event never existed or is not accessible."""

    code = "calendar_not_found"


class BadRequest(CalendarApiError):
    """400 (and other final 4xx): the request itself is wrong; never retried."""

    code = "bad_request"


class Transient(CalendarApiError):
    """5xx, timeouts and connection errors: retry with backoff."""

    retryable = True
    code = "transient"


class NotModified(CalendarApiError):
    """304 on a conditional get: the caller's copy is current."""

    code = "not_modified"
