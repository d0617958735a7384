"""Health of calsync's calendars: ``GET /health`` (the seeds' ``/health/calendar``).

Per calendar: its sync status, the age of the last good sync, the channel's expiry and the open
conflicts. Each calendar is ``ok``, ``degraded`` (stale sync, missing/expired channel, open conflicts,
webhook expired) or ``failing`` (needs re-authorisation, error, never synced for too long); the
overall status is the worst of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from calsync.copying import copy_into
from calsync.model import CalendarRecord
from calsync.ports import Clock, DirectoryStore, PushStore, WriterStore
from calsync.ports.queries import ConflictQuery, pages
from calsync.results import HealthAnswer, HealthCalendar, HealthFreeBusy

Health = Literal["ok", "degraded", "failing"]
RANK: dict[Health, int] = {"ok": 0, "degraded": 1, "failing": 2}
COUNT_PAGE = 500


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds (seconds)."""

    stale_s: int = 3600
    failing_s: int = 6 * 3600


def _open_conflicts(store: PushStore, calendar_key: str) -> int:
    query = ConflictQuery(calendar_key, status="open", page_size=COUNT_PAGE)
    return sum(len(page) for page in pages(store.list_conflicts, query))


def calendar_health(
    record: CalendarRecord,
    *,
    channel_expires_at: datetime | None,
    open_conflicts: int,
    now: datetime,
    config: HealthConfig,
) -> Health:
    """The health of one calendar (pure)."""
    if record.status in ("needs_reauth", "error"):
        return "failing"
    age = (now - record.last_synced_at).total_seconds() if record.last_synced_at else None
    if age is not None and age > config.failing_s:
        return "failing"
    if (
        record.status == "webhook_expired"
        or age is None
        or age > config.stale_s
        or channel_expires_at is None
        or channel_expires_at <= now
        or open_conflicts
    ):
        return "degraded"
    return "ok"


def reconnect_link(record: CalendarRecord) -> str | None:
    """The admin call that starts a new consent for the calendar's clinic, when it needs one."""
    if record.status != "needs_reauth" or not record.clinic_id:
        return None
    return f"POST /clinics/{record.clinic_id}/connection"


def health(
    *,
    store: PushStore,
    clock: Clock,
    config: HealthConfig,
    directory: DirectoryStore | None = None,
    writers: WriterStore | None = None,
) -> HealthAnswer:
    """Every calendar's health, the overall status and the instant it was judged at (``checked_at``).

    With ``directory``, also each professional's free/busy readability, as the last check found it;
    with ``writers``, the writers in Google's read-only mode (the health is at least ``degraded``).
    """
    now = clock.now()
    rows: list[HealthCalendar] = []
    worst: Health = "ok"
    records = store.list_calendars()
    for record in records:
        channel = store.active_channel(record.key)
        expires = channel.expiration if channel is not None else None
        conflicts = _open_conflicts(store, record.key)
        status = calendar_health(record, channel_expires_at=expires, open_conflicts=conflicts, now=now, config=config)
        worst = status if RANK[status] > RANK[worst] else worst
        rows.append(
            copy_into(
                HealthCalendar,
                record,
                status=status,
                sync_status=record.status,
                last_sync_age_s=int((now - record.last_synced_at).total_seconds()) if record.last_synced_at else None,
                channel_expires_at=expires,
                open_conflicts=conflicts,
                clinic_id=record.clinic_id,
                reconnect=reconnect_link(record),
                writer=record.writer,
            )
        )
    states = directory.list_free_busy_states() if directory is not None else []
    free_busy = [HealthFreeBusy(**state.model_dump(exclude={"expire_at"})) for state in states]
    locked = {
        w.writer: w.locked_until
        for w in (writers.list_writers() if writers is not None else [])
        if w.locked_until is not None and w.locked_until > now
    }
    if locked and RANK[worst] < RANK["degraded"]:
        worst = "degraded"
    return HealthAnswer(status=worst, checked_at=now, calendars=rows, free_busy=free_busy, locked_writers=locked)
