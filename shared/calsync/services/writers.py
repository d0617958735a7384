"""The writer pool: which writer a calendar belongs to, each writer's usage budget and its lockout.

Google puts an acting account in read-only mode for hours when it creates too many calendars or
events, shares calendars with too many people or invites too many external guests in a short period
("Avoid Calendar use limits", https://support.google.com/a/answer/2905486), and counts its requests
against a per-user quota (https://developers.google.com/workspace/calendar/api/guides/quota). So:

- **ownership**: a calendar is written, for life, by the writer that created it
  (``CalendarRecord.writer``; None is the pool's first writer, which owned everything before the pool);
  a new calendar goes to the writer whose usage timeline is free first, then the one with fewest calendars.
- **budget**: every provisioning step and publish chunk reserves its cost on its writer's timeline
  (``WriterStore.reserve_writer``), the largest of its kinds at the configured fraction of Google's
  thresholds per window: calendars created, shares, events created, external invitations and
  requests. Reservations follow each other, so all the work of one writer, from any function
  instance, together stays under every threshold.
- **lockout**: a 403 ``quotaExceeded`` is not a rate limit. The writer is recorded as locked for
  ``lockout_s`` (Google says "several hours"); its tasks are put back at the lock's end without
  writing; when it has run out, one task probes (``WriterStore.admit_writer``) while the others wait
  ``probe_s``, so a locked writer sees one request per lockout period. Reads go on: syncs never ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from calsync import errors
from calsync.logs import get_logger
from calsync.model import CalendarRecord, PlanChunkProgress
from calsync.ports import BatchResult, WriterStore

log = get_logger(__name__)

WRITER_DETAIL = "writer"  # where ``WriterPoolCalendarApi`` names the locked writer on a QuotaExhausted


# Google's default per-user quota of Calendar requests (one writer is one user), and the share of it
# paced writes use: the rest is left for syncs and admin calls.
USER_REQUESTS_PER_MIN = 600
PACED_REQUEST_SHARE = 0.8
PACED_RATE_PER_S = USER_REQUESTS_PER_MIN * PACED_REQUEST_SHARE / 60.0


@dataclass(frozen=True)
class WriterConfig:
    """The pool and its budgets (built by the composition root from ``Settings``)."""

    writers: tuple[str, ...] = ("",)
    lockout_s: float = 4 * 3600.0
    probe_s: float = 120.0
    window_s: float = 3600.0
    fraction: float = 0.5
    # Google's thresholds per window (None: not budgeted; the composition root sets them from Settings).
    calendars: int | None = None
    shares: int | None = None
    events: int | None = None
    external_invites: int | None = None


@dataclass(frozen=True)
class Usage:
    """What one step will make Google count against its writer."""

    calendars: int = 0
    shares: int = 0
    events: int = 0
    external_invites: int = 0
    requests: int = 0


def writer_of(record: CalendarRecord | None, config: WriterConfig) -> str:
    """The writer of a calendar (recorded, else the pool's first)."""
    if record is not None and record.writer is not None:
        return record.writer
    return config.writers[0]


def writer_index(writer: str, config: WriterConfig) -> int:
    """The writer's position in the pool (logs name writers by it: their addresses are scrubbed)."""
    return config.writers.index(writer) if writer in config.writers else -1


def cost_s(usage: Usage, config: WriterConfig) -> float:
    """Seconds of the writer's timeline ``usage`` takes: the largest share of any budget."""
    shares = [usage.requests / PACED_RATE_PER_S]
    for amount, limit in (
        (usage.calendars, config.calendars),
        (usage.shares, config.shares),
        (usage.events, config.events),
        (usage.external_invites, config.external_invites),
    ):
        if amount and limit is not None:
            shares.append(amount * config.window_s / max(limit * config.fraction, 1e-9))
    return max(shares)


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def external_guests(attendees: list[str] | tuple[str, ...], writer: str) -> int:
    """Guests of another domain than the writer's (Google limits invitations to them, not to colleagues)."""
    home = _domain(writer)
    return sum(1 for email in attendees if _domain(email) != home)


def chunk_usage(chunk: PlanChunkProgress, writer: str) -> Usage:
    """What a publish chunk makes Google count: its calls, its new events, the external guests it invites.

    Guests are counted on every create and update that carries them (an update may add a guest; the
    over-count of guests already invited errs on the safe side).
    """
    creates = sum(1 for a in chunk.actions if a.get("action") == "create")
    invites = sum(
        external_guests(list((a.get("desired") or {}).get("attendees") or []), writer)
        for a in chunk.actions
        if a.get("action") in ("create", "update")
    )
    return Usage(events=creates, external_invites=invites, requests=chunk.total)


def choose_writer(store: WriterStore, config: WriterConfig, now: datetime) -> str:
    """The writer for a new calendar: free first on its timeline, then fewest calendars, then pool order."""
    records = {r.writer: r for r in store.list_writers()}

    def rank(item: tuple[int, str]) -> tuple[datetime, int, int]:
        index, writer = item
        record = records.get(writer)
        free = max(now, record.next_free_at) if record is not None and record.next_free_at is not None else now
        locked = record.locked_until if record is not None and record.locked_until is not None else now
        return max(free, locked), record.calendars if record is not None else 0, index

    return min(enumerate(config.writers), key=rank)[1]


def reserve(store: WriterStore, writer: str, usage: Usage, config: WriterConfig, now: datetime) -> datetime:
    """Reserve ``usage`` on the writer's timeline; when the work may start."""
    return store.reserve_writer(writer, cost_s(usage, config), now, calendars=usage.calendars)


def locked_writer(error: errors.CalsyncError | None, default: str) -> str | None:
    """The writer a usage-limit error locked (``default`` when the error names none), else None."""
    if not isinstance(error, errors.QuotaExhausted):
        return None
    named = error.details.get(WRITER_DETAIL)
    return named if isinstance(named, str) else default


def lockout_in(results: list[BatchResult], default: str) -> str | None:
    """The writer a batch found locked, if any call answered 403 quotaExceeded."""
    for result in results:
        writer = locked_writer(result.error, default)
        if writer is not None:
            return writer
    return None


def record_lockout(
    store: WriterStore, writer: str, config: WriterConfig, now: datetime, *, reason: str = "quotaExceeded"
) -> datetime:
    """Record Google's read-only mode of ``writer``; until when its writes wait."""
    record = store.lock_writer(writer, now + timedelta(seconds=config.lockout_s), now, reason=reason)
    assert record.locked_until is not None
    log.warning(
        "writer.locked",
        writer_index=writer_index(writer, config),
        locked_until=record.locked_until.isoformat(),
        count=record.locks,
    )
    return record.locked_until
