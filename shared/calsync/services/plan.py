"""Publish planning: which events to create, update or delete on which calendars, and why.

``plan_actions`` is a pure function (Cal.com's ``getBookingUpdateActions`` shape): allocations, the
mirror of each target calendar and the open conflicts in, actions with stable reason codes out. The
use case ``make_plan`` gathers those inputs from the store, stores the plan with hashed confirmation
tokens and a fingerprint of its actions (apply re-plans and compares: a different fingerprint means
allocations or Google changed, so the plan is stale), and answers the admin's dry run.

Rules:

- Allocations ``reviewed|adjusted`` are published to three calendars (the professional's, the room's,
  the control calendar); ``cancelled`` ones have their future events deleted; ``draft`` are ignored.
- Never a write to a past event (one that has started: ``model.has_started``), to an untagged
  (manual) event, to an event of another environment, or to an event a person edited in Google with
  an open conflict: those are skips with a reason, never overwritten silently (``republish`` on the
  conflict is the only way).
- ``clear_future`` also deletes future system events of the window that are not in the schedule.
- Event ids are deterministic (``event_id``): base32hex of sha256(environment, allocation, calendar).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from calsync import errors
from calsync.logs import get_logger
from calsync.model import (
    Allocation,
    CalendarRecord,
    MirrorEvent,
    Plan,
    PlanActionKind,
    PlanCalendarCounts,
    has_started,
)
from calsync.ports import Clock, PublishStore
from calsync.results import PlanAnswer, PlanCalendar, PlanItem, Quota, Totals
from calsync.services.our_events import (
    CONTROL_KEY,
    Desired,
    desired_for,
    event_id,
    professional_key,
    room_key,
)

log = get_logger(__name__)

PUBLISHED_STATUSES = frozenset({"reviewed", "adjusted"})
PLAN_TTL_S = 3600
MAX_WINDOW_DAYS = 62
MIRROR_PAGE = 500

# Reason codes (stable, safe to log and show).
R_NEW = "new_allocation"
R_CHANGED = "allocation_changed"
R_RESTORE = "restore_cancelled"
R_CANCELLED = "allocation_cancelled"
R_NOT_IN_SCHEDULE = "not_in_schedule"
R_PAST = "past_event"
R_UNTAGGED = "untagged_event"
R_CONFLICT = "open_conflict"
R_FOREIGN = "foreign_env"
R_NO_CALENDAR = "calendar_missing"


@dataclass(frozen=True)
class PlanAction:
    """One planned write (or skip) on one calendar, with its reason code."""

    calendar_key: str
    event_id: str
    action: PlanActionKind
    reason: str
    allocation_id: str | None = None
    if_match: str | None = None
    desired: Desired | None = None

    def item(self) -> PlanItem:
        """The plan answer's item (no event content beyond times)."""
        times = {} if self.desired is None else {"start": self.desired.start, "end": self.desired.end}
        return PlanItem(
            action=self.action, reason=self.reason, event_id=self.event_id, allocation_id=self.allocation_id, **times
        )


@dataclass(frozen=True)
class CalendarView:
    """What the planner knows of one target calendar: its mirror (live and cancelled by id)."""

    record: CalendarRecord
    mirror: Mapping[str, MirrorEvent] = field(default_factory=dict)
    conflicted: frozenset[str] = frozenset()


def _matches(mirror: MirrorEvent, desired: Desired) -> bool:
    return (
        mirror.status != "cancelled"
        and mirror.start == desired.start
        and mirror.end == desired.end
        and (mirror.summary or "") == desired.summary
        and tuple(sorted(a.lower() for a in mirror.attendees)) == desired.attendees
    )


def _guard(mirror: MirrorEvent, env: str, conflicted: frozenset[str], now: datetime) -> str | None:
    """The reason an existing event must not be written, or None."""
    if mirror.origin != "system":
        return R_UNTAGGED
    if mirror.env != env:
        return R_FOREIGN
    if mirror.status != "cancelled" and has_started(mirror.start, now):
        return R_PAST
    if mirror.external_id in conflicted:  # only an open conflict blocks a write (a resolved one returned control)
        return R_CONFLICT
    return None


