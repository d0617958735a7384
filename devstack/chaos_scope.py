"""Chaos, clinic scope and reassignment: a second clinic on the shared control calendar.

``chaos.SeedRun`` calls these (kept apart from the other chaos steps): ``setup_second_clinic`` registers
and provisions clinic ``c2`` on the same control calendar and publishes its schedule; two steps join
the random interleaving:

- ``step_reassign``: agendador moves an allocation (of either clinic) to another professional and/or
  room; its clinic is published (``clear_future`` drawn);
- ``step_clinic_publish``: a clinic is published on its own, ``clear_future`` drawn.

Every publish made here is checked on the spot (invariant a): no event of the other clinic changed in
Google (same ids, same etags, on every calendar). After quiescence ``check_copies`` adds invariant d:
each live allocation that has not started has exactly one copy on each current target (none where a
person deleted it) and none on any other calendar (unless a person's edit holds it there: people's
edits win).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from calsync.model import Allocation, GoogleEvent, Professional, Room, has_started
from calsync.services.allocations import upsert_allocations
from calsync.services.directory import replace_professionals, replace_rooms
from calsync.services.our_events import event_id, professional_key, room_key
from calsync.services.provision import Provisioning, provision_clinic

if TYPE_CHECKING:
    from devstack.chaos import SeedRun

OTHER_CLINIC = "c2"
PROFESSIONALS = ("p1", "p2")
ROOMS = ("r1", "r2")
CONTROL_KEY = "control"


def _tags(event: dict[str, Any]) -> dict[str, str]:
    return dict(((event.get("extendedProperties") or {}).get("private")) or {})


def provisioning(run: SeedRun) -> Provisioning:
    """Provisioning over the seed run's emulators (one writer)."""
    return Provisioning(api=run.api, store=run.store, queue=run.tasks, clock=run.clock, channels=run.app.channel_config)


def clinic_keys(run: SeedRun, clinic: str) -> list[str]:
    """The calendar keys of a clinic's own calendars."""
    return sorted(k for k in run.calendars if k.startswith(f"{clinic}-"))


def setup_second_clinic(run: SeedRun) -> None:
    """Clinic c2 (two professionals, two rooms) on the same control calendar, with a published schedule."""
    profs = [
        Professional(clinic_id=OTHER_CLINIC, id=p, name=f"Prof {p}", email=run.email(run.rng.choice(("lia", "rui"))))
        for p in PROFESSIONALS
    ]
    replace_professionals(OTHER_CLINIC, profs, store=run.store)
    replace_rooms(OTHER_CLINIC, [Room(clinic_id=OTHER_CLINIC, id=r, name=f"Sala {r}") for r in ROOMS], store=run.store)
    provision_clinic(OTHER_CLINIC, provisioning(run), control_calendar_id=run.control_id)
    for record in run.store.list_calendars():
        run.calendars[record.key] = record.google_calendar_id
    # The first clinic may reassign to a second room too.
    if room_key("c1", "r2") not in run.calendars:
        replace_rooms("c1", [Room(clinic_id="c1", id=r, name=f"Sala {r}") for r in ROOMS], store=run.store)
        provision_clinic("c1", provisioning(run), control_calendar_id=run.control_id)
        for record in run.store.list_calendars():
            run.calendars[record.key] = record.google_calendar_id
    added = [new_allocation(run, OTHER_CLINIC, i) for i in range(run.rng.randint(3, 5))]
    upsert_allocations(added, store=run.store, clock=run.clock)
    publish_checked(run, OTHER_CLINIC, crash=False)


def new_allocation(run: SeedRun, clinic: str, index: int) -> Allocation:
    """A reviewed one-hour allocation of ``clinic`` in the next days."""
    start = run.base + timedelta(days=run.rng.randint(0, 4), hours=run.rng.randint(-3, 5))
    allocation = Allocation(
        id=f"{clinic}-{run.seed}-{index}",
        clinic_id=clinic,
        professional_id=run.rng.choice(PROFESSIONALS),
        room_id=run.rng.choice(ROOMS),
        start=start,
        end=start + timedelta(hours=1),
        status="reviewed",
        title=run.summary("Consulta"),
    )
    run.allocations[allocation.id] = allocation
    return allocation


