"""Typed results of the use cases: what the services return and the admin API answers.

One model per answer; ``calsync.http`` declares them as the operations' responses, so the OpenAPI
document describes exactly what the services build. Times are ``datetime`` in code and ISO 8601
(``datetime.isoformat()``, e.g. ``+00:00``) on the wire. Answers are dumped with ``exclude_unset``, so
an optional key a use case leaves out (the second confirmation token, an item's times) stays absent.
``audit()`` names the counts a result puts on the audit line: fields only, never content.

Every use case behind the admin API builds these directly; the HTTP layer only declares and dumps them.
The scheduled jobs of the renew function (renew, poll, cleanup, a renewal task) answer ``calsync.job_results``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from calsync.model import ConflictKind, PlanChunkProgress

IsoTime = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
AuditFields = dict[str, int | str]
CalendarKind = Literal["professional", "room", "control"]
HealthStatus = Literal["ok", "degraded", "failing"]
PlanStatus = Literal["planned", "running", "done", "failed"]


class Result(BaseModel):
    """Base of the results: every key is declared (an unknown key is a bug, not data)."""

    model_config = ConfigDict(extra="forbid")

    def audit(self) -> AuditFields:
        """Counts for the audit line (none by default)."""
        return {}


class CalendarState(Result):
    """``POST /calendars``, ``GET /calendars/{key}``: a calendar's sync state."""

    key: str
    google_calendar_id: str
    kind: CalendarKind
    clinic_id: str | None
    owner_id: str | None
    status: Literal["ok", "needs_reauth", "webhook_expired", "error"]
    last_synced_at: IsoTime | None
    last_full_sync_at: IsoTime | None
    error_message: str | None
    counters: dict[str, int]
    has_sync_token: bool
    channel_expires_at: IsoTime | None
    writer: str | None = None


class Watched(Result):
    """``POST /calendars/{key}/watch``: the channel opened."""

    calendar_id: str
    channel_id: str
    channel_expires_at: IsoTime | None


class EventItem(Result):
    """One mirrored event."""

    id: str
    calendar_id: str
    status: str
    start: IsoTime | None
    end: IsoTime | None
    all_day: bool
    summary: str | None
    attendees: list[str]
    origin: Literal["system", "manual", "google"]
    source_of_truth: Literal["backend", "google"]
    allocation_id: str | None
    etag: str | None
    updated: IsoTime | None
    last_synced_at: IsoTime | None


class EventsPage(Result):
    """``GET /events``."""

    items: list[EventItem]
    next_page_token: str | None


class ConflictItem(Result):
    """One conflict (also the answer of ``POST /conflicts/{conflict_id}/resolve``)."""

    id: str
    kind: ConflictKind
    calendar_id: str
    event_id: str
    allocation_id: str | None
    suggestion: str | None
    status: Literal["open", "resolved"]
    detected_at: IsoTime | None
    resolved_at: IsoTime | None


class ConflictsPage(Result):
    """``GET /conflicts``."""

    items: list[ConflictItem]
    next_page_token: str | None


class SyncEnqueued(Result):
    """``POST /sync`` (202): the admin sync task (requests within 10 s share its name)."""

    calendar_id: str
    enqueued: bool
    task_name: str


class EventResynced(Result):
    """``POST /sync`` with ``event_id`` (200): one event read from Google and reprocessed."""

    calendar_id: str
    event_id: str
    written: int
    unchanged: int
    ignored: int
    conflicts_opened: int
    conflicts_resolved: int

    def audit(self) -> AuditFields:
        """Mirror writes."""
        return {"written": self.written}


class EventAnswer(Result):
    """``POST /events`` (201), ``PATCH /events/{event_id}``: the event as Google answered it."""

    id: str
    calendar_id: str
    etag: str | None
    status: str
    meet_link: str | None
    conference_status: str | None


class EventCancelled(Result):
    """``DELETE /events/{event_id}``."""

    id: str
    calendar_id: str
    status: Literal["cancelled"]


class HealthCalendar(Result):
    """One calendar of ``GET /health``."""

    key: str
    google_calendar_id: str
    kind: CalendarKind
    status: HealthStatus
    sync_status: str
    last_synced_at: IsoTime | None
    last_sync_age_s: int | None
    channel_expires_at: IsoTime | None
    open_conflicts: int
    clinic_id: str | None = None
    # For a calendar that needs re-authorisation of its clinic's connected account: how to reconnect.
    reconnect: str | None = None
    writer: str | None = None


class HealthFreeBusy(Result):
    """Whether calsync can read a professional's own calendar (free/busy), as last checked."""

    clinic_id: str
    professional_id: str
    readable: bool
    reason: str | None
    checked_at: IsoTime


class HealthAnswer(Result):
    """``GET /health``: every calendar, the worst status and the instant it was judged at.

    ``free_busy`` lists, per professional, whether their own calendar's free/busy is readable (a
    ``busy_elsewhere`` check cannot see an unshared one; it is not a failure of calsync's calendars).
    """

    status: HealthStatus
    checked_at: IsoTime
    calendars: list[HealthCalendar]
    free_busy: list[HealthFreeBusy] = []
    # Writers in Google's read-only mode (usage limits), and until when calsync leaves them alone.
    locked_writers: dict[str, IsoTime] = {}


