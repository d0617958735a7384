"""Recurring events: RRULE/EXRULE/RDATE/EXDATE expansion with python-dateutil, instance ids and resources.

A series is expanded in its own time zone (``start.timeZone``, else the calendar's), so a 09:00 weekly
event stays at 09:00 local across daylight-saving changes. Instances are never stored: they are built
from the master on demand, and only exceptions (a changed or cancelled instance) are stored, under
the instance id ``<seriesId>_<YYYYMMDDTHHMMSSZ>`` (UTC original start; all-day: ``<seriesId>_<YYYYMMDD>``).
Google's guide: https://developers.google.com/workspace/calendar/api/guides/recurringevents and the
event fields ``recurrence``, ``recurringEventId`` and ``originalStartTime`` of
https://developers.google.com/workspace/calendar/api/v3/reference/events.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

from devstack.calendar_emulator import wire
from devstack.calendar_emulator.errors import ApiError, bad_request

# Without timeMax, expansion stops this long after now (or after timeMin, when that is later).
HORIZON_S = 366 * 86400
# A finite series longer than this is treated as unbounded when computing where it ends.
FINITE_SCAN_MAX = 10_000
# End of a series without COUNT/UNTIL, in epoch seconds (9999-12-31T23:59:59Z).
FOREVER_TS = 253402300799.0
RULE_NAMES = ("RRULE", "EXRULE", "RDATE", "EXDATE")
_UNTIL_RE = re.compile(r"(?i)(UNTIL=)([0-9TZ]+)")


@dataclass(frozen=True)
class Series:
    """What expansion needs from a master: zone, first start (local), wall-clock duration and rules."""

    all_day: bool
    tz_name: str
    tz: ZoneInfo
    start: dt.datetime  # aware in ``tz`` (timed) or naive midnight (all-day)
    duration: dt.timedelta
    rules: rruleset
    finite: bool
    # EXDATE instants of a timed series, matched by instant: dateutil compares an occurrence in a DST gap
    # with an instant of another zone as never equal (PEP 495), so EXDATEs are not left to the rruleset.
    excluded: frozenset[float] = frozenset()

    def occurrences(self, rules: Iterable[dt.datetime]) -> Iterator[dt.datetime]:
        """``rules`` without the excluded instants."""
        return (occ for occ in rules if self.all_day or occ.timestamp() not in self.excluded)


@dataclass(frozen=True)
class Instance:
    """One occurrence of a series, as an event resource with its time bounds."""

    id: str
    resource: dict[str, Any]
    start_ts: float
    end_ts: float


def is_master(resource: dict[str, Any]) -> bool:
    """True for a recurring event's master (it carries ``recurrence``)."""
    return bool(resource.get("recurrence")) and not resource.get("recurringEventId")


def _invalid() -> ApiError:
    return bad_request("Invalid recurrence rule.")


def _local(value: dict[str, Any], tz: ZoneInfo) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(str(value["dateTime"]).replace("z", "Z"))
    return stamp.astimezone(tz) if stamp.tzinfo else stamp.replace(tzinfo=tz)


def _utc_stamp(local: dt.datetime) -> str:
    return local.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _fix_value(raw: str, series_all_day: bool, tz: ZoneInfo, at: dt.time) -> str:
    """One date value made comparable with the series' start (dateutil refuses mixed naive/aware)."""
    value = raw.strip()
    if series_all_day:
        return value[:8]  # a date; a time part on an all-day series names the same day
    if value.upper().endswith("Z"):
        return value.upper()
    if "T" in value.upper():
        local = dt.datetime.strptime(value.upper(), "%Y%m%dT%H%M%S").replace(tzinfo=tz)
    else:  # a bare date on a timed series: the occurrence of that day
        local = dt.datetime.combine(dt.datetime.strptime(value, "%Y%m%d").date(), at, tzinfo=tz)
    return _utc_stamp(local)


