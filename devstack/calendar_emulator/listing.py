"""events.list (full and incremental), events.instances and the rows both are made of.

A row is a stored event or, with ``singleEvents=true``, an instance computed from a series master.
Full listings scan events in creation order (or sort them for ``orderBy``); incremental listings scan
only the change log after the sync token (O(changes)). With ``singleEvents=true`` a changed master
comes back as its instances (those up to ``recurrence.HORIZON_S`` ahead), a deleted master as its own
tombstone. Sources: https://developers.google.com/workspace/calendar/api/v3/reference/events/list,
https://developers.google.com/workspace/calendar/api/v3/reference/events/instances and the sync guide
https://developers.google.com/workspace/calendar/api/guides/sync.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devstack.calendar_emulator import event_types, recurrence, wire
from devstack.calendar_emulator.errors import ApiError, bad_request, full_sync_required, not_found
from devstack.calendar_emulator.model import (
    DEFAULT_MAX_RESULTS,
    MAX_RESULTS_CAP,
    SYNC_FORBIDDEN,
    Calendar,
    Caller,
    Query,
    StoredEvent,
    flag,
    integer,
    one,
    xprop_filters,
)


@dataclass(frozen=True)
class Row:
    """One item of a listing: its resource, time bounds and the keys listings order on."""

    resource: dict[str, Any]
    start_ts: float
    end_ts: float
    updated_ms: int
    ordinal: int
    sub: float = 0.0  # an instance's start inside its series; 0 for stored events


def _stored(ev: StoredEvent) -> Row:
    return Row(ev.resource, ev.start_ts, ev.end_ts, ev.updated_ms, ev.ordinal)


def instance_rows(cal: Calendar, master: StoredEvent, lo: float | None, hi: float | None) -> Iterator[Row]:
    """The master's unchanged instances that may overlap [lo, hi) (exceptions are stored events).

    Without ``hi``, expansion stops ``recurrence.HORIZON_S`` after the latest of now, ``lo`` and the
    series' start, so an unbounded series gives a bounded listing.
    """
    upper = hi if hi is not None else recurrence.horizon(max(lo or 0.0, master.start_ts))
    for inst in recurrence.expand(master.resource, str(cal.resource["timeZone"]), lo, upper):
        if inst.id not in cal.events:
            yield Row(inst.resource, inst.start_ts, inst.end_ts, master.updated_ms, master.ordinal, inst.start_ts)


def rows(cal: Calendar, ev: StoredEvent, single: bool, lo: float | None, hi: float | None) -> Iterator[Row]:
    """What ``ev`` contributes to a listing: itself, or with ``single`` a live master's instances."""
    if single and recurrence.is_master(ev.resource):
        if ev.resource.get("status") != "cancelled":
            yield from instance_rows(cal, ev, lo, hi)
        return
    yield _stored(ev)


