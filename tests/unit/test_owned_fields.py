"""Which fields calsync writes: ``merged_body`` replaces only calsync's fields of Google's version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.model import GoogleEvent, PublishedSnapshot
from calsync.services.classify import diverging_kinds
from calsync.services.our_events import Desired, merged_body

T0 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
TAGS = {"source": "agendador", "env": "dev", "allocation_id": "a1", "calsync_schema": "1"}


def current() -> GoogleEvent:
    return GoogleEvent.model_validate(
        {
            "id": "ev1",
            "etag": '"7"',
            "updated": "2026-03-02T10:00:00Z",
            "htmlLink": "https://calendar.google.com/ev1",
            "summary": "consulta",
            "description": "bring the x-rays",
            "location": "Sala 3",
            "colorId": "11",
            "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 45}]},
            "conferenceData": {"conferenceId": "aaa-bbbb-ccc"},
            "start": {"dateTime": T0.isoformat()},
            "end": {"dateTime": (T0 + timedelta(hours=1)).isoformat()},
            "attendees": [
                {"email": "Stays@clinic.test", "responseStatus": "accepted", "comment": "ok"},
                {"email": "goes@clinic.test", "responseStatus": "declined"},
            ],
            "extendedProperties": {"private": {**TAGS, "other_app": "keep"}, "shared": {"x": "1"}},
        }
    )


def test_only_calsyncs_fields_change_and_attendees_keep_their_answer() -> None:
    desired = Desired(
        "consulta 2", T0 + timedelta(hours=2), T0 + timedelta(hours=3), ("new@clinic.test", "stays@clinic.test")
    )
    body = merged_body(current(), "dev", "a1", "ev1", desired, clinic_id="c1")
    assert (body["summary"], body["status"]) == ("consulta 2", "confirmed")
    assert body["start"] == {"dateTime": desired.start.isoformat()}
    for name in ("description", "location", "colorId", "reminders", "conferenceData"):
        assert body[name] == current().to_api()[name]
    assert body["attendees"] == [
        {"email": "new@clinic.test"},
        {"email": "Stays@clinic.test", "responseStatus": "accepted", "comment": "ok"},
    ]
    # Our tags are rewritten at the current schema (with the clinic); other apps' properties are kept.
    tags = {**TAGS, "calsync_schema": "2", "clinic_id": "c1", "other_app": "keep"}
    assert body["extendedProperties"] == {"private": tags, "shared": {"x": "1"}}
    assert not {"etag", "updated", "htmlLink"} & set(body)


def test_a_persons_own_fields_are_no_divergence_but_a_title_is() -> None:
    snapshot = PublishedSnapshot(
        etag='"6"',
        start=T0,
        end=T0 + timedelta(hours=1),
        summary="consulta",
        attendees=["goes@clinic.test", "stays@clinic.test"],
    )
    assert diverging_kinds(current(), snapshot) == set()
    retitled = current().model_copy(update={"summary": "retorno"})
    assert diverging_kinds(retitled, snapshot) == {"title_changed"}
    # A snapshot from before titles were recorded never reports a title change.
    assert diverging_kinds(retitled, snapshot.model_copy(update={"summary": None})) == set()