def targets_of(allocation: Allocation) -> tuple[str, str, str]:
    """The calendar keys an allocation is published to."""
    return (
        professional_key(allocation.clinic_id, allocation.professional_id),
        room_key(allocation.clinic_id, allocation.room_id),
        CONTROL_KEY,
    )


def plan_actions(
    *,
    env: str,
    now: datetime,
    allocations: Sequence[Allocation],
    calendars: Mapping[str, CalendarView],
    time_min: datetime,
    time_max: datetime,
    clear_future: bool,
) -> list[PlanAction]:
    """Every action of a publish, sorted by (calendar, event id): pure, deterministic, no I/O."""
    actions: dict[tuple[str, str], PlanAction] = {}
    wanted: set[tuple[str, str]] = set()

    def put(action: PlanAction) -> None:
        actions[(action.calendar_key, action.event_id)] = action

    for allocation in sorted(allocations, key=lambda a: a.id):
        if allocation.status == "draft":
            continue
        for key in targets_of(allocation):
            eid = event_id(env, allocation.id, key)
            view = calendars.get(key)
            if allocation.status in PUBLISHED_STATUSES:
                wanted.add((key, eid))
            if view is None:
                if allocation.status in PUBLISHED_STATUSES:
                    put(PlanAction(key, eid, "skip", R_NO_CALENDAR, allocation.id))
                continue
            current = view.mirror.get(eid)
            desired = desired_for(allocation, view.record)
            if allocation.status == "cancelled":
                if current is None or current.status == "cancelled":
                    continue
                reason = _guard(current, env, view.conflicted, now)
                if reason is not None:
                    put(PlanAction(key, eid, "skip", reason, allocation.id))
                else:
                    put(PlanAction(key, eid, "delete", R_CANCELLED, allocation.id, if_match=current.etag))
                continue
            if has_started(allocation.start, now):
                if current is None or not _matches(current, desired):
                    put(PlanAction(key, eid, "skip", R_PAST, allocation.id))
                continue
            if current is None:
                put(PlanAction(key, eid, "create", R_NEW, allocation.id, desired=desired))
                continue
            reason = _guard(current, env, view.conflicted, now)
            if reason is not None:
                if not _matches(current, desired):
                    put(PlanAction(key, eid, "skip", reason, allocation.id))
                continue
            if current.status == "cancelled":
                put(PlanAction(key, eid, "update", R_RESTORE, allocation.id, if_match=current.etag, desired=desired))
            elif not _matches(current, desired):
                put(PlanAction(key, eid, "update", R_CHANGED, allocation.id, if_match=current.etag, desired=desired))

    if clear_future:
        for key, view in sorted(calendars.items()):
            for eid, current in sorted(view.mirror.items()):
                if (key, eid) in wanted or (key, eid) in actions or current.status == "cancelled":
                    continue
                if current.start is None or current.end is None:
                    continue
                if not (current.start < time_max and current.end > time_min):
                    continue
                reason = _guard(current, env, view.conflicted, now)
                if reason == R_PAST:
                    continue  # the past is not in question: nothing to report
                if reason is not None:
                    put(PlanAction(key, eid, "skip", reason, current.allocation_id))
                else:
                    put(PlanAction(key, eid, "delete", R_NOT_IN_SCHEDULE, current.allocation_id, if_match=current.etag))
    return [actions[k] for k in sorted(actions)]


def fingerprint(actions: Iterable[PlanAction]) -> str:
    """A digest of the actions (what apply compares to detect a stale plan)."""
    digest = hashlib.sha256()
    for a in actions:
        row = [a.calendar_key, a.event_id, a.action, a.reason, a.if_match or ""]
        if a.desired is not None:
            d = a.desired
            row += [d.summary, d.start.isoformat(), d.end.isoformat(), ",".join(d.attendees)]
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()