def snapshot_of(run: SeedRun, clinic: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    """Every event of ``clinic`` in Google (its own calendars, and its events on the control calendar)."""
    out: dict[tuple[str, str], tuple[str, str | None]] = {}
    for key in [*clinic_keys(run, clinic), CONTROL_KEY]:
        # Read as the service account, retried through injected faults like a person would (``truth`` is
        # for the quiet end of a seed); deleted events drop out of this listing, which is a change too.
        listing = run.person(None, "GET", run.calendars[key]).get("items", [])
        for eid, event in ((e["id"], e) for e in listing):
            tags = _tags(event)
            owner = tags.get("clinic_id")
            if owner is None and tags.get("allocation_id") in run.allocations:
                owner = run.allocations[tags["allocation_id"]].clinic_id
            if key != CONTROL_KEY or owner == clinic:
                out[(key, eid)] = (str(event.get("status", "confirmed")), event.get("etag"))
    return out


def publish_checked(run: SeedRun, clinic: str, *, crash: bool, clear: bool | None = None) -> None:
    """Publish ``clinic`` and check invariant a: no event of any other clinic changed in Google."""
    others = [c for c in ("c1", OTHER_CLINIC) if c != clinic]
    before = {c: snapshot_of(run, c) for c in others}
    run.publish(crash=crash, clinic=clinic, clear=clear)
    for other in others:
        after = snapshot_of(run, other)
        for where in sorted(set(before[other]) | set(after)):
            if before[other].get(where) != after.get(where):
                run.scope_failures.append(
                    f"inva {where[0]}: {clinic}'s publish changed {other}'s {where[1][:10]}: "
                    f"{before[other].get(where)} -> {after.get(where)}"
                )
    run.counts[f"publishes_{clinic}"] += 1


def step_reassign(run: SeedRun) -> None:
    """agendador moves an allocation to another professional and/or room; its clinic publishes."""
    live = sorted((a for a in run.allocations.values() if a.status != "cancelled"), key=lambda a: a.id)
    if not live:
        return
    old = run.rng.choice(live)
    professional, room = old.professional_id, old.room_id
    while (professional, room) == (old.professional_id, old.room_id):
        professional, room = run.rng.choice(PROFESSIONALS), run.rng.choice(ROOMS)
    changed = old.model_copy(update={"professional_id": professional, "room_id": room, "revision": old.revision + 1})
    run.allocations[changed.id] = changed
    upsert_allocations([changed], store=run.store, clock=run.clock)
    run.ledger.step(f"reassign {changed.id}: {old.professional_id}/{old.room_id} -> {professional}/{room}")
    run.counts["reassignments"] += 1
    publish_checked(run, old.clinic_id, crash=run.rng.random() < 0.4, clear=run.rng.random() < 0.5)


def step_clinic_publish(run: SeedRun) -> None:
    """An admin publishes one clinic on its own (``clear_future`` drawn)."""
    clinic = run.rng.choice(["c1", OTHER_CLINIC])
    clear = run.rng.random() < 0.6
    publish_checked(run, clinic, crash=False, clear=clear)
    if clear:
        run.counts["clear_future_publishes"] += 1


def _started(event: Mapping[str, Any], now: datetime) -> bool:
    """Whether a Google event has started at ``now`` (the rule calsync writes by: ``model.has_started``)."""
    start = GoogleEvent.model_validate(event).start
    return has_started(start.as_utc() if start is not None else None, now)


def check_copies(run: SeedRun) -> list[str]:
    """Invariant d: one copy of each live allocation on each current target, none elsewhere."""
    failures: list[str] = []
    truth = {key: run.truth(gid) for key, gid in run.calendars.items()}
    copies: dict[tuple[str, str], list[str]] = {}
    started: set[str] = set()
    now = run.clock.now()
    for key, events in truth.items():
        for eid, event in events.items():
            if event.get("status") == "cancelled" or event.get("recurringEventId"):
                continue  # an instance of a series a person made of ours is not a copy
            if _started(event, now):
                started.add(eid)  # never touched again, whatever its allocation became
            allocation_id = _tags(event).get("allocation_id")
            if allocation_id in run.allocations:
                copies.setdefault((allocation_id, key), []).append(eid)
    for allocation in sorted(run.allocations.values(), key=lambda a: a.id):
        if allocation.start <= now:
            continue  # started: its copies are past and never touched, whatever was planned for them
        clinic = allocation.clinic_id
        targets = set()
        if allocation.status in ("reviewed", "adjusted"):
            targets = {
                professional_key(clinic, allocation.professional_id),
                room_key(clinic, allocation.room_id),
                CONTROL_KEY,
            }
        for key, gid in sorted(run.calendars.items()):
            found = copies.get((allocation.id, key), [])
            person = run.ledger.last_write.get((gid, event_id("dev", allocation.id, key)))
            if (gid, event_id("dev", allocation.id, key)) in run.ledger.series_of_ours:
                continue  # a person's series now (one open conflict, invariant f): calsync leaves it
            if key in targets:
                # A person's delete wins: calsync never brings the copy back.
                allowed = {0, 1} if person is not None and person.status == "cancelled" else {1}
                if len(found) not in allowed:
                    failures.append(f"invd {key}: allocation {allocation.id} has {len(found)} copies on a target")
            elif [e for e in found if e not in started] and person is None:
                # Off its targets only a copy a person edited may stay (their edit wins over the delete).
                failures.append(f"invd {key}: allocation {allocation.id} has {len(found)} copies off its targets")
    return failures
