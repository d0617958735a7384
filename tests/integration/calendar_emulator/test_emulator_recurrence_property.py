"""Property: the emulator's expanded instances agree with an independent ``dateutil.rrule`` expansion.

Each example inserts one random timed series (DAILY/WEEKLY/MONTHLY, INTERVAL, BYDAY, COUNT or UNTIL or
neither, EXDATEs) in one of four zones with daylight-saving changes, lists it through the real client
with ``singleEvents=true`` in a window that contains one of the zone's DST transitions, and compares
ids, starts, ends and ``originalStartTime`` with ``rrule(...)`` built from the same parameters (not
from the recurrence text the emulator parses). 2017-2018, so São Paulo still had DST.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, FR, MO, MONTHLY, SA, SU, TH, TU, WE, WEEKLY, rrule, rruleset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import calendar, control

USER = "propriedade@clinic.example"
ZONES = ("America/New_York", "Europe/Lisbon", "Australia/Sydney", "America/Sao_Paulo")
FREQS = {"DAILY": DAILY, "WEEKLY": WEEKLY, "MONTHLY": MONTHLY}
DAYS = {"MO": MO, "TU": TU, "WE": WE, "TH": TH, "FR": FR, "SA": SA, "SU": SU}
UTC = dt.UTC


@cache
def transitions(zone: str) -> list[dt.date]:
    """Days in 2017-2018 on which ``zone`` changes its UTC offset."""
    tz = ZoneInfo(zone)
    day, out = dt.date(2017, 1, 1), []
    while day < dt.date(2019, 1, 1):
        noon = dt.datetime.combine(day, dt.time(12), tz)
        if noon.utcoffset() != (noon + dt.timedelta(days=1)).utcoffset():
            out.append(day + dt.timedelta(days=1))
        day += dt.timedelta(days=1)
    return out


@dataclass(frozen=True)
class Case:
    """One random series and listing window."""

    zone: str
    start: dt.datetime  # aware, in ``zone``
    duration: dt.timedelta
    freq: str
    interval: int
    byday: tuple[str, ...]
    count: int | None
    until: dt.datetime | None  # UTC
    exdate_picks: tuple[int, ...]
    exdate_utc: bool
    time_min: dt.datetime
    time_max: dt.datetime

    def rule(self) -> rrule:
        """The independent expansion: dateutil's ``rrule`` from the parameters themselves."""
        return rrule(
            FREQS[self.freq],
            dtstart=self.start,
            interval=self.interval,
            count=self.count,
            until=self.until,
            byweekday=[DAYS[d] for d in self.byday] or None,
        )

    def exdates(self) -> list[dt.datetime]:
        """Occurrences picked (by index among the first 60) to be excluded."""
        first = list(self.rule().xafter(self.start, count=60, inc=True))
        return sorted({first[i % len(first)] for i in self.exdate_picks}) if first else []

    def body(self) -> dict[str, Any]:
        """The event resource the emulator gets."""
        parts = [f"FREQ={self.freq}", f"INTERVAL={self.interval}"]
        if self.byday:
            parts.append("BYDAY=" + ",".join(self.byday))
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        if self.until is not None:
            parts.append("UNTIL=" + self.until.strftime("%Y%m%dT%H%M%SZ"))
        lines = ["RRULE:" + ";".join(parts)]
        for ex in self.exdates():
            if self.exdate_utc:
                lines.append("EXDATE:" + ex.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
            else:
                lines.append(f"EXDATE;TZID={self.zone}:" + ex.strftime("%Y%m%dT%H%M%S"))
        end = (self.start.replace(tzinfo=None) + self.duration).replace(tzinfo=self.start.tzinfo)
        return {
            "summary": "série",
            "start": {"dateTime": self.start.replace(tzinfo=None).isoformat(), "timeZone": self.zone},
            "end": {"dateTime": end.replace(tzinfo=None).isoformat(), "timeZone": self.zone},
            "recurrence": lines,
        }

    def expected(self, series_id: str) -> list[tuple[str, float, float]]:
        """(id, start, end) of every instance overlapping the window, by the independent expansion."""
        rules = rruleset()
        rules.rrule(self.rule())
        for ex in self.exdates():
            rules.exdate(ex)
        tz = ZoneInfo(self.zone)
        out = []
        slack = self.duration + dt.timedelta(days=2)
        for occ in rules.between(self.time_min.astimezone(tz) - slack, self.time_max.astimezone(tz) + slack, inc=True):
            end = (occ.replace(tzinfo=None) + self.duration).replace(tzinfo=tz)
            if occ.timestamp() < self.time_max.timestamp() and end.timestamp() > self.time_min.timestamp():
                stamp = occ.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
                out.append((f"{series_id}_{stamp}", occ.timestamp(), end.timestamp()))
        return out


@st.composite
def cases(draw: st.DrawFn) -> Case:
    zone = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(zone)
    change = draw(st.sampled_from(transitions(zone)))
    day = change - dt.timedelta(days=draw(st.integers(0, 120)))
    start = dt.datetime.combine(day, dt.time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45]))), tz)
    freq = draw(st.sampled_from(sorted(FREQS)))
    byday: tuple[str, ...] = ()
    if freq != "DAILY" and draw(st.booleans()):
        byday = tuple(draw(st.lists(st.sampled_from(list(DAYS)), min_size=1, max_size=3, unique=True)))
    ending = draw(st.sampled_from(["count", "until", "none"]))
    count = draw(st.integers(1, 40)) if ending == "count" else None
    until = None
    if ending == "until":
        until = (start + dt.timedelta(days=draw(st.integers(1, 240)), minutes=draw(st.integers(-90, 90)))).astimezone(
            UTC
        )
        until = until.replace(microsecond=0)
    before, after = draw(st.integers(1, 40)), draw(st.integers(1, 60))
    crossing = dt.datetime.combine(change, dt.time(12), tz)
    return Case(
        zone=zone,
        start=start,
        duration=dt.timedelta(minutes=draw(st.sampled_from([15, 30, 60, 90, 150, 600]))),
        freq=freq,
        interval=draw(st.integers(1, 3)),
        byday=byday,
        count=count,
        until=until,
        exdate_picks=tuple(draw(st.lists(st.integers(0, 59), max_size=3))),
        exdate_utc=draw(st.booleans()),
        time_min=(crossing - dt.timedelta(days=before)).astimezone(UTC),
        time_max=(crossing + dt.timedelta(days=after)).astimezone(UTC),
    )