def hash_token(token: str) -> str:
    """The stored form of a confirmation token."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- the use case --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishConfig:
    """Settings of planning and applying (built by the entry point from ``Settings``)."""

    env: str
    control_calendar_id: str
    publish_queue: str = "calsync-publish"
    publish_url: str = ""
    batch_size: int = 50
    requests_per_min: int = 600
    # Publishing uses this share of the per-user quota, leaving room for syncs and admin calls.
    quota_share: float = 0.8
    sync_queue: str = "calsync-sync"
    sync_url: str = ""
    time_zone: str = "UTC"  # of the times in conflict suggestions


@dataclass(frozen=True)
class PlanCommand:
    """``POST /publish/plan``."""

    clinic_id: str
    time_min: datetime
    time_max: datetime
    clear_future: bool = False


@dataclass
class PlanInputs:
    """What the planner reads from the store."""

    allocations: list[Allocation]
    calendars: dict[str, CalendarView]


def clinic_calendars(store: PublishStore, clinic_id: str, config: PublishConfig) -> dict[str, CalendarRecord]:
    """The registered calendars an allocation of the clinic may target, by key."""
    found: dict[str, CalendarRecord] = {}
    for record in store.list_calendars():
        if record.kind == "control" and record.google_calendar_id == config.control_calendar_id:
            found[CONTROL_KEY] = record
        elif record.clinic_id == clinic_id and record.kind in ("professional", "room"):
            found[record.key] = record
    return found


def gather(store: PublishStore, cmd: PlanCommand, config: PublishConfig) -> PlanInputs:
    """Read the allocations of the window, the target calendars' mirrors and their open conflicts."""
    allocations = store.list_allocations(cmd.clinic_id, cmd.time_min, cmd.time_max)
    records = clinic_calendars(store, cmd.clinic_id, config)
    ids_by_key: dict[str, set[str]] = {}
    for allocation in allocations:
        for key in targets_of(allocation):
            ids_by_key.setdefault(key, set()).add(event_id(config.env, allocation.id, key))
    views: dict[str, CalendarView] = {}
    for key, record in records.items():
        wanted = ids_by_key.get(key, set())
        if not wanted and not cmd.clear_future:
            continue
        mirror = store.get_events(key, sorted(wanted)) if wanted else {}
        if cmd.clear_future:
            token: str | None = None
            while True:
                page, token = store.list_mirror_events(
                    key, time_min=cmd.time_min, time_max=cmd.time_max, page_size=MIRROR_PAGE, page_token=token
                )
                for event in page:
                    mirror.setdefault(event.external_id, event)
                if token is None:
                    break
        conflicted: set[str] = set()
        token = None
        while True:
            conflicts, token = store.list_conflicts(key, status="open", page_size=MIRROR_PAGE, page_token=token)
            conflicted.update(c.event_id for c in conflicts if c.kind != "overlap_manual")
            if token is None:
                break
        views[key] = CalendarView(record=record, mirror=mirror, conflicted=frozenset(conflicted))
    return PlanInputs(allocations=allocations, calendars=views)


def compute(store: PublishStore, cmd: PlanCommand, config: PublishConfig, now: datetime) -> list[PlanAction]:
    """Gather the inputs and run the pure planner."""
    inputs = gather(store, cmd, config)
    return plan_actions(
        env=config.env,
        now=now,
        allocations=inputs.allocations,
        calendars=inputs.calendars,
        time_min=cmd.time_min,
        time_max=cmd.time_max,
        clear_future=cmd.clear_future,
    )


def quota_estimate(writes: int, calendars: int, config: PublishConfig) -> tuple[int, float]:
    """Requests (each write, plus one calendar check per calendar) and minutes at the paced rate."""
    requests = writes + calendars
    rate = config.requests_per_min * config.quota_share
    return requests, round(requests / rate, 2) if requests else 0.0


def validate_window(time_min: datetime, time_max: datetime) -> None:
    """Refuse naive, empty or oversized windows."""
    if time_min.tzinfo is None or time_max.tzinfo is None:
        raise errors.InvalidRequest("from and to must carry a timezone offset")
    if time_max <= time_min:
        raise errors.InvalidRequest("to must be after from")
    if time_max - time_min > timedelta(days=MAX_WINDOW_DAYS):
        raise errors.InvalidRequest(f"a plan covers at most {MAX_WINDOW_DAYS} days")


