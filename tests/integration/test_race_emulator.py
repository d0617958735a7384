"""A person's edit and calsync's publish or accept, in either order, end in the same conflicts.

Chaos seeds 80 and 91 (issue 13): the Calendar emulator through the real client and Google's Firestore
emulator; each test fixes the order of the person's edit, the sync that sees it and the publish or the
admin's decision, both ways.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from calsync.ports.queries import ConflictQuery
from calsync.services.classify import mirror_diverging_kinds
from calsync.services.conflicts import resolve_conflict
from calsync.services.plan import event_id
from calsync.testing import FrozenClock
from tests.integration.test_fields_emulator import (
    PATIENT,
    PROF,
    Env,
    allocation,
    changed,
    google,
    open_conflicts,
    person,
    publish,
    sync,
)
from tests.integration.test_publish_emulator import setup_clinic


@pytest.fixture
def env(calendar_base: str, firestore_client: Any) -> Env:
    """The fields tests' clinic: one professional, one room, no quota limit, a frozen clock."""
    built = setup_clinic(calendar_base, firestore_client, professionals=1, rooms=1)
    built.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000})
    return replace(built, clock=FrozenClock(built.clock.now()))  # type: ignore[arg-type]


def times(start: datetime) -> dict[str, Any]:
    end = start + timedelta(minutes=30)
    return {"start": {"dateTime": start.isoformat()}, "end": {"dateTime": end.isoformat()}}


@pytest.mark.parametrize("synced_before_plan", [True, False], ids=["synced", "not-synced"])
def test_a_person_moving_our_event_where_the_allocation_then_goes_is_a_conflict_either_way(
    env: Env, synced_before_plan: bool
) -> None:
    """Seed 80: the person moves our event; agendador then moves the allocation to that same time."""
    first = allocation(env)
    publish(env, first)
    eid = event_id("dev", "a1", PROF)
    later = first.start + timedelta(hours=1)
    person(env, "PATCH", PROF, eid, times(later))
    moved_by_person = google(env, PROF, eid)["etag"]
    if synced_before_plan:
        sync(env, PROF)

    publish(env, changed(first, start=later, end=later + timedelta(minutes=30)))
    sync(env, PROF)

    # Google's version is the person's (never written over), and their move is recorded, whichever ran first.
    assert google(env, PROF, eid)["etag"] == moved_by_person
    assert open_conflicts(env, PROF) == [(eid, "moved_in_google")]
    doc = env.store.get_events(PROF, [eid])[eid]
    assert mirror_diverging_kinds(doc) == {"moved_in_google"}


def accept(env: Env, kind: str) -> None:
    found, _ = env.store.list_conflicts(ConflictQuery(PROF, status="open", page_size=10, page_token=None))
    [conflict] = [c for c in found if c.kind == kind]
    resolve_conflict(conflict.id, "accept_google", api=env.api, store=env.store, clock=env.clock, config=env.config)


@pytest.mark.parametrize("retitle_synced", [True, False], ids=["retitle-synced", "retitle-not-synced"])
def test_accept_google_leaves_no_conflict_without_a_divergence(env: Env, retitle_synced: bool) -> None:
    """Seed 91: a person re-invites and retitles our event; an admin accepts the attendees conflict."""
    first = allocation(env)
    publish(env, first)
    eid = event_id("dev", "a1", PROF)
    person(env, "PATCH", PROF, eid, {"attendees": [{"email": PATIENT}]})
    sync(env, PROF)
    person(env, "PATCH", PROF, eid, {"summary": "Dr. Ana: retorno"})
    if retitle_synced:
        sync(env, PROF)
        assert open_conflicts(env, PROF) == [(eid, "attendees_changed"), (eid, "title_changed")]

    accept(env, "attendees_changed")
    sync(env, PROF)

    # Every open conflict names a divergence between Google's version and what calsync now holds as
    # published (accept_google: the Google version the mirror had), and every divergence has its conflict.
    doc = env.store.get_events(PROF, [eid])[eid]
    kinds = {k for e, k in open_conflicts(env, PROF) if e == eid}
    assert kinds == mirror_diverging_kinds(doc)
    if retitle_synced:  # the whole Google version was accepted: the title with it
        assert kinds == set()
        flagged = env.store.get_allocations(["a1"])["a1"]
        assert flagged.needs_adjustment
        assert "title" in (flagged.adjustment_note or "")
    else:  # the admin accepted the version they saw; the later title is a divergence of its own
        assert kinds == {"title_changed"}
