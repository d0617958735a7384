"""``GoogleCalendarApi``: the ``CalendarApi`` port on google-api-python-client.

The only place calsync talks to the Calendar API. It
- classifies every failure once into ``calsync.errors`` (``adapters.google_errors``);
- retries rate-limit and 5xx answers with truncated exponential backoff and full jitter (tenacity),
  honouring ``Retry-After``, bounded by attempts and total time;
- asks for 2500 events a page with a partial-response ``fields`` mask
  (https://developers.google.com/workspace/calendar/api/guides/sync);
- batches calls through ``BatchHttpRequest`` with a configurable batch URI (the client's own
  ``new_batch_http_request`` ignores ``api_endpoint`` and would target Google from the emulator).

google-api-python-client's ``httplib2`` transport is not thread-safe, so each thread gets its own
authorised ``Http``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import google_auth_httplib2
import httplib2
from google.auth.credentials import AnonymousCredentials
from google.auth.transport import DEFAULT_REFRESH_STATUS_CODES
from googleapiclient.discovery import build
from googleapiclient.http import BatchHttpRequest, HttpRequest
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay

from calsync import errors
from calsync.adapters.google_errors import classify_exception
from calsync.config import GOOGLE_CALENDAR_API, GOOGLE_CALENDAR_BATCH
from calsync.logs import get_logger
from calsync.model import EventsPage, GoogleEvent, WatchChannel
from calsync.ports import BatchOp, BatchResult, BusyTimes, CalendarApi, ListEvents

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    from calsync.config import Settings

log = get_logger(__name__)
T = TypeVar("T")

# Partial response of events.list: what the mirror and the classifier read, nothing more.
EVENT_FIELDS = (
    "id,status,etag,updated,summary,description,start,end,"
    "attendees(email,responseStatus,displayName,optional,organizer,self),"
    "extendedProperties,recurringEventId,originalStartTime,transparency,eventType,iCalUID,sequence,hangoutLink,"
    "conferenceData"
)
LIST_FIELDS = f"items({EVENT_FIELDS}),nextPageToken,nextSyncToken,timeZone"
HTTP_TIMEOUT_S = 60


@dataclass(frozen=True)
class RetryPolicy:
    """Truncated exponential backoff with full jitter, bounded by attempts and total time."""

    max_attempts: int = 6
    max_total_s: float = 60.0
    base_s: float = 1.0
    cap_s: float = 32.0
    sleep: Callable[[float], None] = time.sleep

    def wait_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: Retry-After if given, else full jitter."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_total_s)
        return random.uniform(0, min(self.cap_s, self.base_s * (2 ** (attempt - 1))))


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, errors.CalendarApiError) and exc.retryable and not isinstance(exc, errors.QuotaExhausted)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _expiration(value: object) -> datetime | None:
    """Channel.expiration: int64 milliseconds, as a JSON string or a number."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)


