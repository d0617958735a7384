"""``ports.CalendarApi`` in memory, with the rules the real API has for what it models.

``nextSyncToken`` only on the last page, 410 ``fullSyncRequired`` on an expired, malformed or other
calendar's token, ``InvalidRequest`` for a sync token combined with filters (as ``GoogleCalendarApi``
refuses it before asking), 400 on a bad page token, an empty window or an id that is not base32hex,
cancelled events only in incremental results (or with ``showDeleted``), private-property filters,
409 on a reused id, 412 on a stale ``If-Match`` (``*`` matches; checked before the tombstone), 410
``deleted`` on a second delete, batch results in request order with per-part errors.
``tests/contract/test_calendar_api.py`` runs the same checks against this fake and ``GoogleCalendarApi``
on the Calendar emulator
(https://developers.google.com/calendar/api/guides/sync, .../guides/errors, .../guides/batch).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from calsync import errors
from calsync.model import EventsPage, GoogleEvent, WatchChannel, utc
from calsync.ports import FREEBUSY_MAX_CALENDARS, BatchOp, BatchResult, BusyTimes, CalendarApi, ListEvents
from calsync.testing.clock import FrozenClock

EVENT_ID_RE = re.compile(r"[a-v0-9]{5,1024}")
# Sync tokens name their calendar, its token generation (bumped by ``expire_sync_tokens``) and the change
# sequence they follow: ``st|{calendar}|{generation}|{seq}``.
SYNC_MARK = "st"


def _rfc3339(dt: datetime) -> str:
    return utc(dt).isoformat().replace("+00:00", "Z")


def _valid_event_id(event_id: object) -> bool:
    """Google's rule for client-chosen ids: base32hex (``a-v``, ``0-9``), 5 to 1024 characters."""
    return isinstance(event_id, str) and EVENT_ID_RE.fullmatch(event_id) is not None


def _matches(if_match: str | None, etag: str) -> bool:
    """Whether an ``If-Match`` header (absent, ``*`` or an etag) lets a write through."""
    return if_match is None or if_match in ("*", etag)


def _has_private(event: Mapping[str, Any], filters: Sequence[str]) -> bool:
    """``privateExtendedProperty=key=value`` filters: every one must hold."""
    private = (event.get("extendedProperties") or {}).get("private") or {}
    return all(private.get(key) == value for key, _, value in (f.partition("=") for f in filters))


