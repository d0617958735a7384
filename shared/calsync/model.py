"""calsync's data model: our own records, and Google's wire shapes re-exported from ``calsync.wire``.

Records (``CalendarRecord``, ``MirrorEvent``, ``Conflict``, ``ChannelRecord``) are what
the state store holds; they use snake_case and UTC datetimes.

Event resource: https://developers.google.com/workspace/calendar/api/v3/reference/events
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

# Google's wire shapes live in ``calsync.wire``; re-exported here (``X as X`` marks a re-export).
from calsync.wire import Attendee as Attendee  # noqa: PLC0414
from calsync.wire import EventsPage as EventsPage  # noqa: PLC0414
from calsync.wire import EventTime as EventTime  # noqa: PLC0414
from calsync.wire import ExtendedProperties as ExtendedProperties  # noqa: PLC0414
from calsync.wire import GoogleEvent as GoogleEvent  # noqa: PLC0414
from calsync.wire import WatchChannel as WatchChannel  # noqa: PLC0414
from calsync.wire import WireModel as WireModel  # noqa: PLC0414
from calsync.wire import utc as utc  # noqa: PLC0414

Environment = Literal["dev", "stg", "prod"]
CalendarKind = Literal["professional", "room", "control"]
CalendarStatus = Literal["ok", "needs_reauth", "webhook_expired", "error"]
EventOrigin = Literal["system", "manual", "google"]
SourceOfTruth = Literal["backend", "google"]
ConflictKind = Literal[
    "moved_in_google",
    "deleted_in_google",
    "attendees_changed",
    "title_changed",
    "overlap_manual",
    "busy_elsewhere",
    "series_from_ours",
]
ConflictStatus = Literal["open", "resolved"]
ChannelStatus = Literal["active", "replaced", "stopped", "expired"]
SyncReason = Literal["webhook", "poll", "publish", "admin", "channel_created", "continuation"]

# Tags written to extendedProperties.private of every event calsync owns. The schema version lets a
# later change of the identity key be recognised instead of duplicating everything on upgrade.
# Schema 2 adds the clinic: the control calendar is shared by every clinic of an environment, so a
# clinic's publish must tell its events from another clinic's. A schema-1 event (no clinic tag) keeps
# its deterministic id and is retagged in place by the next publish of its allocation's clinic.
TAG_SOURCE = "source"
TAG_SOURCE_VALUE = "agendador"
TAG_ENV = "env"
TAG_ALLOCATION = "allocation_id"
TAG_CLINIC = "clinic_id"
TAG_SCHEMA = "calsync_schema"
TAG_SCHEMA_VERSION = "2"


def has_started(start: datetime | None, now: datetime) -> bool:
    """calsync's one rule for "past": an event or allocation that has started at ``now`` is past.

    A start at or before ``now`` (or an unknown start) is past, so an appointment under way counts as
    past too: calsync never moves, edits or deletes it. Every decision about the past goes through here,
    with ``now`` from the ``Clock`` port of the caller.
    """
    return start is None or start <= now


# --- Records held by the state store -------------------------------------------------------------


# Retention of stored records (docs/deploy.md, "Retention"): each record below carries ``expire_at``;
# Firestore's TTL policy deletes a document once it has passed (usually within a day), and the daily
# cleanup job deletes the same documents, so the schedule also holds where TTL does not run.
PLAN_RETENTION = timedelta(days=30)  # a plan and its progress, after it was made
ALLOCATION_RETENTION = timedelta(days=90)  # an allocation (and its attendees), after it ended
CHANNEL_RETENTION = timedelta(days=7)  # a push channel, after it expired
FREE_BUSY_RETENTION = timedelta(days=30)  # a professional's free/busy state, after it was checked


class Record(BaseModel):
    """Base of stored records: strict field names, validated on assignment."""

    model_config = ConfigDict(validate_assignment=True, extra="ignore")


class Expiring(Record):
    """A record Firestore's TTL policy deletes at ``expire_at``: ``RETENTION`` after its ``EXPIRES_AFTER`` field."""

    RETENTION: ClassVar[timedelta]
    EXPIRES_AFTER: ClassVar[str]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expire_at(self) -> datetime | None:
        """``RETENTION`` after the instant in ``EXPIRES_AFTER`` (None while that field is unset)."""
        start: datetime | None = getattr(self, self.EXPIRES_AFTER)
        return None if start is None else start + self.RETENTION


