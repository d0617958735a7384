"""Publish planning: which events to create, update or delete on which calendars, and why.

``plan_actions`` is a pure function (Cal.com's ``getBookingUpdateActions`` shape): allocations, the
mirror of each target calendar and the open conflicts in, actions with stable reason codes out. The
use case ``make_plan`` gathers those inputs from the store, stores the plan with hashed confirmation
tokens and a fingerprint of its actions (apply re-plans and compares: a different fingerprint means
allocations or Google changed, so the plan is stale), and answers the admin's dry run with warnings:
the allocations it would place over busy time (``plan_warnings``).

Rules:

- Allocations ``reviewed|adjusted`` are published to three calendars (the professional's, the room's,
  the control calendar); ``cancelled`` ones have their future events deleted; ``draft`` are ignored.
- Never a write to a past event (one that has started: ``model.has_started``), to an untagged
  (manual) event, to an event of another environment, or to an event a person edited in Google with
  an open conflict: those are skips with a reason, never overwritten silently (``republish`` on the
  conflict is the only way).
- Never a write to an instance of a series a person made of our event (``series_from_ours``: it
  carries our tags, but its id is not one of ours); the series' master is our id with an open
  ``series_from_ours`` conflict, so it is skipped like any conflicted event.
- ``clear_future`` also deletes future system events of the window that are not in the schedule.
- **Clinic scope.** The control calendar is shared by the environment's clinics: a plan reads, writes
  and deletes only its clinic's events (``owner``: the clinic tag, or for a schema-1 event its
  allocation's clinic, else its calendar's). Others' events are never in the plan; an event whose
  clinic nothing tells is a skip (``unknown_clinic``); a schema-1 event of the clinic is retagged in
  place (``tag_migration``, same id).
- **Reassignment.** An allocation's copies on the clinic's calendars that are no longer its targets
  are deleted (``reassigned``) under the same guards. ``gather`` finds them by deterministic id on
  every calendar of the clinic (batched mirror reads), however often the allocation moved, with no
  history of its targets to keep.
- Event ids are deterministic (``event_id``): base32hex of sha256(environment, allocation, calendar).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
from calsync.ports.queries import ConflictQuery, MirrorQuery, pages
from calsync.results import PlanAnswer, Quota
from calsync.services import plan_actions as actions
from calsync.services.our_events import (
    CONTROL_KEY,
    Desired,
    desired_for,
    event_id,
    invites_patients,
    professional_key,
    room_key,
)
from calsync.services.plan_actions import fingerprint, hash_token, summarize, validate_window
from calsync.services.plan_warnings import plan_warnings
from calsync.services.writers import PACED_RATE_PER_S

log = get_logger(__name__)

# The planned action and its task form, also importable from here (the apply's chunk tasks read them).
PlanAction = actions.PlanAction
action_from = actions.action_from

PUBLISHED_STATUSES = frozenset({"reviewed", "adjusted"})
PLAN_TTL_S = 3600
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
R_RETAG = "tag_migration"
R_REASSIGNED = "reassigned"
R_OTHER_CLINIC = "other_clinic"
R_UNKNOWN_CLINIC = "unknown_clinic"
R_SERIES = "series_from_ours"


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


def owner(event: MirrorEvent, record: CalendarRecord, allocation_clinics: Mapping[str, str]) -> str | None:
    """The clinic whose system event this is, or None when nothing says.

    The clinic tag; for a schema-1 event (no tag), its allocation's clinic, else the clinic of the
    calendar it is on when that is a clinic's own calendar (only that clinic's plans ever wrote there).
    """
    if event.clinic_id is not None:
        return event.clinic_id
    if event.allocation_id is not None and event.allocation_id in allocation_clinics:
        return allocation_clinics[event.allocation_id]
    if record.kind != "control":
        return record.clinic_id
    return None


def _guard(
    mirror: MirrorEvent, env: str, clinic: str, owned_by: str | None, *, conflicted: frozenset[str], now: datetime
) -> str | None:
    """The reason an existing event must not be written by ``clinic``'s plan, or None."""
    if mirror.origin != "system":
        return R_UNTAGGED
    if mirror.env != env:
        return R_FOREIGN
    if mirror.status != "cancelled" and has_started(mirror.start, now):
        return R_PAST
    if mirror.recurring_event_id is not None:  # an instance of a person's series: never our id to write
        return R_SERIES
    if owned_by != clinic:
        return R_UNKNOWN_CLINIC if owned_by is None else R_OTHER_CLINIC
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
    clinic_id: str,
    now: datetime,
    allocations: Sequence[Allocation],
    calendars: Mapping[str, CalendarView],
    time_min: datetime,
    time_max: datetime,
    clear_future: bool,
    allocation_clinics: Mapping[str, str] | None = None,
    invite_patients: bool = True,
) -> list[PlanAction]:
    """Every action of ``clinic_id``'s publish, sorted by (calendar, event id): pure, deterministic, no I/O.

    ``calendars`` are the clinic's calendars (its own and the control calendar); ``allocation_clinics``
    names the clinic of allocations outside ``allocations`` whose schema-1 events may be listed.
    """
    actions: dict[tuple[str, str], PlanAction] = {}
    wanted: set[tuple[str, str]] = set()
    clinics = {**(allocation_clinics or {}), **{a.id: a.clinic_id for a in allocations}}

    def put(action: PlanAction) -> None:
        actions[(action.calendar_key, action.event_id)] = action

    def guard(view: CalendarView, current: MirrorEvent) -> str | None:
        owned_by = owner(current, view.record, clinics)
        return _guard(current, env, clinic_id, owned_by, conflicted=view.conflicted, now=now)

    for allocation in sorted(allocations, key=lambda a: a.id):
        if allocation.status == "draft":
            continue
        targets = targets_of(allocation)
        for key in targets:
            eid = event_id(env, allocation.id, key)
            view = calendars.get(key)
            if allocation.status in PUBLISHED_STATUSES:
                wanted.add((key, eid))
            if view is None:
                if allocation.status in PUBLISHED_STATUSES:
                    put(PlanAction(key, eid, "skip", R_NO_CALENDAR, allocation.id, clinic_id=clinic_id))
                continue
            current = view.mirror.get(eid)
            desired = desired_for(allocation, view.record, invite=invite_patients)
            if allocation.status == "cancelled":
                if current is None or current.status == "cancelled":
                    continue
                reason = guard(view, current)
                kind: PlanActionKind = "skip" if reason is not None else "delete"
                etag = current.etag if reason is None else None
                put(PlanAction(key, eid, kind, reason or R_CANCELLED, allocation.id, etag, clinic_id=clinic_id))
                continue
            if has_started(allocation.start, now):
                if current is None or not _matches(current, desired):
                    put(PlanAction(key, eid, "skip", R_PAST, allocation.id, clinic_id=clinic_id))
                continue
            if current is None:
                put(PlanAction(key, eid, "create", R_NEW, allocation.id, desired=desired, clinic_id=clinic_id))
                continue
            reason = guard(view, current)
            if reason is not None:
                if not _matches(current, desired):
                    put(PlanAction(key, eid, "skip", reason, allocation.id, clinic_id=clinic_id))
                continue
            if current.status == "cancelled":
                update = R_RESTORE
            elif not _matches(current, desired):
                update = R_CHANGED
            elif current.clinic_id is None:
                update = R_RETAG  # schema 1: the same event, tagged with its clinic in place
            else:
                continue
            put(PlanAction(key, eid, "update", update, allocation.id, current.etag, desired, clinic_id))
        _copies_elsewhere(allocation, targets, calendars, env, put=put, guard=guard)

    if clear_future:
        for key, view in sorted(calendars.items()):
            for eid, current in sorted(view.mirror.items()):
                if (key, eid) in wanted or (key, eid) in actions or current.status == "cancelled":
                    continue
                if current.start is None or current.end is None:
                    continue
                if not (current.start < time_max and current.end > time_min):
                    continue
                reason = guard(view, current)
                if reason in (R_PAST, R_OTHER_CLINIC):
                    continue  # the past and other clinics' events are not in question: nothing to report
                kind = "skip" if reason is not None else "delete"
                etag = current.etag if reason is None else None
                owned_by = owner(current, view.record, clinics)
                allocation_id = current.allocation_id
                put(PlanAction(key, eid, kind, reason or R_NOT_IN_SCHEDULE, allocation_id, etag, None, owned_by))
    return [actions[k] for k in sorted(actions)]