class Listing:
    """The read side of ``Store``: listings, sync tokens and instances."""

    if TYPE_CHECKING:  # what the read side uses of ``Store``
        clock: wire.Clock
        calendars: dict[str, Calendar]

        def role(self, caller: Caller, cal: Calendar) -> str: ...
        def calendar(self, caller: Caller, calendar_id: str, need: str = "reader") -> Calendar: ...

    def list_events(self, caller: Caller, calendar_id: str, query: Query) -> dict[str, Any]:
        """events.list: a full listing with filters, or an incremental one from ``syncToken``."""
        cal = self.calendar(caller, calendar_id)
        size = _page_size(query)
        single = flag(query, "singleEvents") or False
        order = one(query, "orderBy")
        if order not in (None, "startTime", "updated"):
            raise bad_request(f"Invalid value for orderBy: {order}", location="orderBy")
        if order == "startTime" and not single:
            raise bad_request("The requested ordering is not available for the particular query.")
        head = self._head(caller, cal)
        token = one(query, "syncToken")
        if token is not None:
            items, nxt = self._incremental(cal, query, token, size, single)
        else:
            items, nxt = self._full(cal, query, size, order, single)
        head["items"] = [row.resource for row in items]
        head.update(nxt)
        return head

    def instances(self, caller: Caller, calendar_id: str, event_id: str, query: Query) -> dict[str, Any]:
        """events.instances: a series' instances, exceptions included, in original start order."""
        cal = self.calendar(caller, calendar_id)
        master = cal.events.get(event_id)
        if master is None:
            raise not_found()
        size = _page_size(query)
        # The reference calls instances' timeMin inclusive (list's is exclusive).
        lo, hi = _window(query)
        show_deleted = bool(flag(query, "showDeleted"))
        original = one(query, "originalStart")
        found: list[Row] = []
        if recurrence.is_master(master.resource) and master.resource.get("status") != "cancelled":
            found.extend(instance_rows(cal, master, lo, hi))
            prefix = f"{event_id}_"
            found.extend(
                _stored(ev)
                for eid, ev in cal.events.items()
                if eid.startswith(prefix) and ev.resource.get("recurringEventId") == event_id
            )
        chosen = [
            row
            for row in found
            if (show_deleted or row.resource.get("status") != "cancelled")
            and (lo is None or row.end_ts >= lo)
            and (hi is None or row.start_ts < hi)
            and (original is None or _same_start(row.resource.get("originalStartTime"), original))
        ]
        chosen.sort(key=lambda row: (recurrence.original_key(row.resource), row.start_ts))
        start = 0
        if page := one(query, "pageToken"):
            state = wire.decode_token(page)
            if state is None or state.get("m") != "inst":
                raise bad_request("Invalid page token", location="pageToken")
            start = int(state["o"])
        head = self._head(caller, cal)
        head["items"] = [row.resource for row in chosen[start : start + size]]
        if start + size < len(chosen):
            head["nextPageToken"] = wire.encode_token({"m": "inst", "o": start + size})
        return head

    def _head(self, caller: Caller, cal: Calendar) -> dict[str, Any]:
        return {
            "kind": "calendar#events",
            "etag": self.clock.etag(),
            "summary": cal.resource.get("summary", ""),
            "description": cal.resource.get("description", ""),
            "updated": wire.format_ms(cal.updated_ms),
            "timeZone": cal.resource["timeZone"],
            "accessRole": self.role(caller, cal),
            "defaultReminders": [],
        }

    def sync_token(self, cal: Calendar, seq: int) -> str:
        """The opaque token for "changes after ``seq``" on ``cal``."""
        return wire.encode_token({"c": cal.uid, "s": seq, "g": cal.sync_gen})

    def expire_sync_tokens(self, calendar_id: str | None) -> int:
        """Invalidate every sync token issued so far (of one calendar, or all); returns how many calendars."""
        targets = [self.calendars[calendar_id]] if calendar_id in self.calendars else []
        if calendar_id is None:
            targets = list(self.calendars.values())
        for cal in targets:
            cal.sync_gen += 1
        return len(targets)

    def _changed_rows(self, cal: Calendar, ev: StoredEvent, single: bool) -> list[Row]:
        if single and recurrence.is_master(ev.resource) and ev.resource.get("status") == "cancelled":
            return [_stored(ev)]  # a deleted series comes back as its master's tombstone
        found = list(rows(cal, ev, single, None, None))
        if single:
            # Instances a series edit removed (or a collapse to a single event) come back cancelled.
            found.extend(
                Row(recurrence.tombstone(ev.resource, iid), 0.0, 0.0, ev.updated_ms, ev.ordinal) for iid in ev.gone
            )
        return found

    def _incremental(
        self, cal: Calendar, query: Query, token: str, size: int, single: bool
    ) -> tuple[list[Row], dict[str, str]]:
        if any(name in query for name in SYNC_FORBIDDEN) or flag(query, "showDeleted") is False:
            raise bad_request(
                "Sync token cannot be used with other request restrictions.",
                reason="syncTokenWithRequestRestrictions",
            )
        payload = wire.decode_token(token)
        if (
            payload is None
            or payload.get("c") != cal.uid
            or payload.get("g") != cal.sync_gen
            or not isinstance(payload.get("s"), int)
            or payload["s"] > cal.seq
        ):
            raise full_sync_required()
        types = event_types.wanted(query)
        since = int(payload["s"])
        upto, index, after = cal.seq, bisect.bisect_right(cal.log_seq, since), None
        if page := one(query, "pageToken"):
            state = wire.decode_token(page)
            if state is None or state.get("m") != "inc" or state.get("f") != since:
                raise bad_request("Invalid page token", location="pageToken")
            upto, index, after = int(state["u"]), int(state["i"]), state.get("k")
        items: list[Row] = []
        end = len(cal.log_seq)
        while index < end and cal.log_seq[index] <= upto and len(items) < size:
            ev = cal.events.get(cal.log_ids[index])
            # Only an event's latest log entry counts, so each change appears once per pass.
            if ev is not None and ev.change_seq == cal.log_seq[index]:
                changed = sorted(
                    (r for r in self._changed_rows(cal, ev, single) if _typed(r.resource, types)), key=_place
                )
                if after is not None:  # resume after the last row sent, not after a count of rows:
                    changed = [r for r in changed if _place(r) > tuple(after)]  # an instance may have left
                room = size - len(items)
                if len(changed) > room:  # a series' instances can span pages
                    items.extend(changed[:room])
                    state = {"m": "inc", "f": since, "u": upto, "i": index, "k": list(_place(changed[room - 1]))}
                    return items, {"nextPageToken": wire.encode_token(state)}
                items.extend(changed)
            after = None
            index += 1
        if index < end and cal.log_seq[index] <= upto:
            return items, {"nextPageToken": wire.encode_token({"m": "inc", "f": since, "u": upto, "i": index})}
        return items, {"nextSyncToken": self.sync_token(cal, upto)}

    def _full(
        self, cal: Calendar, query: Query, size: int, order: str | None, single: bool
    ) -> tuple[list[Row], dict[str, str]]:
        snapshot, after = cal.seq, None
        if page := one(query, "pageToken"):
            state = wire.decode_token(page)
            if state is None or state.get("m") != "full":
                raise bad_request("Invalid page token", location="pageToken")
            snapshot, after = int(state["s"]), state["k"]
        match = matcher(query, single)
        lo, hi = _window(query)
        key: Callable[[Row], list[Any]]
        if order == "startTime":
            key = lambda row: [row.start_ts, row.ordinal, row.sub]  # noqa: E731
        elif order == "updated":
            key = lambda row: [row.updated_ms, row.ordinal, row.sub]  # noqa: E731
        else:
            key = lambda row: [row.ordinal, row.sub]  # noqa: E731

        def candidates() -> Iterator[Row]:
            for ev in cal.events.values():
                # Creation order: whole events before the page token's can be skipped unexpanded.
                if order is None and after is not None and ev.ordinal < after[0]:
                    continue
                yield from rows(cal, ev, single, lo, hi)

        source: Iterator[Row] | list[Row] = candidates()
        if order is not None:
            source = sorted((row for row in source if match(row)), key=key)
        items: list[Row] = []
        more = False
        for row in source:
            if after is not None and key(row) <= after:
                continue
            if order is None and not match(row):
                continue
            if len(items) == size:
                more = True
                break
            items.append(row)
        if more:
            return items, {"nextPageToken": wire.encode_token({"m": "full", "s": snapshot, "k": key(items[-1])})}
        return items, {"nextSyncToken": self.sync_token(cal, snapshot)}