class CalendarRecord(Record):
    """A Google calendar calsync manages, keyed by calsync's own calendar key."""

    key: str
    google_calendar_id: str
    kind: CalendarKind
    clinic_id: str | None = None
    owner_id: str | None = None
    status: CalendarStatus = "ok"
    error_message: str | None = None
    sync_token: str | None = None
    sync_query_version: str | None = None
    last_synced_at: datetime | None = None
    last_full_sync_at: datetime | None = None
    last_attempt_at: datetime | None = None
    backoff_until: datetime | None = None
    counters: dict[str, int] = Field(default_factory=dict)
    created_at: datetime | None = None
    # The acting account that created the calendar and writes it for life (None: the pool's first).
    writer: str | None = None


class WriterRecord(Record):
    """One acting account of the writer pool: its usage timeline, calendars and read-only lockout."""

    writer: str
    # End of the usage timeline every provisioning and publish of this writer reserves on.
    next_free_at: datetime | None = None
    calendars: int = 0
    # Google put the account in read-only mode (403 quotaExceeded) until this instant.
    locked_until: datetime | None = None
    lock_reason: str | None = None
    locks: int = 0
    # Writes sent after a lockout ran out, to learn whether Google lifted it.
    probes: int = 0
    updated_at: datetime | None = None


class ProvisionMark(Record):
    """A calendar's creation task scheduled for ``at`` as ``writer`` (a second provisioning leaves it be)."""

    calendar_key: str
    writer: str
    at: datetime


class PublishedSnapshot(Record):
    """What calsync last wrote (or confirmed) for a system event: the base of conflict detection."""

    etag: str | None = None
    status: str = "confirmed"
    start: datetime | None = None
    end: datetime | None = None
    attendees: list[str] = Field(default_factory=list)
    # None in snapshots written before titles were compared: such a title is never judged a person's edit.
    summary: str | None = None
    published_at: datetime | None = None


class MirrorEvent(Record):
    """calsync's copy of one Google event on one calendar."""

    calendar_key: str
    external_id: str
    google_calendar_id: str
    etag: str | None = None
    updated: datetime | None = None
    status: str = "confirmed"
    start: datetime | None = None
    end: datetime | None = None
    all_day: bool = False
    # Kept for calsync's own events only; a person's event keeps busy time (times, status,
    # transparency, type, series), never its title or guests.
    summary: str | None = None
    attendees: list[str] = Field(default_factory=list)
    transparency: str | None = None
    event_type: str | None = None
    recurring_event_id: str | None = None
    origin: EventOrigin = "manual"
    source_of_truth: SourceOfTruth = "google"
    allocation_id: str | None = None
    env: str | None = None
    # The clinic tag of a system event; None for a schema-1 event (written before the tag existed).
    clinic_id: str | None = None
    last_synced_at: datetime | None = None
    published: PublishedSnapshot | None = None


class Conflict(Record):
    """A divergence between Google and the backend; deterministic ``id``, one per divergence."""

    id: str
    kind: ConflictKind
    calendar_key: str
    event_id: str
    allocation_id: str | None = None
    suggestion: str
    status: ConflictStatus = "open"
    detected_at: datetime
    resolved_at: datetime | None = None
    google_start: datetime | None = None
    google_end: datetime | None = None


class SyncCursor(Record):
    """Where an unfinished sync pass stopped (per-run budget): resumed by the next run on the calendar.

    ``seen_ids`` are the event ids a full listing has returned so far (the tombstone diff needs them
    once the last page arrives). ``base_sync_token`` is the token an incremental pass started from.
    ``follow_up`` asks the run that finishes the pass for one more incremental pass (a trigger arrived).
    A cursor either names the next page (``page_token``) or, once the listing is complete and only the
    tombstone diff is left, the listing's ``next_sync_token`` to save when the diff is done.
    """

    calendar_key: str
    cursor_id: str
    mode: Literal["full", "incremental"]
    page_token: str | None = None
    next_sync_token: str | None = None
    query_version: str
    base_sync_token: str | None = None
    time_min: datetime | None = None
    time_max: datetime | None = None
    tombstone_diff: bool = False
    seen_ids: list[str] = Field(default_factory=list)
    pages: int = 0
    started_at: datetime
    follow_up: bool = False
    saves: int = 0  # how many times this pass saved its position (names each continuation task)


class ChannelRecord(Record):
    """A push notification channel (events.watch) on one calendar."""

    channel_id: str
    calendar_key: str
    resource_id: str
    resource_uri: str | None = None
    expiration: datetime | None = None
    token_hash: str
    created_at: datetime
    status: ChannelStatus = "active"
    replaced_by: str | None = None
    last_webhook_at: datetime | None = None
    last_message_number: int = 0
    # push path: the debounce bucket whose sync task this channel last enqueued (burst → one task).
    last_enqueued_bucket: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expire_at(self) -> datetime:
        """When the channel's record may go: ``CHANNEL_RETENTION`` after its expiry (or creation)."""
        return (self.expiration or self.created_at) + CHANNEL_RETENTION


