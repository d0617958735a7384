"""What calsync's own events look like in Google: deterministic ids, target calendars, tagged bodies.

Shared by the planner, the apply's chunk tasks, ad-hoc events and conflict resolution, so an event is
described one way whoever writes it.

- Event ids are deterministic (``event_id``): base32hex of sha256(environment, allocation, calendar),
  so a retried or repeated write never duplicates an event.
- An allocation goes to three calendars (``professional_key``, ``room_key``, ``CONTROL_KEY``), with
  guests only on the professional's copy.
- Every body carries ``extendedProperties.private`` tags: source, environment, schema, allocation and
  clinic (the control calendar is shared by the clinics of an environment: the tag says whose it is).
- The mirror record of an event we wrote keeps a snapshot of what we published
  (``mirror_of_written``): a sync compares Google's content with it to find a person's edit.
- **Who owns which field** (``OWNED_FIELDS``): calsync owns what it derives from an allocation —
  start, end, title (``summary``), attendees, status and its own private tags. Everything else
  (description, location, reminders, colour, attachments, conference data, other properties) belongs
  to people. An update is a read-modify-write of Google's current version (``merged_body``) that
  replaces only calsync's fields and keeps each remaining attendee's response, under ``If-Match``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calsync.model import (
    TAG_ALLOCATION,
    TAG_CLINIC,
    TAG_ENV,
    TAG_SCHEMA,
    TAG_SCHEMA_VERSION,
    TAG_SOURCE,
    TAG_SOURCE_VALUE,
    Allocation,
    CalendarRecord,
    GoogleEvent,
    MirrorEvent,
    PublishedSnapshot,
)

CONTROL_KEY = "control"
# The event fields calsync derives from an allocation; every other field is a person's.
OWNED_FIELDS = ("start", "end", "summary", "attendees", "status", "extendedProperties.private tags")


def event_id(env: str, allocation_id: str, calendar_key: str) -> str:
    """The deterministic Google event id of an allocation on a calendar (base32hex, a-v0-9, 52 chars)."""
    digest = hashlib.sha256(f"{env}\x1f{allocation_id}\x1f{calendar_key}".encode()).digest()
    return base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()


def professional_key(clinic_id: str, professional_id: str) -> str:
    """The calendar key of a professional's calendar (as ``provision`` registers it)."""
    return f"{clinic_id}-prof-{professional_id}"


def room_key(clinic_id: str, room_id: str) -> str:
    """The calendar key of a room's calendar (as ``provision`` registers it)."""
    return f"{clinic_id}-room-{room_id}"


@dataclass(frozen=True)
class Desired:
    """What one of our events should look like on one calendar (compared with the mirror)."""

    summary: str
    start: datetime
    end: datetime
    attendees: tuple[str, ...]


def invites_patients(clinic_id: str, clinics: Sequence[str]) -> bool:
    """Whether a clinic's patients are invited as attendees (``clinics`` lists them; ``*`` is every clinic)."""
    return "*" in clinics or clinic_id in clinics


def desired_for(allocation: Allocation, calendar: CalendarRecord, *, invite: bool = True) -> Desired:
    """Our event of ``allocation`` on ``calendar``: attendees only on the professional's calendar.

    Guests are invited once, from the professional's copy; the room and control copies carry none, so
    a patient never receives three invitations for one appointment. A clinic that does not invite its
    patients (``invite=False``) publishes no attendees at all: each invitation of a guest outside the
    writers' domain counts against Google's external-guest limit (``services.writers``).
    """
    guests = allocation.attendees if invite else []
    attendees = tuple(sorted({a.lower() for a in guests})) if calendar.kind == "professional" else ()
    return Desired(summary=allocation.title, start=allocation.start, end=allocation.end, attendees=attendees)