def _event_bounds(body: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    event = GoogleEvent.model_validate(body)
    start = event.start.as_utc() if event.start else None
    end = event.end.as_utc() if event.end else None
    return start, end


class FakeCalendarApi(CalendarApi):
    """``ports.CalendarApi`` in memory, with Google's paging, sync-token and error rules."""

    def __init__(self, clock: FrozenClock | None = None, *, page_size: int = 2500) -> None:
        self.clock = clock or FrozenClock()
        self.page_size = page_size
        self.calendars: dict[str, dict[str, dict[str, Any]]] = {}
        self.calendar_meta: dict[str, dict[str, str]] = {}
        self.changed_at: dict[tuple[str, str], int] = {}
        self._seq = itertools.count(1)
        self.seq = 0
        self.token_generation: dict[str, int] = {}
        self.calls: Counter[str] = Counter()
        self.faults: list[tuple[str, Exception]] = []
        self.on_list: Callable[[str, int], None] | None = None
        self.channels: dict[str, str] = {}
        # Calendars whose free/busy the acting account may not read (freebusy.query answers notFound).
        self.free_busy_hidden: set[str] = set()

    # --- test controls ---
    def fail_next(self, method: str, error: Exception, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``."""
        self.faults.extend([(method, error)] * times)

    def _fault(self, method: str) -> None:
        self.calls[method] += 1
        for i, (name, error) in enumerate(self.faults):
            if name == method:
                del self.faults[i]
                raise error

    def expire_sync_tokens(self, calendar_id: str) -> None:
        """Invalidate every sync token issued so far for a calendar (next use: 410)."""
        self.token_generation[calendar_id] = self.token_generation.get(calendar_id, 0) + 1

    def _touch(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        self.seq = next(self._seq)
        event["etag"] = f'"{self.seq}"'
        event["updated"] = _rfc3339(self.clock.now()).replace("Z", f".{self.seq % 1000:03d}Z")
        self.calendars.setdefault(calendar_id, {})[event["id"]] = event
        self.changed_at[(calendar_id, event["id"])] = self.seq
        return copy.deepcopy(event)

    def add_calendar(self, calendar_id: str) -> None:
        """Create an empty calendar."""
        self.calendars.setdefault(calendar_id, {})

    def person_edit(self, calendar_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
        """A person changes an event in Google's UI (new etag and updated)."""
        event = copy.deepcopy(self.calendars[calendar_id][event_id])
        event.update(fields)
        return self._touch(calendar_id, event)

    def person_delete(self, calendar_id: str, event_id: str) -> None:
        """A person deletes an event (it becomes a cancelled tombstone)."""
        self.person_edit(calendar_id, event_id, status="cancelled")

    # --- CalendarApi ---
    def list_events(self, query: ListEvents) -> EventsPage:
        """events.list with Google's paging and sync-token rules."""
        calendar_id, sync_token, page_token = query.calendar_id, query.sync_token, query.page_token
        time_min, time_max = query.time_min, query.time_max
        self._fault("list_events")
        if self.on_list is not None:
            self.on_list(calendar_id, self.calls["list_events"])
        if calendar_id not in self.calendars:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        if time_min is not None and time_max is not None and time_max <= time_min:
            raise errors.BadRequest("The specified time range is empty.", status=400, reason="timeRangeEmpty")
        last: tuple[int, str] | None = None
        if page_token:
            # Keyset paging (like Google's opaque tokens): an event changing mid-listing shifts nothing.
            try:
                last_changed, last_id, snapshot_s, base_s = page_token.split("|")
                last, snapshot, base = (int(last_changed), last_id), int(snapshot_s), int(base_s)
            except ValueError:
                raise errors.BadRequest("Invalid page token", status=400, reason="invalid") from None
        else:
            snapshot, base = self.seq, -1
        if sync_token is not None:
            base = self._token_base(calendar_id, sync_token)
        rows = self._select(calendar_id, sync_token is not None, base, snapshot, time_min, time_max, query.show_deleted)
        if query.private_filters:
            rows = [r for r in rows if _has_private(self.calendars[calendar_id][r[1]["id"]], query.private_filters)]
        if last is not None:
            rows = [r for r in rows if (r[0], r[1]["id"]) > last]
        chunk = rows[: self.page_size]
        items = [GoogleEvent.model_validate(e) for _, e in chunk]
        zone = self.calendar_meta.get(calendar_id, {}).get("timeZone")
        if len(rows) > self.page_size:
            key, event = chunk[-1]
            return EventsPage(items=items, next_page_token=f"{key}|{event['id']}|{snapshot}|{base}", time_zone=zone)
        generation = self.token_generation.get(calendar_id, 0)
        token = f"{SYNC_MARK}|{calendar_id}|{generation}|{snapshot}"
        return EventsPage(items=items, next_sync_token=token, time_zone=zone)

    def _token_base(self, calendar_id: str, sync_token: str) -> int:
        """The change sequence a sync token follows; 410 when it is expired, malformed or another calendar's."""
        parts = sync_token.split("|")
        current = [SYNC_MARK, calendar_id, str(self.token_generation.get(calendar_id, 0))]
        if len(parts) < 4 or [parts[0], "|".join(parts[1:-2]), parts[-2]] != current or not parts[-1].isdigit():
            raise errors.SyncTokenGone(
                "Sync token is no longer valid, a full sync is required.", status=410, reason="fullSyncRequired"
            )
        seq = int(parts[-1])
        if seq > self.seq:
            raise errors.SyncTokenGone(
                "Sync token is no longer valid, a full sync is required.", status=410, reason="fullSyncRequired"
            )
        return seq

    def _select(  # noqa: PLR0917
        self,
        calendar_id: str,
        incremental: bool,
        base: int,
        snapshot: int,
        time_min: datetime | None,
        time_max: datetime | None,
        show_deleted: bool | None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """(sort key, wire event) rows: changes since ``base`` (incremental) or the window (full)."""
        rows: list[tuple[int, dict[str, Any]]] = []
        for event_id, event in self.calendars[calendar_id].items():
            changed = self.changed_at[(calendar_id, event_id)]
            if changed > snapshot:
                continue  # after the listing's snapshot: reported by the next incremental sync
            if incremental:
                if changed > base:
                    rows.append((changed, event))
                continue
            if event.get("status") == "cancelled" and not show_deleted:
                continue
            start, end = _event_bounds(event)
            if time_min is not None and (end is None or end <= time_min):
                continue
            if time_max is not None and (start is None or start >= time_max):
                continue
            rows.append((0, event))
        rows.sort(key=lambda r: (r[0], r[1]["id"]))
        # Deleted events are only guaranteed to carry their id.
        return [
            (key, {"id": e["id"], "status": "cancelled", "etag": e["etag"]})
            if e.get("status") == "cancelled"
            else (key, copy.deepcopy(e))
            for key, e in rows
        ]

    def get_event(self, calendar_id: str, event_id: str) -> GoogleEvent:
        """events.get (cancelled events too)."""
        self._fault("get_event")
        event = self.calendars.get(calendar_id, {}).get(event_id)
        if event is None:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        return GoogleEvent.model_validate(copy.deepcopy(event))

    def execute_op(self, op: BatchOp) -> GoogleEvent | None:
        """One op: its fault hook and call count are the method's (``insert_event`` ...)."""
        if op.kind == "get":
            return self.get_event(op.calendar_id, op.event_id or "")
        self._fault(f"{op.kind}_event")
        handler = {"insert": self._insert, "update": self._update, "delete": self._delete}[op.kind]
        return handler(op)

    def _insert(self, op: BatchOp) -> GoogleEvent:
        """events.insert (409 duplicate when the id exists, live or cancelled)."""
        if op.calendar_id not in self.calendars:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        event = copy.deepcopy(dict(op.body or {}))
        event.setdefault("id", f"fake{next(self._seq):08d}")
        event.setdefault("status", "confirmed")
        if not _valid_event_id(event["id"]):
            raise errors.BadRequest("Invalid resource id value.", status=400, reason="invalid")
        if event["id"] in self.calendars[op.calendar_id]:
            raise errors.Duplicate("The requested identifier already exists.", status=409, reason="duplicate")
        return GoogleEvent.model_validate(self._touch(op.calendar_id, event))

    def _update(self, op: BatchOp) -> GoogleEvent:
        """events.update (412 on a stale If-Match)."""
        current = self.calendars.get(op.calendar_id, {}).get(op.event_id or "")
        if current is None:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        if not _matches(op.if_match, current["etag"]):
            raise errors.PreconditionFailed("Precondition Failed", status=412, reason="conditionNotMet")
        event = {**copy.deepcopy(dict(op.body or {})), "id": op.event_id}
        event.setdefault("status", "confirmed")
        return GoogleEvent.model_validate(self._touch(op.calendar_id, event))

    def _delete(self, op: BatchOp) -> None:
        """events.delete (410 deleted when already deleted)."""
        current = self.calendars.get(op.calendar_id, {}).get(op.event_id or "")
        if current is None:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        if not _matches(op.if_match, current["etag"]):  # checked before the tombstone, as Google does
            raise errors.PreconditionFailed("Precondition Failed", status=412, reason="conditionNotMet")
        if current.get("status") == "cancelled":
            raise errors.ResourceGone("Resource has been deleted", status=410, reason="deleted")
        self._touch(op.calendar_id, {**current, "status": "cancelled"})

    def watch_events(self, calendar_id: str, *, channel_id: str, address: str, token: str, ttl_s: int) -> WatchChannel:
        """events.watch."""
        self._fault("watch_events")
        if channel_id in self.channels:
            raise errors.BadRequest("Channel id not unique", status=400, reason="channelIdNotUnique")
        self.channels[channel_id] = calendar_id
        return WatchChannel(
            id=channel_id,
            resource_id=f"res-{calendar_id}",
            token=token,
            expiration=self.clock.now() + timedelta(seconds=ttl_s),
        )

    def stop_channel(self, calendar_id: str, channel_id: str, resource_id: str) -> None:
        """channels.stop."""
        self._fault("stop_channel")
        if self.channels.pop(channel_id, None) is None:
            raise errors.NotFound("Channel not found", status=404, reason="notFound")

    def insert_calendar(self, summary: str, *, time_zone: str, writer: str | None = None) -> str:
        """calendars.insert (one acting account: ``writer`` is for the pool adapter)."""
        self._fault("insert_calendar")
        if not summary:
            raise errors.BadRequest("Missing summary.", status=400, reason="required")
        calendar_id = f"cal{next(self._seq):06d}@group.calendar.google.com"
        self.calendars[calendar_id] = {}
        self.calendar_meta[calendar_id] = {"summary": summary, "timeZone": time_zone}
        return calendar_id

    def get_calendar(self, calendar_id: str) -> Mapping[str, Any]:
        """calendars.get."""
        self._fault("get_calendar")
        if calendar_id not in self.calendars:
            raise errors.NotFound("Not Found", status=404, reason="notFound")
        meta = self.calendar_meta.get(calendar_id, {"summary": calendar_id, "timeZone": "UTC"})
        return {"id": calendar_id, **meta}

    def insert_acl(self, calendar_id: str, *, email: str, role: str) -> None:
        """acl.insert."""
        self._fault("insert_acl")

    def execute_batch(self, ops: Sequence[BatchOp]) -> list[BatchResult]:
        """Run each op in order, capturing classified errors per op."""
        results: list[BatchResult] = []
        for op in ops:
            try:
                event = self.execute_op(op)
                results.append(BatchResult(op=op, event=event))
            except errors.CalendarApiError as exc:
                results.append(BatchResult(op=op, error=exc))
        return results

    def free_busy(self, calendar_ids: Sequence[str], time_min: datetime, time_max: datetime) -> list[BusyTimes]:
        """freebusy.query over stored events: opaque, non-cancelled, clipped and merged (no series expansion)."""
        self._fault("free_busy")
        if time_max <= time_min:
            raise errors.BadRequest("The specified time range is empty.", status=400, reason="timeRangeEmpty")
        if len(calendar_ids) > FREEBUSY_MAX_CALENDARS:
            raise errors.BadRequest("too many calendars", status=400, reason="tooManyCalendarsRequested")
        answers = []
        for calendar_id in calendar_ids:
            if calendar_id not in self.calendars or calendar_id in self.free_busy_hidden:
                answers.append(BusyTimes(calendar_id, error="notFound"))
                continue
            spans = sorted(
                (max(start, utc(time_min)), min(end, utc(time_max)))
                for event in self.calendars[calendar_id].values()
                if event.get("status") != "cancelled" and event.get("transparency") != "transparent"
                for start, end in [_event_bounds(event)]
                if start is not None and end is not None and start < utc(time_max) and end > utc(time_min)
            )
            merged: list[tuple[datetime, datetime]] = []
            for start, end in spans:
                if merged and start <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], end))
                else:
                    merged.append((start, end))
            answers.append(BusyTimes(calendar_id, tuple(merged)))
        return answers
