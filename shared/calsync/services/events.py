"""Ad-hoc events (create, change, cancel one of our events) and the one-event forced sync.

- ``create_event``: events.insert of a tagged event (source, environment, ``adhoc``) with attendees
  and optionally a Meet link (``conferenceData.createRequest`` + ``conferenceDataVersion=1``); the
  event is stored in the mirror with the snapshot of what we published, and the answer carries the
  Meet link. The id is deterministic from the caller's ``request_id``, so a retried call cannot
  create a second event (409 ``duplicate`` → read back, verified, answered).
  ``sendUpdates=all``: unlike publishing, a person creating an ad-hoc meeting wants the guests told.
  (A service account needs domain-wide delegation to add guests or Meet links — see the deploy guide.)
- ``patch_event`` / ``cancel_event``: only on our events (403 otherwise), with ``If-Match`` — the
  caller's etag, else the mirrored one; a 412 answers 412 (re-read and try again).
- ``resync_event``: read one event from Google and merge it through the ``Reconciler``.
Every mirror write goes through the ``Reconciler`` (``record_written`` for our writes).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from calsync import errors
from calsync.copying import copy_into
from calsync.logs import get_logger
from calsync.model import CalendarRecord, GoogleEvent, MirrorEvent, has_started
from calsync.ports import CalendarApi, Clock, PublishStore, SendUpdates, TaskQueue
from calsync.results import EventAnswer, EventCancelled, EventResynced
from calsync.services.apply_chunk import ours
from calsync.services.our_events import Desired, event_body, event_id, mirror_of_written
from calsync.services.plan import PublishConfig
from calsync.services.reconcile import Reconciler

log = get_logger(__name__)

TAG_ADHOC = "adhoc"


@dataclass(frozen=True)
class NewEvent:
    """``POST /events``."""

    calendar_key: str
    summary: str
    start: datetime
    end: datetime
    attendees: tuple[str, ...] = ()
    meet: bool = False
    request_id: str | None = None


@dataclass(frozen=True)
class EventChange:
    """``PATCH /events/{id}``: the fields to change (None: keep)."""

    calendar_key: str
    event_id: str
    summary: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    attendees: tuple[str, ...] | None = None
    if_match: str | None = None


def _calendar(store: PublishStore, calendar_key: str) -> CalendarRecord:
    record = store.get_calendar(calendar_key)
    if record is None:
        raise errors.UnknownResource("unknown calendar", details={"calendar_id": calendar_key})
    return record


def meet_link(event: GoogleEvent) -> str | None:
    """The Meet link of an event (the ``video`` entry point, else the legacy ``hangoutLink``)."""
    for entry in (event.conference_data or {}).get("entryPoints", []) or []:
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    return event.hangout_link


def _answer(event: GoogleEvent, calendar_key: str) -> EventAnswer:
    status = ((event.conference_data or {}).get("createRequest") or {}).get("status", {}).get("statusCode")
    return EventAnswer(
        id=event.id,
        calendar_id=calendar_key,
        etag=event.etag,
        status=event.status or "confirmed",
        meet_link=meet_link(event),
        conference_status=status,
    )


def create_event(
    cmd: NewEvent, *, api: CalendarApi, store: PublishStore, clock: Clock, config: PublishConfig
) -> EventAnswer:
    """Create a tagged ad-hoc event (optionally with Meet), mirror it and answer its id and link."""
    if cmd.end <= cmd.start:
        raise errors.InvalidRequest("end must be after start")
    record = _calendar(store, cmd.calendar_key)
    request_id = cmd.request_id or uuid.uuid4().hex
    eid = event_id(config.env, f"{TAG_ADHOC}:{request_id}", cmd.calendar_key)
    desired = Desired(cmd.summary, cmd.start, cmd.end, tuple(sorted({a.lower() for a in cmd.attendees})))
    body = event_body(config.env, None, eid, desired, clinic_id=record.clinic_id)
    body["extendedProperties"]["private"][TAG_ADHOC] = "1"
    if cmd.meet:
        # requestId from the caller's id: a retried request is ignored by Google, not a second Meet.
        conference_request = hashlib.sha256(f"{eid}:meet".encode()).hexdigest()[:32]
        body["conferenceData"] = {
            "createRequest": {"requestId": conference_request, "conferenceSolutionKey": {"type": "hangoutsMeet"}}
        }
    try:
        event = api.insert_event(record.google_calendar_id, body, conference=cmd.meet, send_updates="all")
    except errors.Duplicate:
        event = api.get_event(record.google_calendar_id, eid)
        if not ours(event, config.env, None):
            raise errors.PermissionDenied("the event id is taken by an event that is not ours") from None
    _reconciler(store, record, clock, config).record_written([_mirror(event, record, desired, clock.now(), config.env)])
    log.info("events.created", calendar_key=record.key, event_id=event.id, action="create")
    return _answer(event, record.key)


def _reconciler(store: PublishStore, record: CalendarRecord, clock: Clock, config: PublishConfig) -> Reconciler:
    return Reconciler.of(store, record, clock=clock, env=config.env, time_zone=config.time_zone)


def _mirror(event: GoogleEvent, record: CalendarRecord, desired: Desired, now: datetime, env: str) -> MirrorEvent:
    return mirror_of_written(
        event, record, env=env, allocation_id=None, clinic_id=record.clinic_id, desired=desired, now=now
    )


def _our_mirror(store: PublishStore, calendar_key: str, eid: str, env: str) -> MirrorEvent:
    current = store.get_events(calendar_key, [eid]).get(eid)
    if current is None:
        raise errors.UnknownResource("unknown event", details={"event_id": eid})
    if current.origin != "system" or current.env != env:
        raise errors.PermissionDenied("only calsync's own events can be changed here", details={"event_id": eid})
    return current


def _refuse_started(event: GoogleEvent, now: datetime) -> None:
    """Refuse to change an event that has started (the one rule for the past: ``has_started``)."""
    start = event.start.as_utc() if event.start else None
    if has_started(start, now):
        raise errors.EventStarted(
            "the event has started: calsync never moves, edits or deletes it", details={"event_id": event.id}
        )


def _send_updates(current: MirrorEvent) -> SendUpdates:
    """Events of a publish never e-mail their guests; ad-hoc events tell them."""
    return "none" if current.allocation_id else "all"


def patch_event(
    cmd: EventChange, *, api: CalendarApi, store: PublishStore, clock: Clock, config: PublishConfig
) -> EventAnswer:
    """Change one of our events with If-Match (a full update built from Google's current version)."""
    record = _calendar(store, cmd.calendar_key)
    current = _our_mirror(store, record.key, cmd.event_id, config.env)
    event = api.get_event(record.google_calendar_id, cmd.event_id)
    if not ours(event, config.env, None):
        raise errors.PermissionDenied("only calsync's own events can be changed here")
    now = clock.now()
    _refuse_started(event, now)
    etag = cmd.if_match or current.etag
    body = event.to_api()
    for read_only in ("etag", "updated", "created", "htmlLink", "iCalUID", "kind", "creator", "organizer"):
        body.pop(read_only, None)
    start = cmd.start or (event.start.as_utc() if event.start else None)
    end = cmd.end or (event.end.as_utc() if event.end else None)
    if start is None or end is None or end <= start:
        raise errors.InvalidRequest("end must be after start")
    if has_started(start, now):
        raise errors.InvalidRequest("start must be in the future: calsync never moves an event into the past")
    body["start"] = {"dateTime": start.isoformat()}
    body["end"] = {"dateTime": end.isoformat()}
    if cmd.summary is not None:
        body["summary"] = cmd.summary
    if cmd.attendees is not None:
        # Attendees that stay keep their entry (their response); new ones are invited bare.
        kept = {str(a.get("email", "")).lower(): a for a in body.get("attendees") or [] if a.get("email")}
        body["attendees"] = [kept.get(a, {"email": a}) for a in sorted({a.lower() for a in cmd.attendees})]
    body["status"] = "confirmed"
    updated = api.update_event(
        record.google_calendar_id, cmd.event_id, body, if_match=etag, send_updates=_send_updates(current)
    )
    attendees = tuple(sorted({(a.get("email") or "").lower() for a in body.get("attendees", []) if a.get("email")}))
    desired = Desired(str(body.get("summary") or ""), start, end, attendees)
    mirror = _mirror(updated, record, desired, now, config.env)
    reconciler = _reconciler(store, record, clock, config)
    reconciler.record_written([mirror.model_copy(update={"allocation_id": current.allocation_id})])
    log.info("events.patched", calendar_key=record.key, event_id=cmd.event_id, action="patch")
    return _answer(updated, record.key)


def cancel_event(
    calendar_key: str,
    eid: str,
    *,
    if_match: str | None,
    api: CalendarApi,
    store: PublishStore,
    clock: Clock,
    config: PublishConfig,
) -> EventCancelled:
    """Delete (cancel) one of our events with If-Match; already deleted counts as done; never a started one."""
    record = _calendar(store, calendar_key)
    current = _our_mirror(store, record.key, eid, config.env)
    with contextlib.suppress(errors.ResourceGone, errors.NotFound):  # already deleted: done
        event = api.get_event(record.google_calendar_id, eid)
        if not ours(event, config.env, None):
            raise errors.PermissionDenied("only calsync's own events can be changed here")
        _refuse_started(event, clock.now())
        if event.status != "cancelled":
            api.delete_event(
                record.google_calendar_id, eid, if_match=if_match or current.etag, send_updates=_send_updates(current)
            )
    snapshot = current.published.model_copy(update={"status": "cancelled"}) if current.published else None
    cancelled = current.model_copy(update={"status": "cancelled", "published": snapshot})
    _reconciler(store, record, clock, config).record_written([cancelled])
    log.info("events.cancelled", calendar_key=record.key, event_id=eid, action="cancel")
    return EventCancelled(id=eid, calendar_id=record.key, status="cancelled")


def resync_event(
    calendar_key: str,
    eid: str,
    *,
    api: CalendarApi,
    store: PublishStore,
    queue: TaskQueue,
    clock: Clock,
    config: PublishConfig,
) -> EventResynced:
    """Read one event from Google and reprocess it (mirror, conflicts) like a sync page of one."""
    record = _calendar(store, calendar_key)
    event = api.get_event(record.google_calendar_id, eid)
    reconciler = _reconciler(store, record, clock, config)
    reconciler.merge([event])
    return copy_into(EventResynced, reconciler.counts, calendar_id=record.key, event_id=eid)