def _prepare(lines: list[str], all_day: bool, tz: ZoneInfo, start: dt.datetime) -> tuple[str, frozenset[float]]:
    """The lines as dateutil reads them, and (timed series) the EXDATE instants kept out of them."""
    out = []
    excluded: set[float] = set()
    for raw in lines:
        name, sep, value = str(raw).strip().partition(":")
        key = name.split(";")[0].upper()
        if not sep or key not in RULE_NAMES or not value:
            raise _invalid()
        params = [p for p in name.split(";")[1:] if p]
        if key in ("RRULE", "EXRULE"):
            if all_day:
                value = _UNTIL_RE.sub(lambda m: m.group(1) + m.group(2)[:8], value)
            else:
                # A floating or date-only UNTIL is read in the event's zone (date: the whole day).
                def until(m: re.Match[str]) -> str:
                    raw_until = m.group(2).upper()
                    if raw_until.endswith("Z"):
                        return m.group(1) + raw_until
                    local = raw_until if "T" in raw_until else raw_until + "T235959"
                    return m.group(1) + _fix_value(local, False, tz, start.time())

                value = _UNTIL_RE.sub(until, value)
            out.append(f"{key}:{value}")
            continue
        zone_param = next((p.split("=", 1)[1] for p in params if p.upper().startswith("TZID=")), None)
        value_zone = wire.zone(zone_param, tz.key) if zone_param else tz
        values = [_fix_value(v, all_day, value_zone, start.time()) for v in value.split(",")]
        if key == "EXDATE" and not all_day:
            try:
                excluded.update(
                    dt.datetime.strptime(v, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp() for v in values
                )
            except ValueError as exc:
                raise _invalid() from exc
            continue
        out.append(f"{key}:{','.join(values)}")
    return "\n".join(out), frozenset(excluded)


def series(resource: dict[str, Any], calendar_tz: str) -> Series:
    """The expansion parameters of a master; 400 when its recurrence lines are not valid."""
    lines = resource.get("recurrence")
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise _invalid()
    start, end = resource["start"], resource["end"]
    all_day = bool(start.get("date"))
    tz_name = str(start.get("timeZone") or calendar_tz)
    tz = wire.zone(tz_name, calendar_tz)
    if all_day:
        first = dt.datetime.combine(dt.date.fromisoformat(str(start["date"])), dt.time())
        duration = dt.date.fromisoformat(str(end["date"])) - first.date()
    else:
        first = _local(start, tz)
        # Wall-clock duration: a 09:00-10:00 series stays 09:00-10:00 local on both sides of DST.
        duration = _local(end, tz).replace(tzinfo=None) - first.replace(tzinfo=None)
    text, excluded = _prepare(lines, all_day, tz, first)
    try:
        rules = rrulestr(text, dtstart=first, forceset=True, tzids=ZoneInfo)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise _invalid() from exc
    assert isinstance(rules, rruleset)
    finite = all(re.search(r"(?i)\b(COUNT|UNTIL)=", line) for line in text.splitlines() if line.startswith("RRULE"))
    return Series(all_day, tz_name, tz, first, duration, rules, finite, excluded)


def _bounds(s: Series, occ: dt.datetime, calendar_tz: str) -> tuple[float, float]:
    if s.all_day:
        cal_tz = wire.zone(calendar_tz, "UTC")
        start = occ.replace(tzinfo=cal_tz)
        return start.timestamp(), (occ + s.duration).replace(tzinfo=cal_tz).timestamp()
    return occ.timestamp(), (occ.replace(tzinfo=None) + s.duration).replace(tzinfo=s.tz).timestamp()


def _moment(ts: float, s: Series) -> dt.datetime:
    local = dt.datetime.fromtimestamp(ts, s.tz)
    return local.replace(tzinfo=None) if s.all_day else local


def occurrences(s: Series, lo_ts: float | None, hi_ts: float) -> Iterator[dt.datetime]:
    """Occurrence starts (local) that may overlap [lo_ts, hi_ts); callers filter exactly on bounds."""
    # A day of slack on each side covers wall-clock durations across DST and all-day zones.
    slack = dt.timedelta(days=1)
    before = _moment(hi_ts, s) + slack
    after = (_moment(lo_ts, s) - s.duration - slack) if lo_ts is not None else None
    if after is None or after < s.start:
        after = s.start
    if before < after:
        return
    for occ in s.occurrences(s.rules.between(after, before, inc=True)):
        yield _in_zone(occ, s)


def _in_zone(occ: dt.datetime, s: Series) -> dt.datetime:
    """An occurrence in the series' zone; rule occurrences keep their wall time (even in a DST gap)."""
    if s.all_day or occ.tzinfo is s.tz:
        return occ
    return occ.astimezone(s.tz)  # an RDATE given in UTC or another zone


def instance_id(master_id: str, s: Series, occ: dt.datetime) -> str:
    """``<seriesId>_<YYYYMMDDTHHMMSSZ>`` (UTC original start) or ``<seriesId>_<YYYYMMDD>`` for all-day."""
    return f"{master_id}_{occ.strftime('%Y%m%d') if s.all_day else _utc_stamp(occ)}"


def _when(s: Series, occ: dt.datetime) -> dict[str, Any]:
    if s.all_day:
        return {"date": occ.date().isoformat()}
    return {"dateTime": occ.isoformat(), "timeZone": s.tz_name}


def instance(master: dict[str, Any], s: Series, occ: dt.datetime, calendar_tz: str) -> Instance:
    """The instance resource of ``occ``: the master's fields without ``recurrence``, at that time."""
    res = {k: copy.deepcopy(v) for k, v in master.items() if k != "recurrence"}
    iid = instance_id(str(master["id"]), s, occ)
    res["id"] = iid
    res["recurringEventId"] = master["id"]
    res["htmlLink"] = f"https://www.google.com/calendar/event?eid={iid}"
    res["start"] = _when(s, occ)
    res["originalStartTime"] = _when(s, occ)
    if s.all_day:
        res["end"] = {"date": (occ + s.duration).date().isoformat()}
    else:
        end = (occ.replace(tzinfo=None) + s.duration).replace(tzinfo=s.tz)
        res["end"] = {"dateTime": end.isoformat(), "timeZone": s.tz_name}
    start_ts, end_ts = _bounds(s, occ, calendar_tz)
    return Instance(iid, res, start_ts, end_ts)


def expand(master: dict[str, Any], calendar_tz: str, lo_ts: float | None, hi_ts: float) -> Iterator[Instance]:
    """The master's instances that may overlap [lo_ts, hi_ts), in start order."""
    s = series(master, calendar_tz)
    for occ in occurrences(s, lo_ts, hi_ts):
        yield instance(master, s, occ, calendar_tz)


def find(master: dict[str, Any], calendar_tz: str, iid: str) -> Instance | None:
    """The instance ``iid`` of the master when the series really has that occurrence."""
    prefix, _, stamp = iid.rpartition("_")
    if prefix != master.get("id"):
        return None
    s = series(master, calendar_tz)
    try:
        if s.all_day:
            occ = dt.datetime.strptime(stamp, "%Y%m%d")
        else:
            occ = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).astimezone(s.tz)
    except ValueError:
        return None
    # Same-zone datetimes compare by wall time, so search a few hours around and match the instant.
    near = dt.timedelta(hours=3)
    for found in s.occurrences(s.rules.between(occ - near, occ + near, inc=True)):
        if found == occ if s.all_day else found.timestamp() == occ.timestamp():
            return instance(master, s, _in_zone(found, s), calendar_tz)
    return None