def summarize(actions: Sequence[PlanAction]) -> tuple[Totals, list[PlanCalendar]]:
    """Totals and the per-calendar sections of the plan answer."""
    totals = Totals(create=0, update=0, delete=0, skip=0)
    sections: dict[str, PlanCalendar] = {}
    for a in actions:
        setattr(totals, a.action, getattr(totals, a.action) + 1)
        section = sections.setdefault(
            a.calendar_key, PlanCalendar(calendar_id=a.calendar_key, create=0, update=0, delete=0, skip=0, items=[])
        )
        setattr(section, a.action, getattr(section, a.action) + 1)
        section.items.append(a.item())
    return totals, [sections[k] for k in sorted(sections)]


def make_plan(cmd: PlanCommand, *, store: PublishStore, clock: Clock, config: PublishConfig) -> PlanAnswer:
    """Plan a publish, store it (tokens hashed) and answer the dry run with the tokens."""
    validate_window(cmd.time_min, cmd.time_max)
    now = clock.now()
    actions = compute(store, cmd, config, now)
    totals, sections = summarize(actions)
    writes = totals.create + totals.update + totals.delete
    write_calendars = {a.calendar_key for a in actions if a.action != "skip"}
    requests, minutes = quota_estimate(writes, len(write_calendars), config)
    confirm = secrets.token_urlsafe(16)
    confirm_clear = secrets.token_urlsafe(16) if cmd.clear_future else None
    plan = Plan(
        id=uuid.uuid4().hex,
        clinic_id=cmd.clinic_id,
        time_min=cmd.time_min,
        time_max=cmd.time_max,
        clear_future=cmd.clear_future,
        created_at=now,
        expires_at=now + timedelta(seconds=PLAN_TTL_S),
        confirm_hash=hash_token(confirm),
        confirm_clear_hash=hash_token(confirm_clear) if confirm_clear else None,
        fingerprint=fingerprint(actions),
        totals=totals.model_dump(),
        quota_requests=requests,
        calendars=[PlanCalendarCounts(**s.model_dump(exclude={"items"})) for s in sections],
        total_writes=writes,
    )
    store.put_plan(plan)
    log.info("publish.planned", plan_id=plan.id, clinic_id=cmd.clinic_id, total=writes, skipped=totals.skip)
    second = {} if confirm_clear is None else {"confirm_clear_future_token": confirm_clear}
    return PlanAnswer(
        plan_id=plan.id,
        # The instant the plan judged "past" at: allocations started by then are skipped.
        planned_at=now,
        confirm_token=confirm,
        expires_at=plan.expires_at,
        clear_future=cmd.clear_future,
        totals=totals,
        quota=Quota(requests=requests, minutes=minutes),
        calendars=sections,
        **second,
    )


Kind = Literal["create", "update", "delete"]


def action_dict(a: PlanAction) -> dict[str, Any]:
    """A JSON-safe form of an action (the payload of an apply task)."""
    out = asdict(a)
    if a.desired is not None:
        out["desired"] = {
            "summary": a.desired.summary,
            "start": a.desired.start.isoformat(),
            "end": a.desired.end.isoformat(),
            "attendees": list(a.desired.attendees),
        }
    return out


def action_from(data: Mapping[str, Any]) -> PlanAction:
    """The inverse of ``action_dict``."""
    desired = data.get("desired")
    return PlanAction(
        calendar_key=str(data["calendar_key"]),
        event_id=str(data["event_id"]),
        action=data["action"],
        reason=str(data["reason"]),
        allocation_id=data.get("allocation_id"),
        if_match=data.get("if_match"),
        desired=Desired(
            summary=str(desired["summary"]),
            start=datetime.fromisoformat(desired["start"]),
            end=datetime.fromisoformat(desired["end"]),
            attendees=tuple(desired["attendees"]),
        )
        if desired
        else None,
    )