def _copies_elsewhere(
    allocation: Allocation,
    targets: Sequence[str],
    calendars: Mapping[str, CalendarView],
    env: str,
    *,
    put: Callable[[PlanAction], None],
    guard: Callable[[CalendarView, MirrorEvent], str | None],
) -> None:
    """Delete the allocation's live copies on the clinic's calendars that are not its targets.

    A copy left by a reassignment (``reassigned``) or of a cancelled allocation (``allocation_cancelled``);
    the past and other clinics' events are not in question, the other guards are reported as skips.
    """
    reason_of_delete = R_CANCELLED if allocation.status == "cancelled" else R_REASSIGNED
    for key, view in sorted(calendars.items()):
        if key in targets:
            continue
        eid = event_id(env, allocation.id, key)
        current = view.mirror.get(eid)
        if current is None or current.status == "cancelled":
            continue
        reason = guard(view, current)
        if reason in (R_PAST, R_OTHER_CLINIC):
            continue
        kind: PlanActionKind = "skip" if reason is not None else "delete"
        etag = current.etag if reason is None else None
        put(PlanAction(key, eid, kind, reason or reason_of_delete, allocation.id, etag, clinic_id=allocation.clinic_id))


# --- the use case --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishConfig:
    """Settings of planning and applying (``calsync.bootstrap.publish_config``; no defaults but ``Settings``')."""

    env: str
    control_calendar_id: str
    publish_queue: str
    publish_url: str
    batch_size: int
    sync_queue: str
    sync_url: str
    time_zone: str  # of the times in conflict suggestions
    invite_patients: tuple[str, ...]  # clinics whose patients are attendees ("*": every clinic)


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
    # The clinic of allocations outside the window named by schema-1 events (no clinic tag).
    allocation_clinics: dict[str, str] = field(default_factory=dict)


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
    """Read the allocations of the window, the clinic's calendars' mirrors and their open conflicts.

    Every allocation's deterministic id is looked up on every calendar of the clinic (one batched read
    per calendar), so copies left on a calendar that is no longer a target are found. Schema-1 events a
    ``clear_future`` listing finds name only their allocation: those allocations' clinics are read too.
    """
    allocations = store.list_allocations(cmd.clinic_id, cmd.time_min, cmd.time_max)
    records = clinic_calendars(store, cmd.clinic_id, config)
    published = [a for a in allocations if a.status != "draft"]
    views: dict[str, CalendarView] = {}
    untagged_allocations: set[str] = set()
    for key, record in records.items():
        wanted = sorted({event_id(config.env, a.id, key) for a in published})
        if not wanted and not cmd.clear_future:
            continue
        mirror = store.get_events(key, wanted) if wanted else {}
        if cmd.clear_future:
            window = MirrorQuery(key, time_min=cmd.time_min, time_max=cmd.time_max, page_size=MIRROR_PAGE)
            for page in pages(store.list_mirror_events, window):
                for event in page:
                    mirror.setdefault(event.external_id, event)
        untagged_allocations.update(e.allocation_id for e in mirror.values() if e.allocation_id and not e.clinic_id)
        conflicted: set[str] = set()
        if mirror:  # no event to guard, no conflict to read
            for conflicts in pages(store.list_conflicts, ConflictQuery(key, status="open", page_size=MIRROR_PAGE)):
                conflicted.update(c.event_id for c in conflicts if c.kind != "overlap_manual")
        views[key] = CalendarView(record=record, mirror=mirror, conflicted=frozenset(conflicted))
    untagged_allocations -= {a.id for a in allocations}
    found = store.get_allocations(sorted(untagged_allocations)) if untagged_allocations else {}
    clinics = {allocation_id: a.clinic_id for allocation_id, a in found.items()}
    return PlanInputs(allocations=allocations, calendars=views, allocation_clinics=clinics)