def series_end_ts(master: dict[str, Any], calendar_tz: str) -> float:
    """Where the series ends (last instance's end), or ``FOREVER_TS`` when it has no end."""
    s = series(master, calendar_tz)
    if not s.finite:
        return FOREVER_TS
    last = None
    for n, occ in enumerate(s.occurrences(s.rules)):
        if n >= FINITE_SCAN_MAX:
            return FOREVER_TS
        last = occ
    if last is None:
        return _bounds(s, s.start, calendar_tz)[1]
    return _bounds(s, _in_zone(last, s), calendar_tz)[1]


def horizon(time_min: float | None) -> float:
    """Upper bound of an expansion without timeMax: ``HORIZON_S`` after now or after timeMin."""
    return max(time.time(), time_min or 0.0) + HORIZON_S


def original_key(resource: dict[str, Any]) -> float:
    """Epoch seconds of an instance's ``originalStartTime`` (all-day: the date at UTC midnight)."""
    value = resource.get("originalStartTime") or {}
    if value.get("date"):
        return float(dt.date.fromisoformat(str(value["date"])).toordinal() * 86400)
    if value.get("dateTime"):
        return dt.datetime.fromisoformat(str(value["dateTime"]).replace("z", "Z")).timestamp()
    return 0.0


def tombstone(master: dict[str, Any], iid: str) -> dict[str, Any]:
    """A cancelled instance the series no longer produces: id, recurringEventId and originalStartTime."""
    stamp = iid.rpartition("_")[2]
    if "T" in stamp:
        when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%dT%H:%M:%SZ")
        original: dict[str, Any] = {"dateTime": when}
    else:
        original = {"date": dt.datetime.strptime(stamp, "%Y%m%d").date().isoformat()}
    return {
        "kind": "calendar#event",
        "etag": master["etag"],
        "id": iid,
        "status": "cancelled",
        "updated": master["updated"],
        "recurringEventId": master["id"],
        "originalStartTime": original,
    }
