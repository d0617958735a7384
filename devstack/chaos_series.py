"""Chaos: real calendar content among people's edits, and the series a person makes of our event.

Mixed into a seed by ``chaos.SeedRun`` (``step_real_calendars``) on the professional and room calendars:

- a person adds a weekly series (a few weeks, or with no end), an all-day busy day or a timed event
  shown as free;
- a person moves or cancels one instance of their series (an exception), or deletes a series;
- a person turns one of our future events into a weekly series (its instances carry our tags).

Invariant (f), checked after convergence: a series made of ours keeps every instance it had (same
ids, live, etags unchanged: calsync wrote none of them, nor the master) and has exactly one open
``series_from_ours`` conflict (counted with invariant 5). The other invariants read these events as
Google lists them (``singleEvents``): an instance of a person's series is that person's event; a
tagged instance is neither a copy of its allocation nor a duplicate; busy time is opaque timed and
all-day events, never events shown as free.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests

from calsync.ports.queries import ConflictQuery, pages
from calsync.services.provision import TIME_ZONE

CALENDAR_ZONE = ZoneInfo(TIME_ZONE)

if TYPE_CHECKING:
    from devstack.chaos import SeedRun

SERIES_KIND = "series_from_ours"


def utc(value: Any) -> datetime | None:
    """A Google time as UTC: ``dateTime``, or an all-day ``date`` at midnight of the calendar's zone."""
    if not value:
        return None
    if isinstance(value, dict) and not value.get("dateTime") and value.get("date"):
        # Google reads a date in the calendar's own zone: every chaos calendar is made in provisioning's
        # (the control calendar too), whatever zone calsync writes its suggestions in (UTC here).
        midnight = datetime.fromisoformat(str(value["date"])).replace(tzinfo=CALENDAR_ZONE)
        return midnight.astimezone(UTC)
    text = value.get("dateTime") if isinstance(value, dict) else value
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


def instances(run: SeedRun, calendar_id: str, series_id: str) -> dict[str, dict[str, Any]]:
    """A series' instances in the checks' window (events.instances, as the service account), by id."""
    url = f"{run.events_url(calendar_id, series_id)}/instances"
    params = {
        "showDeleted": "true",
        "maxResults": "2500",
        "timeMin": (run.now - timedelta(days=44)).isoformat(),
        "timeMax": (run.now + timedelta(days=179)).isoformat(),
    }
    answer = requests.get(url, params=params, timeout=10)
    answer.raise_for_status()
    return {e["id"]: e for e in answer.json().get("items", [])}


def _personal(run: SeedRun, calendar_id: str, body: dict[str, Any], note: str) -> dict[str, Any]:
    actor = run.actors[calendar_id]
    event = run.person(actor, "POST", calendar_id, body=body)
    return event | {"_actor": actor, "_note": note}


def add_series(run: SeedRun, calendar_id: str) -> None:
    """A person's weekly series: a few weeks or endless (Google expands it; calsync mirrors the window)."""
    start = run.base + timedelta(days=run.rng.randint(0, 4), hours=run.rng.choice([-3, 0, 1]))
    rule = "RRULE:FREQ=WEEKLY" + run.rng.choice(["", f";COUNT={run.rng.randint(2, 6)}"])
    body = {
        "summary": run.summary("Bloqueio semanal"),
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(minutes=run.rng.choice([30, 60]))).isoformat()},
        "recurrence": [rule],
    }
    event = _personal(run, calendar_id, body, "series")
    run.ledger.personal_series.add((calendar_id, event["id"]))
    run.counts["person_edits"] += 1
    run.ledger.step(f"{event['_actor']} added series {event['id'][:8]} ({rule}) on {run.key_of(calendar_id)}")


def add_single(run: SeedRun, calendar_id: str, kind: str) -> None:
    """A person's all-day busy day or a timed event shown as free."""
    start = run.base + timedelta(days=run.rng.randint(0, 4))
    day = start.date()
    body: dict[str, Any] = {"summary": run.summary("Folga" if kind == "all_day" else "Livre")}
    if kind == "all_day":
        body |= {"start": {"date": day.isoformat()}, "end": {"date": (day + timedelta(days=1)).isoformat()}}
    else:
        body |= {
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
            "transparency": "transparent",
        }
    event = _personal(run, calendar_id, body, kind)
    run.ledger.manual.add((calendar_id, event["id"]))
    run.remember(calendar_id, event["id"], event["_actor"], f"create {kind}")
    run.ledger.step(f"{event['_actor']} created {kind} {event['id'][:8]} on {run.key_of(calendar_id)} {day}")


def delete_series(run: SeedRun) -> None:
    """A person deletes one of their series (Google lists it as the master's tombstone only)."""
    series = sorted(run.ledger.personal_series - run.ledger.deleted_series)
    if not series:
        return
    gid, sid = run.rng.choice(series)
    actor = run.actors[gid]
    run.person(actor, "DELETE", gid, sid)
    run.ledger.deleted_series.add((gid, sid))
    for cal, iid in sorted(run.ledger.manual):
        if cal == gid and iid.startswith(f"{sid}_"):
            run.remember(gid, iid, actor, "delete series")  # its exceptions went with it
    run.counts["person_edits"] += 1
    run.ledger.step(f"{actor} deleted series {sid[:8]} on {run.key_of(gid)}")


