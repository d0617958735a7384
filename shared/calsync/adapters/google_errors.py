"""Google's Calendar API failures as calsync errors: the one place each is classified.

HTTP status and Google's ``reason`` decide the type (gcal_sync's ``auth.py`` shape): 429 and 403
``rateLimitExceeded``/``userRateLimitExceeded`` are rate limits, 403 ``quotaExceeded`` is an exhausted
quota, 401 and ``invalid_grant`` are revoked credentials, 410 ``fullSyncRequired`` is a sync token
gone (410 otherwise: the resource is deleted), 409, 412 and 5xx have their own types. Auth refresh
and network failures are classified here too. Services only ever see ``calsync.errors``.
Guide: https://developers.google.com/workspace/calendar/api/guides/errors
"""

from __future__ import annotations

import email.utils
import json
import socket
from datetime import UTC, datetime
from typing import Any

import httplib2
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from googleapiclient.errors import HttpError

from calsync import errors

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
TOKEN_GONE_REASONS = frozenset({"fullSyncRequired", "updatedMinTooLongAgo"})


def _reason_of(exc: HttpError) -> tuple[str, str]:
    """(reason, message) from Google's error body, tolerant of odd bodies."""
    reason, message = "", ""
    try:
        body = json.loads(exc.content.decode("utf-8", "replace"))
        error = body.get("error", {}) if isinstance(body, dict) else {}
        if isinstance(error, dict):
            message = str(error.get("message", ""))
            items = error.get("errors") or []
            if items and isinstance(items[0], dict):
                reason = str(items[0].get("reason", ""))
                message = message or str(items[0].get("message", ""))
        elif isinstance(error, str):  # OAuth style {"error": "invalid_grant"}
            reason = error
    except (ValueError, AttributeError):
        pass
    return reason, message


def _retry_after(exc: HttpError) -> float | None:
    value = exc.resp.get("retry-after") if exc.resp is not None else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def classify_http_error(exc: HttpError) -> errors.CalendarApiError:
    """Map an ``HttpError`` to the calsync error type (the one place this is decided)."""
    status = int(exc.resp.status) if exc.resp is not None else 0
    reason, message = _reason_of(exc)
    kwargs: dict[str, Any] = {"status": status, "reason": reason, "retry_after_s": _retry_after(exc)}
    text = message or f"HTTP {status}"
    if status == 304:
        return errors.NotModified(text, **kwargs)
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return errors.RateLimited(text, **kwargs)
    if status == 403 and reason in QUOTA_REASONS:
        return errors.QuotaExhausted(text, **kwargs)
    if status == 401 or reason == "invalid_grant":
        return errors.AuthRevoked(text, **kwargs)
    if status == 403:
        return errors.Forbidden(text, **kwargs)
    if status == 404:
        return errors.NotFound(text, **kwargs)
    if status == 409:
        return (errors.BatchConflict if reason == "conflict" else errors.Duplicate)(text, **kwargs)
    if status == 410:
        if reason in TOKEN_GONE_REASONS:
            return errors.SyncTokenGone(text, **kwargs)
        return errors.ResourceGone(text, **kwargs)
    if status == 412:
        return errors.PreconditionFailed(text, **kwargs)
    if status >= 500 or status == 408:
        return errors.Transient(text, **kwargs)
    return errors.BadRequest(text, **kwargs)


def classify_exception(exc: BaseException) -> errors.CalendarApiError:
    """Any failure of a Calendar call (HTTP, auth refresh, network) as a calsync error."""
    if isinstance(exc, errors.CalendarApiError):
        return exc
    if isinstance(exc, HttpError):
        return classify_http_error(exc)
    if isinstance(exc, RefreshError):
        text = str(exc)
        if "invalid_grant" in text or "invalid_client" in text or "unauthorized_client" in text:
            return errors.AuthRevoked("credentials were revoked or expired", reason="invalid_grant")
        retryable = getattr(exc, "retryable", False)
        cls = errors.Transient if retryable else errors.AuthRevoked
        return cls("token refresh failed", reason="refresh_error")
    if isinstance(exc, GoogleAuthError) and not isinstance(exc, TransportError):
        # e.g. a 401 answered to credentials that cannot refresh: nobody can fix this by retrying.
        return errors.AuthRevoked(f"credentials rejected: {type(exc).__name__}", reason="auth")
    if isinstance(exc, TransportError | socket.timeout | TimeoutError | ConnectionError | httplib2.HttpLib2Error):
        return errors.Transient(f"network error: {type(exc).__name__}", reason="network")
    if isinstance(exc, OSError):
        return errors.Transient(f"network error: {type(exc).__name__}", reason="network")
    raise exc