def event_body(
    env: str, allocation_id: str | None, event_id_: str, desired: Desired, *, clinic_id: str | None
) -> dict[str, Any]:
    """The events.insert/update body of one of our events, tagged with source, environment, schema and
    (when it has them) its allocation and clinic."""
    tags = {TAG_SOURCE: TAG_SOURCE_VALUE, TAG_ENV: env, TAG_SCHEMA: TAG_SCHEMA_VERSION}
    if allocation_id is not None:
        tags[TAG_ALLOCATION] = allocation_id
    if clinic_id is not None:
        tags[TAG_CLINIC] = clinic_id
    body: dict[str, Any] = {
        "id": event_id_,
        "summary": desired.summary,
        "start": {"dateTime": desired.start.isoformat()},
        "end": {"dateTime": desired.end.isoformat()},
        "status": "confirmed",
        "extendedProperties": {"private": tags},
    }
    if desired.attendees:
        body["attendees"] = [{"email": a} for a in desired.attendees]
    return body


def merged_body(
    current: GoogleEvent,
    env: str,
    allocation_id: str | None,
    event_id_: str,
    desired: Desired,
    *,
    clinic_id: str | None,
) -> dict[str, Any]:
    """The events.update body of a read-modify-write: Google's ``current`` version with calsync's fields set.

    Fields people own are sent back as Google has them; attendees that stay keep their entry as is
    (``responseStatus``, comments, ...), new ones are added bare, removed ones dropped; private
    properties other than our tags are kept.
    """
    body = current.to_api()
    for read_only in ("etag", "updated", "created", "htmlLink", "iCalUID", "kind", "creator", "organizer"):
        body.pop(read_only, None)
    ours = event_body(env, allocation_id, event_id_, desired, clinic_id=clinic_id)
    for key in ("summary", "start", "end", "status"):
        body[key] = ours[key]
    extended = dict(body.get("extendedProperties") or {})
    extended["private"] = {**(extended.get("private") or {}), **ours["extendedProperties"]["private"]}
    body["extendedProperties"] = extended
    kept = {str(a.get("email", "")).lower(): a for a in body.get("attendees") or [] if a.get("email")}
    if desired.attendees:
        body["attendees"] = [kept.get(email, {"email": email}) for email in desired.attendees]
    else:
        body.pop("attendees", None)
    return body


def event_matches(event: GoogleEvent, desired: Desired) -> bool:
    """True when the fields calsync owns in Google's version of one of our events are what we would write."""
    start = event.start.as_utc() if event.start else None
    end = event.end.as_utc() if event.end else None
    attendees = tuple(sorted({(a.email or "").lower() for a in event.attendees or [] if a.email}))
    return (
        not event.cancelled
        and start == desired.start
        and end == desired.end
        and (event.summary or "") == desired.summary
        and attendees == desired.attendees
    )


def published_snapshot(desired: Desired | None, etag: str | None, status: str, now: datetime) -> PublishedSnapshot:
    """What we published of one event (compared with Google's content to find a person's edit)."""
    return PublishedSnapshot(
        etag=etag,
        status=status,
        start=desired.start if desired else None,
        end=desired.end if desired else None,
        attendees=list(desired.attendees) if desired else [],
        summary=desired.summary if desired else None,
        published_at=now,
    )


def mirror_of_written(
    event: GoogleEvent,
    record: CalendarRecord,
    *,
    env: str,
    allocation_id: str | None,
    clinic_id: str | None,
    desired: Desired | None,
    now: datetime,
    confirmed: bool = True,
) -> MirrorEvent:
    """The mirror record of an event calsync just wrote, with the snapshot of what it published.

    ``confirmed`` False (a duplicate whose content differs from ours) stores no etag in the snapshot,
    so the next sync compares Google's version with ours and records any divergence.
    """
    status = event.status or "confirmed"
    return MirrorEvent(
        calendar_key=record.key,
        external_id=event.id,
        google_calendar_id=record.google_calendar_id,
        etag=event.etag,
        updated=event.updated,
        status=status,
        start=event.start.as_utc() if event.start else None,
        end=event.end.as_utc() if event.end else None,
        summary=event.summary,
        attendees=sorted({(a.email or "").lower() for a in event.attendees or [] if a.email}),
        origin="system",
        source_of_truth="backend",
        allocation_id=allocation_id,
        env=env,
        clinic_id=clinic_id,
        last_synced_at=now,
        published=published_snapshot(desired, event.etag if confirmed else None, status, now),
    )