def compute(
    store: PublishStore, cmd: PlanCommand, config: PublishConfig, now: datetime, inputs: PlanInputs | None = None
) -> list[PlanAction]:
    """Gather the inputs (unless given) and run the pure planner."""
    inputs = inputs or gather(store, cmd, config)
    return plan_actions(
        env=config.env,
        clinic_id=cmd.clinic_id,
        now=now,
        allocations=inputs.allocations,
        calendars=inputs.calendars,
        time_min=cmd.time_min,
        time_max=cmd.time_max,
        clear_future=cmd.clear_future,
        allocation_clinics=inputs.allocation_clinics,
        invite_patients=invites_patients(cmd.clinic_id, config.invite_patients),
    )


def quota_estimate(writes: int, calendars: int) -> tuple[int, float]:
    """Requests (each write, plus one calendar check per calendar) and minutes at the paced rate."""
    requests = writes + calendars
    return requests, round(requests / (PACED_RATE_PER_S * 60.0), 2) if requests else 0.0


def make_plan(cmd: PlanCommand, *, store: PublishStore, clock: Clock, config: PublishConfig) -> PlanAnswer:
    """Plan a publish, store it (tokens hashed) and answer the dry run with the tokens."""
    validate_window(cmd.time_min, cmd.time_max)
    now = clock.now()
    inputs = gather(store, cmd, config)
    actions = compute(store, cmd, config, now, inputs)
    window = {"time_min": cmd.time_min, "time_max": cmd.time_max, "now": now}
    warnings = plan_warnings(
        store, clinic_id=cmd.clinic_id, allocations=inputs.allocations, calendar_keys=inputs.calendars, **window
    )
    totals, sections = summarize(actions)
    writes = totals.create + totals.update + totals.delete
    write_calendars = {a.calendar_key for a in actions if a.action != "skip"}
    requests, minutes = quota_estimate(writes, len(write_calendars))
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
        warnings=warnings,
        **second,
    )