class AvailabilityChecked(Result):
    """``POST /clinics/{id}/availability`` and the scheduled check: free/busy read, conflicts settled."""

    clinic_id: str
    checked_at: IsoTime
    professionals: int
    readable: int
    not_readable: list[str]
    collisions: int
    conflicts_opened: int
    conflicts_resolved: int

    def audit(self) -> AuditFields:
        """Counts only."""
        return {"count": self.professionals, "conflicts_opened": self.conflicts_opened}


class DirectoryReplaced(Result):
    """``PUT /clinics/{clinic_id}/professionals|rooms``."""

    count: int

    def audit(self) -> AuditFields:
        """Items written."""
        return {"count": self.count}


class Provisioned(Result):
    """``POST``/``GET /provision``: of the clinic's ``total`` calendars, how many exist, are shared and
    watched (``done`` when all are), the tasks this call ``scheduled``, writers locked (``waiting``)."""

    clinic_id: str
    created: int
    shared: int
    watched: int
    calendars: list[str]
    total: int = 0
    scheduled: int = 0
    done: bool = False
    waiting: dict[str, IsoTime] = {}

    def audit(self) -> AuditFields:
        """Calendars created."""
        return {"created": self.created}


class AllocationsUpserted(Result):
    """``PUT /allocations``."""

    upserted: int
    unchanged: int
    stale: int

    def audit(self) -> AuditFields:
        """Allocations written."""
        return {"count": self.upserted}


class Totals(Result):
    """Counts of a plan."""

    create: int
    update: int
    delete: int
    skip: int


class Quota(Result):
    """A plan's quota estimate: requests and minutes at the paced rate."""

    requests: int
    minutes: float


class PlanItem(Result):
    """One planned write or skip, with its reason code (times only when there is a desired event)."""

    action: Literal["create", "update", "delete", "skip"]
    reason: str
    event_id: str
    allocation_id: str | None
    start: IsoTime | None = None
    end: IsoTime | None = None


class PlanCalendar(Result):
    """One calendar's section of a plan."""

    calendar_id: str
    create: int
    update: int
    delete: int
    skip: int
    items: list[PlanItem]
    # Present when the section deletes: whose events the deletes touch, by clinic id (the control
    # calendar is shared by every clinic; a plan deletes only its own clinic's events).
    deletes_by_clinic: dict[str, int] | None = None


class PlanWarning(Result):
    """An allocation the plan places over busy time: where, which kind, the busy interval (never content)."""

    allocation_id: str
    calendar_id: str
    # overlap_manual: a person's busy event on the calsync calendar; busy_elsewhere: the professional's own.
    kind: ConflictKind
    start: IsoTime
    end: IsoTime


class PlanAnswer(Result):
    """``POST /publish/plan`` (201): the dry run and its confirmation tokens."""

    plan_id: str
    planned_at: IsoTime
    confirm_token: str
    confirm_clear_future_token: str | None = None
    expires_at: IsoTime
    clear_future: bool
    totals: Totals
    quota: Quota
    calendars: list[PlanCalendar]
    # Allocations over busy time, seen before confirming; they never block the plan.
    warnings: list[PlanWarning] = []

    def audit(self) -> AuditFields:
        """The plan and its size."""
        t = self.totals
        return {"plan_id": self.plan_id, "total": t.create + t.update + t.delete + t.skip}


class ProgressError(Result):
    """One failed write of a plan (or a plan-wide refusal, with empty ids)."""

    calendar_id: str
    event_id: str
    code: str


class ProgressCalendar(Result):
    """One calendar's progress."""

    calendar_id: str
    done: int
    total: int
    written: int
    skipped: int
    failed: int
    # Why actions were skipped when their chunk ran (reason code → count); absent before any skip.
    skip_reasons: dict[str, int] | None = None


class ProgressAnswer(Result):
    """``GET /publish/{plan_id}`` (and ``POST /publish/apply``, 202)."""

    plan_id: str
    status: PlanStatus
    done: int
    total: int
    errors: list[ProgressError]
    calendars: list[ProgressCalendar]
    # Writers the unfinished chunks wait for (Google's read-only mode), and until when.
    waiting: dict[str, IsoTime] = {}

    def audit(self) -> AuditFields:
        """The plan and its progress."""
        return {"plan_id": self.plan_id, "done": self.done, "total": self.total}


class ChunkDone(Result):
    """``POST /publish/tasks/apply``: one chunk's outcome (``again`` when it had already finished)."""

    plan_id: str
    calendar_id: str
    chunk: int
    done: int
    skipped: int
    failed: int
    again: bool | None = None
    # Put back, unrun, until its writer's lockout ends.
    waiting_until: IsoTime | None = None

    @classmethod
    def of(
        cls, progress: PlanChunkProgress, *, again: bool | None = None, waiting_until: datetime | None = None
    ) -> ChunkDone:
        """The answer of a chunk task from the chunk's stored progress."""
        counts = progress.model_dump(include={"plan_id", "chunk", "done", "skipped", "failed"})
        return cls(**counts, calendar_id=progress.calendar_key, again=again, waiting_until=waiting_until)

    def audit(self) -> AuditFields:
        """The chunk's writes."""
        return {"plan_id": self.plan_id, "done": self.done, "skipped": self.skipped}


class OpenApiDocument(BaseModel):
    """``GET /openapi.json``: this document."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
