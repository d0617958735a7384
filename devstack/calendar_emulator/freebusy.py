"""freebusy.query: busy intervals per calendar, never event content.

Busy time is every opaque, non-cancelled event (recurring series expanded, all-day events as whole
days of the calendar's time zone), clipped to the query window, sorted and merged. A calendar the
caller cannot see — no ACL role, not even ``freeBusyReader`` — answers ``errors: [notFound]`` instead
of failing the request. Source: https://developers.google.com/workspace/calendar/api/v3/reference/freebusy/query.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from devstack.calendar_emulator import wire
from devstack.calendar_emulator.errors import ApiError
from devstack.calendar_emulator.listing import rows
from devstack.calendar_emulator.model import ROLES, Calendar, Caller

if TYPE_CHECKING:
    from devstack.calendar_emulator.store import Store

# FreeBusyRequest.calendarExpansionMax: "Maximum value is 50".
MAX_CALENDARS = 50


def _error(reason: str) -> dict[str, Any]:
    return {"errors": [{"domain": "global", "reason": reason}], "busy": []}


def _format(ts: float, tz: ZoneInfo) -> str:
    stamp = dt.datetime.fromtimestamp(ts, tz)
    if stamp.utcoffset() == dt.timedelta(0) and tz.key == "UTC":
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return stamp.isoformat(timespec="seconds")


def _time(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if not value:
        raise ApiError(400, "required", f"Missing {name} parameter.", location=name, location_type="parameter")
    return wire.parse_rfc3339(str(value), name)


def busy(cal: Calendar, lo: float, hi: float) -> list[tuple[float, float]]:
    """Merged, sorted busy intervals of ``cal`` within [lo, hi)."""
    spans = []
    for ev in cal.events.values():
        for row in rows(cal, ev, True, lo, hi):
            res = row.resource
            if res.get("status") == "cancelled" or res.get("transparency") == "transparent":
                continue
            start, end = max(row.start_ts, lo), min(row.end_ts, hi)
            if start < end:
                spans.append((start, end))
    spans.sort()
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def visible(store: Store, caller: Caller, calendar_id: str) -> Calendar | None:
    """The calendar when the caller holds at least ``freeBusyReader`` on it (their own primary is created)."""
    if calendar_id in ("primary", caller.email):
        return store.calendar(caller, "primary")
    cal = store.calendars.get(calendar_id)
    if cal is None or ROLES.index(store.role(caller, cal)) < ROLES.index("freeBusyReader"):
        return None
    return cal


def query(store: Store, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """The FreeBusyResponse for a FreeBusyRequest body."""
    lo, hi = _time(body, "timeMin"), _time(body, "timeMax")
    if hi <= lo:
        raise ApiError(
            400, "timeRangeEmpty", "The specified time range is empty.", location="timeMax", location_type="parameter"
        )
    tz = wire.zone(body.get("timeZone"), "UTC")
    limit = min(int(body.get("calendarExpansionMax") or MAX_CALENDARS), MAX_CALENDARS)
    items = body.get("items") or []
    if not isinstance(items, list):
        raise ApiError(400, "invalid", "Invalid value for items.")
    calendars: dict[str, Any] = {}
    for n, item in enumerate(items):
        calendar_id = str((item or {}).get("id") or "")
        if n >= limit:
            calendars[calendar_id] = _error("tooManyCalendarsRequested")
            continue
        cal = visible(store, caller, calendar_id) if calendar_id else None
        if cal is None:
            calendars[calendar_id] = _error("notFound")
            continue
        spans = busy(cal, lo, hi)
        calendars[calendar_id] = {"busy": [{"start": _format(s, tz), "end": _format(e, tz)} for s, e in spans]}
    return {
        "kind": "calendar#freeBusy",
        "timeMin": _format(lo, ZoneInfo("UTC")),
        "timeMax": _format(hi, ZoneInfo("UTC")),
        "calendars": calendars,
    }