def _instant(value: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(value["dateTime"]).timestamp()


def test_expansion_matches_dateutil_across_dst(calendar_base: str) -> None:
    # Some 600 calls: more than Google's per-user minute allows.
    control(calendar_base, "quota", {"per_user_per_minute": 100_000, "per_project_per_minute": 100_000})
    api = calendar(calendar_base, user=USER)
    cal = api.calendars().insert(body={"summary": "Propriedade", "timeZone": "UTC"}).execute()["id"]

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=cases())
    def check(case: Case) -> None:
        series_id = api.events().insert(calendarId=cal, body=case.body()).execute()["id"]
        try:
            items: list[dict[str, Any]] = []
            token = None
            while True:
                page = (
                    api.events()
                    .list(
                        calendarId=cal,
                        singleEvents=True,
                        orderBy="startTime",
                        timeMin=case.time_min.isoformat(),
                        timeMax=case.time_max.isoformat(),
                        maxResults=2500,
                        pageToken=token,
                    )
                    .execute()
                )
                items.extend(page["items"])
                token = page.get("nextPageToken")
                if not token:
                    break
            got = [(i["id"], _instant(i["start"]), _instant(i["end"])) for i in items]
            assert got == case.expected(series_id)
            for item in items:
                assert item["recurringEventId"] == series_id
                assert _instant(item["originalStartTime"]) == _instant(item["start"])
                assert item["start"]["timeZone"] == case.zone
        finally:
            api.events().delete(calendarId=cal, eventId=series_id).execute()

    check()