def _place(row: Row) -> tuple[int, float, str]:
    """A row's place among its event's changed rows: instances by start, then cancelled ones by id.

    Stable while the series is paged, so a page token can name the last row sent: an instance a person
    moves or cancels meanwhile (it becomes a stored exception) shifts no other instance."""
    return (0, row.sub, "") if row.sub else (1, 0.0, str(row.resource.get("id", "")))


def _page_size(query: Query) -> int:
    max_results = integer(query, "maxResults")
    if max_results is not None and max_results < 1:
        raise bad_request("Invalid value for maxResults", location="maxResults")
    return min(max_results or DEFAULT_MAX_RESULTS, MAX_RESULTS_CAP)


def _window(query: Query) -> tuple[float | None, float | None]:
    time_min = wire.parse_rfc3339(v, "timeMin") if (v := one(query, "timeMin")) else None
    time_max = wire.parse_rfc3339(v, "timeMax") if (v := one(query, "timeMax")) else None
    if time_min is not None and time_max is not None and time_max <= time_min:
        raise ApiError(
            400, "timeRangeEmpty", "The specified time range is empty.", location="timeMax", location_type="parameter"
        )
    return time_min, time_max


def _typed(resource: dict[str, Any], types: set[str] | None) -> bool:
    return types is None or str(resource.get("eventType", "default")) in types


def _same_start(value: Any, wanted: str) -> bool:
    if not isinstance(value, dict):
        return False
    if value.get("date"):
        return str(value["date"]) == wanted
    try:
        return wire.parse_rfc3339(str(value["dateTime"]), "originalStart") == wire.parse_rfc3339(
            wanted, "originalStart"
        )
    except ApiError:
        return False


def matcher(query: Query, single: bool) -> Callable[[Row], bool]:
    """The events.list filters of ``query`` as a predicate on rows."""
    time_min, time_max = _window(query)
    updated_min = wire.parse_rfc3339(v, "updatedMin") * 1000 if (v := one(query, "updatedMin")) else None
    show_deleted = bool(flag(query, "showDeleted")) or updated_min is not None
    ical = one(query, "iCalUID")
    terms = (one(query, "q") or "").lower().split()
    private = xprop_filters(query, "privateExtendedProperty")
    shared = xprop_filters(query, "sharedExtendedProperty")
    types = event_types.wanted(query)

    def match(row: Row) -> bool:
        res = row.resource
        # Cancelled instances are listed when showDeleted and singleEvents are both false.
        hidden_instance = single or not res.get("recurringEventId")
        if res.get("status") == "cancelled" and not show_deleted and hidden_instance:
            return False
        if time_min is not None and row.end_ts <= time_min:
            return False
        if time_max is not None and row.start_ts >= time_max:
            return False
        if updated_min is not None and row.updated_ms < updated_min:
            return False
        if ical is not None and res.get("iCalUID") != ical:
            return False
        if not _typed(res, types):
            return False
        props = res.get("extendedProperties") or {}
        # Repeated constraints must all hold (discovery doc: "match all given constraints").
        if any((props.get("private") or {}).get(k) != v for k, v in private):
            return False
        if any((props.get("shared") or {}).get(k) != v for k, v in shared):
            return False
        if terms:
            text = " ".join(
                [
                    str(res.get("summary", "")),
                    str(res.get("description", "")),
                    str(res.get("location", "")),
                    str((res.get("organizer") or {}).get("email", "")),
                ]
                + [f"{a.get('email', '')} {a.get('displayName', '')}" for a in res.get("attendees") or []]
            ).lower()
            if not all(term in text for term in terms):
                return False
        return True

    return match
