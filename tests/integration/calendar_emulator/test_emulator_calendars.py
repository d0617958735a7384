"""Point 2: calendars and ACL — insert/get/delete, sharing with a person, calendarList entries."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import calendar, timed_event

OWNER = "clinic-admin@clinic.example"
DOCTOR = "dr.silva@clinic.example"
EVENT = timed_event("Consulta", "2030-01-07T10:00:00Z", "2030-01-07T11:00:00Z")


def _status(err: pytest.ExceptionInfo[HttpError]) -> tuple[int, str]:
    return err.value.resp.status, err.value.error_details[0]["reason"]


def test_insert_get_delete_calendar(calendar_base: str) -> None:
    api = calendar(calendar_base, user=OWNER)
    created = api.calendars().insert(body={"summary": "Sala 1", "timeZone": "America/Sao_Paulo"}).execute()
    assert created["kind"] == "calendar#calendar"
    assert created["id"].endswith("@group.calendar.google.com")
    got = api.calendars().get(calendarId=created["id"]).execute()
    assert (got["summary"], got["timeZone"]) == ("Sala 1", "America/Sao_Paulo")
    api.calendars().delete(calendarId=created["id"]).execute()
    with pytest.raises(HttpError) as err:
        api.calendars().get(calendarId=created["id"]).execute()
    assert _status(err) == (404, "notFound")


def test_unshared_calendar_is_invisible_and_acl_grants_access(calendar_base: str) -> None:
    owner = calendar(calendar_base, user=OWNER)
    doctor = calendar(calendar_base, user=DOCTOR)
    cal = owner.calendars().insert(body={"summary": "Dr Silva"}).execute()
    with pytest.raises(HttpError) as err:
        doctor.events().list(calendarId=cal["id"]).execute()
    assert _status(err) == (404, "notFound")
    assert cal["id"] not in [c["id"] for c in doctor.calendarList().list().execute()["items"]]

    rule = (
        owner.acl()
        .insert(calendarId=cal["id"], body={"role": "reader", "scope": {"type": "user", "value": DOCTOR}})
        .execute()
    )
    assert rule["id"] == f"user:{DOCTOR}"
    assert doctor.events().list(calendarId=cal["id"]).execute()["items"] == []
    entries = {c["id"]: c for c in doctor.calendarList().list().execute()["items"]}
    assert entries[cal["id"]]["accessRole"] == "reader"
    with pytest.raises(HttpError) as err:
        doctor.events().insert(calendarId=cal["id"], body=EVENT).execute()
    assert _status(err) == (403, "requiredAccessLevel")

    owner.acl().insert(
        calendarId=cal["id"], body={"role": "writer", "scope": {"type": "user", "value": DOCTOR}}
    ).execute()
    created = doctor.events().insert(calendarId=cal["id"], body=EVENT).execute()
    assert created["creator"]["email"] == DOCTOR
    roles = {r["id"]: r["role"] for r in owner.acl().list(calendarId=cal["id"]).execute()["items"]}
    assert roles == {f"user:{OWNER}": "owner", f"user:{DOCTOR}": "writer"}


def test_calendar_list_shows_owned_and_primary(calendar_base: str) -> None:
    api = calendar(calendar_base, user=OWNER)
    cal = api.calendars().insert(body={"summary": "Sala 2"}).execute()
    entries = {c["id"]: c for c in api.calendarList().list().execute()["items"]}
    assert entries[cal["id"]]["accessRole"] == "owner"
    assert entries[OWNER]["primary"] is True
    assert api.calendarList().get(calendarId=cal["id"]).execute()["summary"] == "Sala 2"
