"""Which of people's events block time against our events (``classify.busy`` / ``overlap_conflict``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calsync.model import GoogleEvent, MirrorEvent
from calsync.services.classify import classify_event, overlap_conflict

START = datetime(2030, 3, 4, 13, tzinfo=UTC)
OURS = MirrorEvent(
    calendar_key="k",
    external_id="ours",
    google_calendar_id="g",
    start=START,
    end=START + timedelta(hours=1),
    origin="system",
    allocation_id="a1",
)


def person(**fields: object) -> MirrorEvent:
    base = {
        "calendar_key": "k",
        "external_id": "p",
        "google_calendar_id": "g",
        "origin": "manual",
        "start": START - timedelta(minutes=30),
        "end": START + timedelta(minutes=30),
    }
    return MirrorEvent.model_validate(base | fields)


@pytest.mark.parametrize(
    ("fields", "blocks"),
    [
        ({}, True),
        ({"transparency": "opaque"}, True),
        ({"event_type": "outOfOffice"}, True),
        ({"event_type": "focusTime"}, True),
        ({"transparency": "transparent"}, False),
        ({"event_type": "workingLocation"}, False),
        ({"status": "cancelled"}, False),
        ({"all_day": True, "start": START.replace(hour=3), "end": START.replace(hour=3) + timedelta(days=2)}, True),
    ],
)
def test_what_blocks_time(fields: dict[str, object], blocks: bool) -> None:
    assert (overlap_conflict(person(**fields), [OURS]) is not None) == blocks


def test_an_all_day_day_is_the_clinic_zones_day_and_a_persons_title_and_guests_are_not_kept() -> None:
    event = GoogleEvent.model_validate(
        {
            "id": "folga0001",
            "etag": "1",
            "summary": "Folga",
            "attendees": [{"email": "friend@example.com"}],
            "start": {"date": "2030-03-04"},
            "end": {"date": "2030-03-06"},
        }
    )
    decision = classify_event(
        event, None, calendar_key="k", google_calendar_id="g", env="dev", now=START, tz=ZoneInfo("America/Sao_Paulo")
    )
    mirror = decision.mirror
    assert mirror is not None
    assert (mirror.start, mirror.end) == (datetime(2030, 3, 4, 3, tzinfo=UTC), datetime(2030, 3, 6, 3, tzinfo=UTC))
    assert (mirror.all_day, mirror.summary, mirror.attendees) == (True, None, [])