class UnknownChannel(Record):
    """A channel id that pushed to us but is not ours (an admin can stop it with its resource id)."""

    channel_id: str
    resource_id: str | None = None
    first_seen_at: datetime
    last_seen_at: datetime
    count: int = 1
    # Firestore's TTL policy on this field deletes the record (a diagnostic, never kept for long).
    expire_at: datetime | None = None


# --- publish: directory, allocations, plans --------------------------------------------------------

AllocationStatus = Literal["draft", "reviewed", "adjusted", "cancelled"]
PlanStatus = Literal["planned", "running", "done", "failed"]
PlanActionKind = Literal["create", "update", "delete", "skip"]


class Professional(Record):
    """A professional of a clinic (their calendar is shared with ``email``)."""

    clinic_id: str
    id: str
    name: str
    email: str


class FreeBusyState(Expiring):
    """Whether calsync can read a professional's free/busy (their own primary calendar), and when it last did."""

    RETENTION = FREE_BUSY_RETENTION
    EXPIRES_AFTER = "checked_at"  # a check refreshes it

    clinic_id: str
    professional_id: str
    readable: bool
    reason: str | None = None
    checked_at: datetime


class Room(Record):
    """A room of a clinic."""

    clinic_id: str
    id: str
    name: str


class Allocation(Expiring):
    """A scheduled slot from agendador: one professional in one room, published to three calendars."""

    RETENTION = ALLOCATION_RETENTION
    EXPIRES_AFTER = "end"

    id: str
    clinic_id: str
    professional_id: str
    room_id: str
    start: datetime
    end: datetime
    status: AllocationStatus
    title: str = ""
    attendees: list[str] = Field(default_factory=list)
    revision: int = 0
    # Set by ``accept_google`` on a conflict: agendador should adjust the allocation as suggested.
    needs_adjustment: bool = False
    adjustment_note: str | None = None
    updated_at: datetime | None = None


class PlanCalendarCounts(Record):
    """Per target calendar counts of a stored plan."""

    calendar_id: str
    create: int = 0
    update: int = 0
    delete: int = 0
    skip: int = 0


class Plan(Expiring):
    """A stored publish plan: what to write, a fingerprint of its actions, and hashed confirmations."""

    RETENTION = PLAN_RETENTION
    EXPIRES_AFTER = "created_at"

    id: str
    clinic_id: str
    time_min: datetime
    time_max: datetime
    clear_future: bool = False
    created_at: datetime
    expires_at: datetime
    status: PlanStatus = "planned"
    confirm_hash: str
    confirm_clear_hash: str | None = None
    fingerprint: str
    totals: dict[str, int] = Field(default_factory=dict)
    quota_requests: int = 0
    calendars: list[PlanCalendarCounts] = Field(default_factory=list)
    total_writes: int = 0
    chunks: int = 0
    started_at: datetime | None = None
    # Bumped by each re-apply of a running plan: its tasks get new names (Cloud Tasks keeps a used
    # name reserved for a while, so re-enqueueing the old names could silently do nothing).
    apply_attempt: int = 0
    errors: list[str] = Field(default_factory=list)


class PlanChunkProgress(Expiring):
    """The outcome of one apply task (one chunk of one calendar); rewritten whole by a retried task."""

    RETENTION = PLAN_RETENTION
    EXPIRES_AFTER = "updated_at"

    plan_id: str
    calendar_key: str
    chunk: int
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    finished: bool = False
    errors: list[dict[str, str]] = Field(default_factory=list)
    updated_at: datetime | None = None
    # The chunk's planned actions (JSON), written when apply starts: a task carries only its address.
    # They hold titles and attendees, so they are dropped once the chunk has finished.
    actions: list[dict[str, Any]] = Field(default_factory=list)
    # Runs that reached Google's batch: a rerun after a crash may meet its own earlier writes.
    attempts: int = 0
    # Actions skipped when the chunk ran, by reason code (write-time guards and people's edits).
    skip_reasons: dict[str, int] = Field(default_factory=dict)
    # Put back until its writer's lockout ends (Google's read-only mode after a usage limit).
    waiting_writer: str | None = None
    waiting_until: datetime | None = None


def merge_published(current: MirrorEvent | None, written: MirrorEvent) -> MirrorEvent:
    """The mirror document after calsync records what it just wrote over ``current``.

    Our write's snapshot always wins (it is the newest thing we published), but Google content a sync
    stored meanwhile that is newer than our write (a person's edit right after it) is kept: recording
    our write must never roll the mirror back behind Google.
    """
    if (
        current is not None
        and current.updated is not None
        and written.updated is not None
        and current.updated > written.updated
    ):
        return current.model_copy(update={"published": written.published})
    return written
