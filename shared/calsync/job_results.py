"""Typed answers of the scheduled jobs of the renew function (renew, poll, cleanup, a renewal task).

Every count goes on the job's summary line; ``calsync.results`` re-exports them beside the admin API's.
"""

from __future__ import annotations

from typing import Literal

from calsync.results import AuditFields, Result


class JobResult(Result):
    """Base of the scheduled jobs' answers (the renew function): every count goes on the summary line."""

    def audit(self) -> AuditFields:
        """The job's counts."""
        return {name: value for name, value in self.model_dump().items() if type(value) is int}


class RenewRun(JobResult):
    """``{"job": "renew"}``: calendars whose watch is due, and the outcome of each (inline) or its task."""

    job: Literal["renew"] = "renew"
    due: int
    fanned_out: bool
    expiring_soon: int = 0
    enqueued: int = 0
    already_queued: int = 0
    fresh: int = 0
    renewed: int = 0
    opened: int = 0
    failed: int = 0
    skipped: int = 0
    unknown_calendar: int = 0


class RenewCalendarDone(JobResult):
    """``{"job": "renew_calendar"}``: one fan-out task's outcome."""

    job: Literal["renew_calendar"] = "renew_calendar"
    calendar_id: str
    outcome: Literal["fresh", "renewed", "opened", "failed", "skipped"]


class PollRun(JobResult):
    """``{"job": "poll"}``: poll syncs enqueued for the due calendars, page by page."""

    job: Literal["poll"] = "poll"
    due: int
    enqueued: int
    already_queued: int
    skipped: int
    pages: int


class CleanupRun(JobResult):
    """``{"job": "cleanup"}``: retention deletes, and calendars found without a live push channel."""

    job: Literal["cleanup"] = "cleanup"
    mirror_events_deleted: int
    # People's mirror events that still held a title, description, location or guests (migration).
    people_content_scrubbed: int = 0
    conflicts_deleted: int
    # Records past their ``expire_at``, by kind (plans with their progress, allocations, channels, ...).
    expired_deleted: dict[str, int] = {}
    unwatched: int


class AvailabilityRun(JobResult):
    """``{"job": "availability"}``: the free/busy check of every clinic with calendars."""

    job: Literal["availability"] = "availability"
    clinics: int
    collisions: int
    conflicts_opened: int
    conflicts_resolved: int
    not_readable: int
