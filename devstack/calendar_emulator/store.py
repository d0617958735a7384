"""In-memory Calendar state and its writes: calendars, ACL, events (with recurring exceptions) and channels.

Each calendar keeps an append-only change log of ``(sequence, eventId)``; ``listing.py`` reads it for
incremental sync. Recurring series are stored as their master plus exceptions (changed or cancelled
instances, stored under the instance id); unchanged instances are computed by ``recurrence.py``.
Behaviour follows https://developers.google.com/workspace/calendar/api/v3/reference/events and
https://developers.google.com/workspace/calendar/api/guides/recurringevents.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from devstack.calendar_emulator import conference, event_types, recurrence, wire
from devstack.calendar_emulator.channels import Channels
from devstack.calendar_emulator.errors import ApiError, bad_request, condition_not_met, deleted, not_found
from devstack.calendar_emulator.listing import Listing
from devstack.calendar_emulator.model import (
    INSTANCE_FIELDS,
    LIST_DEFAULT_MAX,
    LIST_MAX_CAP,
    READ_ONLY,
    ROLES,
    SEQUENCE_FIELDS,
    Calendar,
    Caller,
    Channel,
    NotModified,
    Query,
    StoredEvent,
    clean_xprops,
    drop_nulls,
    integer,
    merge,
    one,
)
from devstack.calendar_emulator.usage import new_external_guests

__all__ = ["Calendar", "Caller", "Channel", "Meter", "NotModified", "Query", "Store", "StoredEvent"]

# Called with the acting account and what a write creates, just before it is committed; raises to refuse it.
Meter = Callable[[Caller, dict[str, int]], None]


class Store(Listing, Channels):
    """All calendar state of the emulator. Methods raise ``ApiError`` exactly where Google answers one."""

    def __init__(self, clock: wire.Clock | None = None) -> None:
        self.clock = clock or wire.Clock()
        self.calendars: dict[str, Calendar] = {}
        self.channels: dict[str, Channel] = {}
        self.listeners: list[Callable[[Calendar], None]] = []
        self.meter: Meter | None = None

    def _charge(self, caller: Caller, **amounts: int) -> None:
        """Offer a validated write's counts (calendars, events, shares, external guests) to the meter."""
        if self.meter is not None:
            self.meter(caller, {kind: n for kind, n in amounts.items() if n})

    @contextlib.contextmanager
    def unmetered(self) -> Iterator[None]:
        """Writes inside are not counted against usage limits (the control API's seeding)."""
        meter, self.meter = self.meter, None
        try:
            yield
        finally:
            self.meter = meter

    # --- access -----------------------------------------------------------------------------------

    def role(self, caller: Caller, cal: Calendar) -> str:
        """The caller's access role on ``cal``."""
        if cal.owner == caller.email:
            return "owner"
        rule = cal.acl.get(f"user:{caller.email}")
        return str(rule["role"]) if rule else "none"

    def calendar(self, caller: Caller, calendar_id: str, need: str = "reader") -> Calendar:
        """The calendar, or 404 when unknown or invisible; 403 when visible but ``need`` is not met."""
        if calendar_id == "primary":
            calendar_id = caller.email
        cal = self.calendars.get(calendar_id)
        if cal is None and calendar_id == caller.email:
            cal = self._create_calendar(caller, calendar_id, {"summary": caller.email}, primary=True)
        if cal is None:
            raise not_found()
        have = ROLES.index(self.role(caller, cal))
        if have < ROLES.index("reader"):
            raise not_found()
        if have < ROLES.index(need):
            raise ApiError(403, "requiredAccessLevel", f"You need to have {need} access to this calendar.")
        return cal

    # --- calendars --------------------------------------------------------------------------------

    def _create_calendar(
        self, caller: Caller, calendar_id: str, body: dict[str, Any], *, primary: bool = False
    ) -> Calendar:
        tz = str(body.get("timeZone") or "UTC")
        wire.zone(tz, "UTC")
        resource = {
            "kind": "calendar#calendar",
            "etag": self.clock.etag(),
            "id": calendar_id,
            "summary": str(body.get("summary", "")),
            "timeZone": tz,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
        if body.get("description"):
            resource["description"] = str(body["description"])
        if body.get("location"):
            resource["location"] = str(body["location"])
        cal = Calendar(id=calendar_id, uid=wire.new_opaque(), owner=caller.email, resource=resource, primary=primary)
        cal.acl[f"user:{caller.email}"] = self._rule(caller.email, "owner")
        self.calendars[calendar_id] = cal
        return cal

    def _rule(self, email: str, role: str) -> dict[str, Any]:
        return {
            "kind": "calendar#aclRule",
            "etag": self.clock.etag(),
            "id": f"user:{email}",
            "scope": {"type": "user", "value": email},
            "role": role,
        }

    def insert_calendar(self, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
        """calendars.insert: a secondary calendar owned by the caller."""
        if not body.get("summary"):
            raise ApiError(400, "required", "Missing summary.")
        wire.zone(str(body.get("timeZone") or "UTC"), "UTC")
        self._charge(caller, calendars_created=1)
        calendar_id = f"c_{wire.new_event_id()}@group.calendar.google.com"
        return copy.deepcopy(self._create_calendar(caller, calendar_id, body).resource)

    def get_calendar(self, caller: Caller, calendar_id: str) -> dict[str, Any]:
        """calendars.get."""
        return copy.deepcopy(self.calendar(caller, calendar_id).resource)

    def delete_calendar(self, caller: Caller, calendar_id: str) -> None:
        """calendars.delete: owners only; a primary calendar cannot be deleted."""
        cal = self.calendar(caller, calendar_id, need="owner")
        if cal.primary:
            raise ApiError(400, "cannotDeletePrimaryCalendar", "Cannot delete primary calendar.")
        del self.calendars[cal.id]
        for channel in self.channels.values():
            if channel.calendar_uid == cal.uid:
                channel.stopped = True

    def calendar_list(self, caller: Caller, query: Query) -> dict[str, Any]:
        """calendarList.list: every calendar the caller owns or was granted."""
        if caller.email not in self.calendars:
            self.calendar(caller, "primary")
        items = []
        for cal in self.calendars.values():
            role = self.role(caller, cal)
            if role == "none":
                continue
            entry = {
                "kind": "calendar#calendarListEntry",
                "etag": cal.resource["etag"],
                "id": cal.id,
                "summary": cal.resource.get("summary", ""),
                "timeZone": cal.resource["timeZone"],
                "accessRole": role,
                "defaultReminders": [],
                "conferenceProperties": cal.resource["conferenceProperties"],
            }
            if cal.primary and cal.owner == caller.email:
                entry["primary"] = True
            items.append(entry)
        return self._page(items, query, kind="calendar#calendarList")

    def calendar_list_entry(self, caller: Caller, calendar_id: str) -> dict[str, Any]:
        """calendarList.get."""
        cal = self.calendar(caller, calendar_id)
        for entry in self.calendar_list(caller, {"maxResults": [str(LIST_MAX_CAP)]})["items"]:
            if entry["id"] == cal.id:
                return dict(entry)
        raise not_found()

    def _page(self, items: list[dict[str, Any]], query: Query, *, kind: str) -> dict[str, Any]:
        size = min(integer(query, "maxResults") or LIST_DEFAULT_MAX, LIST_MAX_CAP)
        start = 0
        if token := one(query, "pageToken"):
            payload = wire.decode_token(token)
            if payload is None or payload.get("m") != "list":
                raise bad_request("Invalid page token", location="pageToken")
            start = int(payload["o"])
        out: dict[str, Any] = {"kind": kind, "etag": self.clock.etag(), "items": items[start : start + size]}
        if start + size < len(items):
            out["nextPageToken"] = wire.encode_token({"m": "list", "o": start + size})
        return out

    # --- ACL --------------------------------------------------------------------------------------

    def insert_acl(self, caller: Caller, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """acl.insert: share with a person (scope type ``user``); owners only."""
        cal = self.calendar(caller, calendar_id, need="owner")
        role = body.get("role")
        scope = body.get("scope") or {}
        if role not in ROLES[1:]:
            raise ApiError(400, "invalid", "Invalid role.") if role else ApiError(400, "required", "Missing role.")
        if scope.get("type") != "user" or not scope.get("value"):
            raise ApiError(400, "invalid", "Only scope type 'user' with a value is supported.")
        self._charge(caller, acl_shares=1)
        rule = self._rule(str(scope["value"]), str(role))
        cal.acl[rule["id"]] = rule
        return copy.deepcopy(rule)

    def list_acl(self, caller: Caller, calendar_id: str, query: Query) -> dict[str, Any]:
        """acl.list: owners only."""
        cal = self.calendar(caller, calendar_id, need="owner")
        return self._page([copy.deepcopy(r) for r in cal.acl.values()], query, kind="calendar#acl")

    def get_acl(self, caller: Caller, calendar_id: str, rule_id: str) -> dict[str, Any]:
        """acl.get."""
        cal = self.calendar(caller, calendar_id, need="owner")
        if rule_id not in cal.acl:
            raise not_found()
        return copy.deepcopy(cal.acl[rule_id])

    def delete_acl(self, caller: Caller, calendar_id: str, rule_id: str) -> None:
        """acl.delete; the owner's own rule cannot be removed."""
        cal = self.calendar(caller, calendar_id, need="owner")
        if rule_id not in cal.acl:
            raise not_found()
        if rule_id == f"user:{cal.owner}":
            raise ApiError(403, "cannotChangeOwnAcl", "Cannot change your own access level.")
        del cal.acl[rule_id]

    # --- events: writes ---------------------------------------------------------------------------

    def _record(self, cal: Calendar, ev: StoredEvent) -> None:
        cal.seq += 1
        cal.updated_ms = max(cal.updated_ms, ev.updated_ms)
        ev.change_seq = cal.seq
        cal.log_seq.append(cal.seq)
        cal.log_ids.append(str(ev.resource["id"]))
        for listener in self.listeners:
            listener(cal)

    def _stamp(self, resource: dict[str, Any]) -> int:
        ms = self.clock.now_ms()
        resource["updated"] = wire.format_ms(ms)
        resource["etag"] = self.clock.etag()
        return ms

    def _validate(
        self, caller: Caller, cal: Calendar, resource: dict[str, Any], previous: dict[str, Any] | None
    ) -> tuple[float, float]:
        tz = str(cal.resource["timeZone"])
        start = resource.get("start")
        end = resource.get("end")
        if not start:
            raise ApiError(400, "required", "Missing start time.")
        if not end:
            raise ApiError(400, "required", "Missing end time.")
        if not isinstance(start, dict) or not isinstance(end, dict):
            raise bad_request("Invalid value for start or end.")
        if bool(start.get("date")) != bool(end.get("date")):
            raise bad_request("Start and end times must either both be date or both be dateTime.")
        start_ts = wire.event_time(start, "start", tz)
        end_ts = wire.event_time(end, "end", tz)
        if end_ts < start_ts:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        attendees = resource.get("attendees")
        had = (previous or {}).get("attendees")
        if caller.service_account and attendees and attendees != had:
            raise ApiError(
                403,
                "forbiddenForServiceAccounts",
                "Service accounts cannot invite attendees without Domain-Wide Delegation of Authority.",
            )
        if resource.get("status", "confirmed") not in ("confirmed", "tentative", "cancelled"):
            raise bad_request("Invalid value for status")
        clean_xprops(resource)
        event_types.validate(resource, previous, primary=cal.primary)
        if not resource.get("recurrence"):
            resource.pop("recurrence", None)
        elif resource.get("recurringEventId"):
            raise bad_request("An instance of a recurring event cannot have a recurrence.")
        else:
            # Validates the lines; a master's window spans the whole series (forever if unbounded).
            end_ts = max(end_ts, recurrence.series_end_ts(resource, tz))
        return start_ts, end_ts

    def insert_event(self, caller: Caller, calendar_id: str, body: dict[str, Any], query: Query) -> dict[str, Any]:
        """events.insert: client ids must be base32hex of 5-1024 chars and never reused (409)."""
        cal = self.calendar(caller, calendar_id, need="writer")
        event_id = body.get("id")
        if event_id is not None:
            if not isinstance(event_id, str) or not wire.EVENT_ID_RE.fullmatch(event_id):
                raise ApiError(400, "invalid", "Invalid resource id value.")
            if event_id in cal.events:
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
        else:
            event_id = wire.new_event_id()
            while event_id in cal.events:
                event_id = wire.new_event_id()
        # recurringEventId and originalStartTime are the server's: an inserted event is never an instance.
        skip = READ_ONLY | INSTANCE_FIELDS
        resource = {k: copy.deepcopy(v) for k, v in drop_nulls(body).items() if k not in skip}
        conference.apply(caller, resource, None, integer(query, "conferenceDataVersion") or 0)
        start_ts, end_ts = self._validate(caller, cal, resource, None)
        invites = new_external_guests(caller.email, resource.get("attendees"))
        self._charge(caller, events_created=1, external_invites=invites)
        now = self.clock.now_ms()
        resource.update(
            {
                "kind": "calendar#event",
                "id": event_id,
                "status": resource.get("status", "confirmed"),
                "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
                "created": wire.format_ms(now),
                "creator": {"email": caller.email},
                "organizer": {"email": caller.email},
                "iCalUID": f"{event_id}@google.com",
                "sequence": int(resource.get("sequence", 0)),
                "reminders": resource.get("reminders", {"useDefault": True}),
            }
        )
        updated = self._stamp(resource)
        ev = StoredEvent(resource, cal.next_ordinal, 0, start_ts, end_ts, updated)
        cal.next_ordinal += 1
        cal.events[event_id] = ev
        self._record(cal, ev)
        return copy.deepcopy(resource)

    def _lookup(self, cal: Calendar, event_id: str) -> tuple[StoredEvent, bool]:
        """A stored event, or an unchanged instance computed from its master (``True``: not stored yet)."""
        ev = cal.events.get(event_id)
        if ev is not None:
            return ev, False
        master = cal.events.get(event_id.rpartition("_")[0])
        if master is not None and recurrence.is_master(master.resource):
            inst = recurrence.find(master.resource, str(cal.resource["timeZone"]), event_id)
            if inst is not None:
                resource = inst.resource
                if master.resource.get("status") == "cancelled":
                    resource = {**resource, "status": "cancelled"}
                return StoredEvent(resource, master.ordinal, 0, inst.start_ts, inst.end_ts, master.updated_ms), True
        raise not_found()

    def _keep(self, cal: Calendar, ev: StoredEvent, virtual: bool) -> None:
        """Store an instance the first time it changes: it becomes an exception of its series."""
        if virtual:
            ev.ordinal = cal.next_ordinal
            cal.next_ordinal += 1
            cal.events[str(ev.resource["id"])] = ev

    def _cancel_exceptions(self, cal: Calendar, master_id: str, only: set[str] | None = None) -> None:
        """A deleted series, or one that lost its recurrence, takes its exceptions (or ``only`` those) with it."""
        prefix = f"{master_id}_"
        for eid, ev in list(cal.events.items()):
            res = ev.resource
            if only is not None and eid not in only:
                continue
            if eid.startswith(prefix) and res.get("recurringEventId") == master_id and res.get("status") != "cancelled":
                ev.resource = {**res, "status": "cancelled", "sequence": int(res.get("sequence", 0)) + 1}
                ev.updated_ms = self._stamp(ev.resource)
                self._record(cal, ev)

    def get_event(self, caller: Caller, calendar_id: str, event_id: str, if_none_match: str | None) -> dict[str, Any]:
        """events.get: cancelled events and instance ids too; a matching If-None-Match answers 304."""
        cal = self.calendar(caller, calendar_id)
        ev, _ = self._lookup(cal, event_id)
        if if_none_match and if_none_match in (ev.resource["etag"], "*"):
            raise NotModified
        return copy.deepcopy(ev.resource)

    def _rewrite(
        self,
        caller: Caller,
        calendar_id: str,
        event_id: str,
        if_match: str | None,
        build: Callable[[dict[str, Any]], dict[str, Any]],
        query: Query,
    ) -> dict[str, Any]:
        cal = self.calendar(caller, calendar_id, need="writer")
        ev, virtual = self._lookup(cal, event_id)
        old = ev.resource
        if if_match and if_match not in (old["etag"], "*"):
            raise condition_not_met()
        new = build(old)
        for key in READ_ONLY | INSTANCE_FIELDS | {"organizer"}:
            if key in old:
                new[key] = copy.deepcopy(old[key])
            else:
                new.pop(key, None)
        new.setdefault("status", "confirmed")
        conference.apply(caller, new, old, integer(query, "conferenceDataVersion") or 0)
        start_ts, end_ts = self._validate(caller, cal, new, old)
        requested = new.get("sequence", old.get("sequence", 0))
        if not isinstance(requested, int) or requested < int(old.get("sequence", 0)):
            raise ApiError(400, "invalidSequenceValue", "Invalid sequence value.")
        bump = any(new.get(k) != old.get(k) for k in SEQUENCE_FIELDS)
        new["sequence"] = requested + 1 if bump and requested == old.get("sequence", 0) else requested
        invites = new_external_guests(caller.email, new.get("attendees"), old.get("attendees"))
        self._charge(caller, external_invites=invites)
        reshaped = recurrence.is_master(old) and any(new.get(k) != old.get(k) for k in ("start", "end", "recurrence"))
        vanished = self._vanished(cal, ev, new, start_ts) if reshaped else set()
        ev.updated_ms = self._stamp(new)
        ev.resource, ev.start_ts, ev.end_ts = new, start_ts, end_ts
        if vanished or ev.gone:
            ev.gone = sorted((set(ev.gone) | {i for i in vanished if i not in cal.events}) - self._ids(cal, ev))
        self._keep(cal, ev, virtual)
        self._record(cal, ev)
        if recurrence.is_master(old) and not recurrence.is_master(new):
            self._cancel_exceptions(cal, event_id)
        else:
            self._cancel_exceptions(cal, event_id, only=vanished)
        return copy.deepcopy(new)

    def _ids(self, cal: Calendar, master: StoredEvent) -> set[str]:
        """Instance ids a master produces up to its listing horizon (none when it is not a series)."""
        if not recurrence.is_master(master.resource):
            return set()
        upper = recurrence.horizon(master.start_ts)
        return {i.id for i in recurrence.expand(master.resource, str(cal.resource["timeZone"]), None, upper)}

    def _vanished(self, cal: Calendar, ev: StoredEvent, new: dict[str, Any], new_start_ts: float) -> set[str]:
        """Instance ids the series had before an edit of its start, end or recurrence and no longer has."""
        tz = str(cal.resource["timeZone"])
        upper = recurrence.horizon(max(ev.start_ts, new_start_ts))
        before = {i.id for i in recurrence.expand(ev.resource, tz, None, upper)}
        after = {i.id for i in recurrence.expand(new, tz, None, upper)} if recurrence.is_master(new) else set()
        return before - after

    def update_event(
        self,
        caller: Caller,
        calendar_id: str,
        event_id: str,
        body: dict[str, Any],
        query: Query,
        if_match: str | None,
    ) -> dict[str, Any]:
        """events.update: replaces the whole resource (omitted fields are removed)."""

        def build(_old: dict[str, Any]) -> dict[str, Any]:
            return {k: copy.deepcopy(v) for k, v in drop_nulls(body).items()}

        return self._rewrite(caller, calendar_id, event_id, if_match, build, query)

    def patch_event(
        self,
        caller: Caller,
        calendar_id: str,
        event_id: str,
        body: dict[str, Any],
        query: Query,
        if_match: str | None,
    ) -> dict[str, Any]:
        """events.patch: objects merge, null deletes a key, lists replace."""

        def build(old: dict[str, Any]) -> dict[str, Any]:
            return merge(old, {k: v for k, v in body.items() if k not in READ_ONLY})

        return self._rewrite(caller, calendar_id, event_id, if_match, build, query)

    def delete_event(self, caller: Caller, calendar_id: str, event_id: str, if_match: str | None) -> None:
        """events.delete: leaves a cancelled tombstone (an instance: a cancelled exception); again → 410."""
        cal = self.calendar(caller, calendar_id, need="writer")
        ev, virtual = self._lookup(cal, event_id)
        if if_match and if_match not in (ev.resource["etag"], "*"):
            raise condition_not_met()
        if ev.resource.get("status") == "cancelled":
            raise deleted()
        ev.resource = {**ev.resource, "status": "cancelled", "sequence": int(ev.resource["sequence"]) + 1}
        ev.updated_ms = self._stamp(ev.resource)
        self._keep(cal, ev, virtual)
        self._record(cal, ev)
        if recurrence.is_master(ev.resource):
            self._cancel_exceptions(cal, event_id)

    # --- persistence ------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """JSON-ready snapshot of all state."""
        return {
            "clock": list(self.clock.snapshot()),
            "calendars": [asdict(cal) for cal in self.calendars.values()],
            "channels": [asdict(ch) for ch in self.channels.values()],
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore a ``dump`` snapshot."""
        last_ms, last_etag = data.get("clock", [0, 0])
        self.clock.restore(int(last_ms), int(last_etag))
        self.calendars = {}
        for raw in data.get("calendars", []):
            events = {k: StoredEvent(**v) for k, v in raw.pop("events").items()}
            cal = Calendar(**raw, events=events)
            self.calendars[cal.id] = cal
        self.channels = {raw["id"]: Channel(**raw) for raw in data.get("channels", [])}
