"""The cleanup job migrates old mirror documents on Google's Firestore emulator: people's events lose
their title, description, location and guests; calsync's own events keep theirs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.model import CalendarRecord, MirrorEvent
from calsync.services.maintenance import run_cleanup
from calsync.testing import FrozenClock
from tests.integration.test_jobs_firestore import JOBS

KEY = "room-1"


def test_cleanup_drops_people_content_from_old_mirror_documents(firestore_client: Any) -> None:
    clock = FrozenClock()
    start = clock.now() + timedelta(days=1)
    store = FirestoreStateStore(firestore_client, environment="dev")
    store.put_calendar(CalendarRecord(key=KEY, google_calendar_id="room1@g", kind="room"))
    ours = MirrorEvent(
        calendar_key=KEY,
        external_id="ours1",
        google_calendar_id="room1@g",
        start=start,
        end=start + timedelta(hours=1),
        summary="consulta",
        attendees=["patient@example.com"],
        origin="system",
        allocation_id="a1",
        env="dev",
    )
    store.put_events([ours])
    events = firestore_client.collection("dev_calendars").document(KEY).collection("events")
    # A person's event as calsync stored it before it kept busy time only.
    old = ours.model_dump() | {
        "external_id": "theirs1",
        "origin": "manual",
        "allocation_id": None,
        "env": None,
        "summary": "Dentist (private)",
        "description": "root canal",
        "location": "Rua X, 12",
        "attendees": ["friend@example.com"],
    }
    events.document("theirs1").set(old)

    ran = run_cleanup(store=store, clock=clock, config=JOBS)

    assert ran.people_content_scrubbed == 1
    doc = events.document("theirs1").get().to_dict()
    assert doc is not None
    assert (doc["summary"], doc["attendees"]) == (None, [])
    assert "description" not in doc
    assert "location" not in doc
    assert (doc["start"], doc["end"], doc["status"]) == (old["start"], old["end"], "confirmed")  # busy time stays
    kept = store.get_events(KEY, ["ours1"])["ours1"]
    assert (kept.summary, kept.attendees) == ("consulta", ["patient@example.com"])
    # Idempotent: nothing is left to scrub.
    assert run_cleanup(store=store, clock=clock, config=JOBS).people_content_scrubbed == 0