class GoogleCalendarApi(CalendarApi):
    """The ``CalendarApi`` port on google-api-python-client (one instance per credential)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_endpoint: str = GOOGLE_CALENDAR_API,
        batch_uri: str = GOOGLE_CALENDAR_BATCH,
        page_size: int = 2500,
        batch_size: int = 50,
        retry: RetryPolicy | None = None,
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> None:
        self._credentials = credentials
        self._batch_uri = batch_uri
        self._page_size = page_size
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy()
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._service = build(
            "calendar",
            "v3",
            static_discovery=True,
            cache_discovery=False,
            http=self._http(),
            client_options={"api_endpoint": api_endpoint},
        )

    @classmethod
    def from_settings(cls, settings: Settings, credentials: Credentials | None = None) -> GoogleCalendarApi:
        """Build from ``Settings`` (anonymous credentials when configured for the emulator)."""
        if credentials is None:
            if settings.calendar_credentials != "anonymous":
                raise errors.InvalidRequest("service-account credentials must be passed in")
            credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return cls(
            credentials,
            api_endpoint=settings.calendar_api_endpoint,
            batch_uri=settings.calendar_batch_uri,
            page_size=settings.page_size,
            batch_size=settings.batch_size,
            retry=RetryPolicy(max_attempts=settings.retry_max_attempts, max_total_s=settings.retry_max_total_s),
        )

    @classmethod
    def for_emulator(cls, base_url: str, **kwargs: Any) -> GoogleCalendarApi:
        """An instance on the local Calendar emulator at ``base_url`` (no credentials)."""
        base = base_url.rstrip("/")
        return cls(
            AnonymousCredentials(),  # type: ignore[no-untyped-call]
            api_endpoint=f"{base}/calendar/v3/",
            batch_uri=f"{base}/batch/calendar/v3",
            **kwargs,
        )

    # -- plumbing -----------------------------------------------------------------------------------

    def _http(self) -> google_auth_httplib2.AuthorizedHttp:
        http = getattr(self._local, "http", None)
        if http is None:
            # Credentials that cannot refresh (the emulator's anonymous ones) must not try on a 401,
            # or the API's own answer would be replaced by google-auth's InvalidOperation.
            anonymous = isinstance(self._credentials, AnonymousCredentials)
            refresh_codes = () if anonymous else tuple(DEFAULT_REFRESH_STATUS_CODES)
            http = google_auth_httplib2.AuthorizedHttp(
                self._credentials, http=httplib2.Http(timeout=self._timeout_s), refresh_status_codes=refresh_codes
            )
            self._local.http = http
        return http

    def _attempts(self, what: str) -> Iterator[Any]:
        policy = self._retry

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = exc.retry_after_s if isinstance(exc, errors.CalendarApiError) else None
            return policy.wait_s(state.attempt_number, retry_after)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "calendar.rate_limited" if isinstance(exc, errors.RateLimited) else "calendar.retry",
                route=what,
                attempt=state.attempt_number,
                error_code=getattr(exc, "code", type(exc).__name__),
                upstream_reason=getattr(exc, "reason", ""),
                retry_after_s=getattr(exc, "retry_after_s", None),
            )

        return iter(
            Retrying(
                stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_total_s),
                wait=wait,
                retry=retry_if_exception(_retryable),
                sleep=policy.sleep,
                before_sleep=before_sleep,
                reraise=True,
            )
        )

    def _call(self, what: str, request: HttpRequest) -> Any:
        for attempt in self._attempts(what):
            with attempt:
                try:
                    return request.execute(http=self._http(), num_retries=0)
                except Exception as exc:
                    raise classify_exception(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- events ---------------------------------------------------------------------------------------

    def list_events(self, query: ListEvents) -> EventsPage:
        """One page of events.list."""
        params: dict[str, Any] = {
            "calendarId": query.calendar_id,
            "maxResults": self._page_size,
            "singleEvents": query.single_events,
            "fields": LIST_FIELDS,
        }
        if query.sync_token is not None:
            params["syncToken"] = query.sync_token
        else:
            if query.time_min is not None:
                params["timeMin"] = _rfc3339(query.time_min)
            if query.time_max is not None:
                params["timeMax"] = _rfc3339(query.time_max)
            if query.private_filters:
                params["privateExtendedProperty"] = list(query.private_filters)
        if query.show_deleted is not None:
            params["showDeleted"] = query.show_deleted
        if query.page_token is not None:
            params["pageToken"] = query.page_token
        body = self._call("events.list", self._service.events().list(**params))
        return EventsPage(
            items=[GoogleEvent.model_validate(item) for item in body.get("items", [])],
            next_page_token=body.get("nextPageToken"),
            next_sync_token=body.get("nextSyncToken"),
            time_zone=body.get("timeZone"),
        )

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        """events.get (cancelled events too)."""
        body = self._call("events.get", self._service.events().get(calendarId=calendar_id, eventId=event_id))
        return GoogleEvent.model_validate(body)

    def execute_op(self, op: BatchOp) -> GoogleEvent | None:
        """One op as its own request: events.insert, update (``If-Match`` when given), delete or get."""
        body = self._call(f"events.{op.kind}", self._request_for(op))
        return None if op.kind == "delete" else GoogleEvent.model_validate(body)

    # -- channels, calendars, acl ---------------------------------------------------------------------

    def watch_events(self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl_s: int) -> WatchChannel:
        """events.watch; ``expiration`` is read from the answer, never assumed."""
        body = {"id": channel_id, "type": "web_hook", "address": address, "token": token, "params": {"ttl": str(ttl_s)}}
        answer = self._call("events.watch", self._service.events().watch(calendarId=calendar_id, body=body))
        return WatchChannel(
            id=answer["id"],
            resource_id=answer["resourceId"],
            resource_uri=answer.get("resourceUri"),
            token=answer.get("token"),
            expiration=_expiration(answer.get("expiration")),
        )

    def stop_channel(self, calendar_id: str, channel_id: str, resource_id: str) -> None:
        """channels.stop (this adapter acts as one account: ``calendar_id`` is for the routing adapters)."""
        self._call("channels.stop", self._service.channels().stop(body={"id": channel_id, "resourceId": resource_id}))

    def insert_calendar(self, summary: str, *, time_zone: str, writer: str | None = None) -> str:
        """calendars.insert; returns the new id (this adapter acts as one account: ``writer`` is the pool's)."""
        answer = self._call(
            "calendars.insert", self._service.calendars().insert(body={"summary": summary, "timeZone": time_zone})
        )
        return str(answer["id"])

    def get_calendar(self, calendar_id: str) -> Mapping[str, Any]:
        """calendars.get."""
        answer: Mapping[str, Any] = self._call("calendars.get", self._service.calendars().get(calendarId=calendar_id))
        return answer

    def insert_acl(self, calendar_id: str, *, email: str, role: str) -> None:
        """acl.insert for a user, without e-mailing them."""
        body = {"role": role, "scope": {"type": "user", "value": email}}
        request = self._service.acl().insert(calendarId=calendar_id, body=body, sendNotifications=False)
        self._call("acl.insert", request)

    def free_busy(self, calendar_ids: Sequence[str], time_min: datetime, time_max: datetime) -> list[BusyTimes]:
        """freebusy.query: busy intervals per calendar (a calendar it cannot read carries its error reason)."""
        body = {
            "timeMin": _rfc3339(time_min),
            "timeMax": _rfc3339(time_max),
            "items": [{"id": c} for c in calendar_ids],
        }
        answer = self._call("freebusy.query", self._service.freebusy().query(body=body))
        calendars = answer.get("calendars") or {}
        out = []
        for calendar_id in calendar_ids:
            entry = calendars.get(calendar_id) or {"errors": [{"reason": "notFound"}]}
            errors_ = entry.get("errors") or []
            busy = tuple(
                (_parse_rfc3339(b["start"]), _parse_rfc3339(b["end"])) for b in entry.get("busy") or [] if not errors_
            )
            out.append(BusyTimes(calendar_id, busy, str(errors_[0].get("reason") or "unknown") if errors_ else None))
        return out

    # -- batch ----------------------------------------------------------------------------------------

    def _request_for(self, op: BatchOp) -> HttpRequest:
        events = self._service.events()
        request: HttpRequest
        if op.kind == "insert":
            request = events.insert(
                calendarId=op.calendar_id,
                body=dict(op.body or {}),
                sendUpdates=op.send_updates,
                conferenceDataVersion=1 if op.conference else 0,
            )
        elif op.kind == "update":
            request = events.update(
                calendarId=op.calendar_id, eventId=op.event_id, body=dict(op.body or {}), sendUpdates=op.send_updates
            )
        elif op.kind == "delete":
            request = events.delete(calendarId=op.calendar_id, eventId=op.event_id, sendUpdates=op.send_updates)
        else:
            request = events.get(calendarId=op.calendar_id, eventId=op.event_id)
        if op.if_match and op.kind in ("update", "delete"):
            request.headers["If-Match"] = op.if_match
        return request

    def _run_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """One batch request for ``ops``; a failure of the whole request raises."""
        results: dict[int, BatchResult] = {}

        def callback(request_id: str, response: Any, exception: Exception | None) -> None:
            index = int(request_id)
            op = ops[index]
            if exception is not None:
                results[index] = BatchResult(op=op, error=classify_exception(exception))
            elif op.kind == "delete" or not response:
                results[index] = BatchResult(op=op)
            else:
                results[index] = BatchResult(op=op, event=GoogleEvent.model_validate(response))

        batch = BatchHttpRequest(callback=callback, batch_uri=self._batch_uri)
        for index, op in enumerate(ops):
            batch.add(self._request_for(op), request_id=str(index))
        try:
            batch.execute(http=self._http())
        except Exception as exc:
            raise classify_exception(exc) from exc
        return [results[i] for i in range(len(ops))]

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """Run ``ops`` in batches of ``batch_size``; retryable per-call failures are retried in a later batch."""
        final: dict[int, BatchResult] = {}
        for start in range(0, len(ops), self._batch_size):
            pending = list(range(start, min(start + self._batch_size, len(ops))))
            for attempt in range(1, self._retry.max_attempts + 1):
                chunk = [ops[i] for i in pending]
                try:
                    outcome = self._run_batch_with_retry(chunk)
                except errors.CalendarApiError as exc:
                    for i in pending:
                        final[i] = BatchResult(op=ops[i], error=exc)
                    break
                retry_next: list[int] = []
                retry_after: float | None = None
                for i, result in zip(pending, outcome, strict=True):
                    final[i] = result
                    if result.error is not None and _retryable(result.error):
                        retry_next.append(i)
                        if result.error.retry_after_s is not None:
                            retry_after = max(retry_after or 0.0, result.error.retry_after_s)
                if not retry_next or attempt == self._retry.max_attempts:
                    break
                log.warning("calendar.batch_retry", attempt=attempt, count=len(retry_next))
                self._retry.sleep(self._retry.wait_s(attempt, retry_after))
                pending = retry_next
        return [final[i] for i in range(len(ops))]

    def _run_batch_with_retry(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        for attempt in self._attempts("batch"):
            with attempt:
                return self._run_batch(ops)
        raise AssertionError("unreachable")  # pragma: no cover