def exception(run: SeedRun) -> None:
    """A person moves or cancels one future instance of one of their series."""
    series = sorted(run.ledger.personal_series - run.ledger.deleted_series)
    if not series:
        return
    gid, sid = run.rng.choice(series)
    now = run.clock.now()
    live = sorted(
        iid
        for iid, e in instances(run, gid, sid).items()
        if e.get("status") != "cancelled" and (utc(e.get("start")) or now) > now + timedelta(hours=1)
    )
    if not live:
        return
    iid = run.rng.choice(live)
    actor = run.actors[gid]
    what = run.rng.choice(["move instance", "cancel instance"])
    if what == "cancel instance":
        run.person(actor, "DELETE", gid, iid)
    else:
        event = run.person(actor, "GET", gid, iid)
        shift = timedelta(minutes=run.rng.choice([-90, 60, 120]))
        start, end = utc(event.get("start")), utc(event.get("end"))
        if start is None or end is None:
            return
        moved = {"start": {"dateTime": (start + shift).isoformat()}, "end": {"dateTime": (end + shift).isoformat()}}
        run.person(actor, "PATCH", gid, iid, moved)
    run.ledger.manual.add((gid, iid))
    run.remember(gid, iid, actor, what)
    run.ledger.step(f"{actor} {what} {iid[-16:]} of series {sid[:8]} on {run.key_of(gid)}")


def series_of_ours(run: SeedRun) -> None:
    """A person turns one of our future events, untouched so far, into a weekly series."""
    open_ids: set[tuple[str, str]] = set()
    for page in pages(run.store.list_conflicts, ConflictQuery(None, status="open", page_size=500)):
        open_ids.update((run.calendars[c.calendar_key], c.event_id) for c in page if c.calendar_key in run.calendars)
    now = run.clock.now()
    candidates = []
    for gid, eid in run.published_live():
        if (gid, eid) in run.ledger.last_write or (gid, eid) in run.people_fields or (gid, eid) in open_ids:
            continue
        event = run.person(None, "GET", gid, eid)
        start = utc(event.get("start"))
        if event.get("status") != "cancelled" and start is not None and start > now + timedelta(hours=2):
            candidates.append((gid, eid, event))
    if not candidates:
        return
    gid, eid, event = run.rng.choice(candidates)
    actor = run.actors[gid]
    body = {k: v for k, v in event.items() if k not in ("etag", "updated", "created", "htmlLink", "iCalUID")}
    body["recurrence"] = [f"RRULE:FREQ=WEEKLY;COUNT={run.rng.randint(2, 4)}"]
    url = f"{run.stack.calendar}/calendar/v3/calendars/{quote(gid, safe='')}/events/{quote(eid, safe='')}"
    answer = requests.put(url, json=body, headers={"X-Emulator-User": actor}, timeout=10)
    answer.raise_for_status()
    made = {iid: e.get("etag") for iid, e in instances(run, gid, eid).items() if e.get("status") != "cancelled"}
    run.ledger.series_of_ours[(gid, eid)] = (len(run.api.writes), made)
    run.counts["series_of_ours"] += 1
    run.ledger.step(f"{actor} made our {eid[:8]} on {run.key_of(gid)} a series of {len(made)}")


def step_real_calendars(run: SeedRun) -> None:
    """One of the real-calendar edits above, on a calendar a person may edit."""
    what = run.rng.choice(["series", "series", "all_day", "free", "exception", "exception", "delete", "ours", "ours"])
    gid = run.rng.choice(sorted(run.actors))
    if what == "series":
        add_series(run, gid)
    elif what in ("all_day", "free"):
        add_single(run, gid, "all_day" if what == "all_day" else "free")
    elif what == "exception":
        exception(run)
    elif what == "delete":
        delete_series(run)
    else:
        series_of_ours(run)


# --- how the checks read these events ----------------------------------------------------------------


def person_created(run: SeedRun, calendar_id: str, event: dict[str, Any]) -> bool:
    """An untagged event a person made: theirs, or an instance of their series."""
    if (calendar_id, event["id"]) in run.ledger.manual:
        return True
    return (calendar_id, str(event.get("recurringEventId"))) in run.ledger.personal_series


def blocks_time(event: dict[str, Any]) -> bool:
    """Busy time: not shown as free, not a working location (timed and all-day alike)."""
    return event.get("transparency") != "transparent" and event.get("eventType") != "workingLocation"


def check_series(run: SeedRun, truth: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Invariant (f): a series made of ours keeps every instance it had, untouched by calsync."""
    failures: list[str] = []
    by_gid = {gid: key for key, gid in run.calendars.items()}
    for (gid, sid), (index, made) in sorted(run.ledger.series_of_ours.items()):
        key = by_gid[gid]
        for iid, etag in sorted(made.items()):
            now = truth[key].get(iid)
            if now is None or now.get("status") == "cancelled":
                failures.append(f"invF {key}: instance {iid[-16:]} of the series made of our {sid[:8]} is gone")
            elif now.get("etag") != etag:
                failures.append(f"invF {key}: instance {iid[-16:]} of the series made of our {sid[:8]} was changed")
        for w in run.api.writes[index:]:
            if w.ok and w.calendar_id == gid and (w.event_id == sid or w.event_id.startswith(f"{sid}_")):
                failures.append(f"invF {key}: calsync {w.kind} on the series made of our {sid[:8]}")
    return failures
