"""Point 3: events — ids, insert/get/patch/update/delete, etags, tombstones, conference data."""

from __future__ import annotations

import re
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from .helpers import calendar, timed_event

USER = "recepcao@clinic.example"


def _status(err: pytest.ExceptionInfo[HttpError]) -> tuple[int, str]:
    return err.value.resp.status, err.value.error_details[0]["reason"]


def _setup(base: str) -> tuple[Any, str]:
    api = calendar(base, user=USER)
    return api, api.calendars().insert(body={"summary": "Sala"}).execute()["id"]


EVENT = timed_event("Consulta", "2030-01-07T10:00:00Z", "2030-01-07T11:00:00Z")


def test_generated_and_client_ids(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    generated = api.events().insert(calendarId=cal, body=EVENT).execute()
    assert re.fullmatch(r"[a-v0-9]{26}", generated["id"])
    mine = api.events().insert(calendarId=cal, body={**EVENT, "id": "clinic0abc123"}).execute()
    assert mine["id"] == "clinic0abc123"
    for bad in ("abcd", "UPPERCASE1", "with-dash1", "wxyz12345", "a" * 1025):
        with pytest.raises(HttpError) as err:
            api.events().insert(calendarId=cal, body={**EVENT, "id": bad}).execute()
        assert _status(err) == (400, "invalid"), bad
    assert api.events().insert(calendarId=cal, body={**EVENT, "id": "v" * 1024}).execute()["id"] == "v" * 1024


def test_reusing_an_id_is_409_even_after_delete(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    api.events().insert(calendarId=cal, body={**EVENT, "id": "dup00001"}).execute()
    with pytest.raises(HttpError) as err:
        api.events().insert(calendarId=cal, body={**EVENT, "id": "dup00001"}).execute()
    assert _status(err) == (409, "duplicate")
    api.events().delete(calendarId=cal, eventId="dup00001").execute()
    with pytest.raises(HttpError) as err:
        api.events().insert(calendarId=cal, body={**EVENT, "id": "dup00001"}).execute()
    assert _status(err) == (409, "duplicate")


def test_delete_leaves_tombstone_and_second_delete_is_410(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    ev = api.events().insert(calendarId=cal, body=EVENT).execute()
    api.events().delete(calendarId=cal, eventId=ev["id"]).execute()
    tomb = api.events().get(calendarId=cal, eventId=ev["id"]).execute()
    assert tomb["status"] == "cancelled"
    assert tomb["etag"] != ev["etag"]
    with pytest.raises(HttpError) as err:
        api.events().delete(calendarId=cal, eventId=ev["id"]).execute()
    assert _status(err) == (410, "deleted")
    with pytest.raises(HttpError) as err:
        api.events().get(calendarId=cal, eventId="nosuchevent1").execute()
    assert _status(err) == (404, "notFound")


def test_etag_updated_sequence_and_if_match(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    ev = api.events().insert(calendarId=cal, body=EVENT).execute()
    assert re.fullmatch(r'"\d+"', ev["etag"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev["updated"])
    assert ev["sequence"] == 0

    described = api.events().patch(calendarId=cal, eventId=ev["id"], body={"description": "x"}).execute()
    assert described["etag"] != ev["etag"]
    assert described["updated"] > ev["updated"]
    assert described["sequence"] == 0  # a description change does not reschedule

    moved_body = {
        **described,
        "start": {"dateTime": "2030-01-07T12:00:00Z"},
        "end": {"dateTime": "2030-01-07T13:00:00Z"},
    }
    moved = api.events().update(calendarId=cal, eventId=ev["id"], body=moved_body).execute()
    assert moved["sequence"] == 1
    assert moved["description"] == "x"

    stale = ev["etag"]
    for call in (
        api.events().update(calendarId=cal, eventId=ev["id"], body=moved_body),
        api.events().patch(calendarId=cal, eventId=ev["id"], body={"summary": "y"}),
        api.events().delete(calendarId=cal, eventId=ev["id"]),
    ):
        call.headers["If-Match"] = stale
        with pytest.raises(HttpError) as err:
            call.execute()
        assert _status(err) == (412, "conditionNotMet")

    ok = api.events().patch(calendarId=cal, eventId=ev["id"], body={"summary": "y"})
    ok.headers["If-Match"] = moved["etag"]
    assert ok.execute()["summary"] == "y"


def test_if_none_match_gives_304_and_cancelled_get(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    ev = api.events().insert(calendarId=cal, body=EVENT).execute()
    request = api.events().get(calendarId=cal, eventId=ev["id"])
    request.headers["If-None-Match"] = ev["etag"]
    with pytest.raises(HttpError) as err:
        request.execute()
    assert err.value.resp.status == 304
    request = api.events().get(calendarId=cal, eventId=ev["id"])
    request.headers["If-None-Match"] = '"1"'
    assert request.execute()["id"] == ev["id"]


def test_update_replaces_and_patch_merges(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = {
        **EVENT,
        "location": "Sala 3",
        "extendedProperties": {"private": {"calsync": "1", "alloc": "a1"}, "shared": {"s": "v"}},
        "attendees": [{"email": "paciente@example.com"}],
    }
    ev = api.events().insert(calendarId=cal, body=body).execute()
    assert ev["attendees"] == [{"email": "paciente@example.com"}]
    patched = (
        api.events()
        .patch(calendarId=cal, eventId=ev["id"], body={"extendedProperties": {"private": {"alloc": None, "v": "2"}}})
        .execute()
    )
    assert patched["extendedProperties"] == {"private": {"calsync": "1", "v": "2"}, "shared": {"s": "v"}}
    assert patched["location"] == "Sala 3"
    replaced = api.events().update(calendarId=cal, eventId=ev["id"], body=EVENT).execute()
    assert "location" not in replaced
    assert "extendedProperties" not in replaced
    assert replaced["creator"] == ev["creator"]
    assert replaced["created"] == ev["created"]


def test_all_day_and_time_zone_events(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    day = (
        api.events()
        .insert(
            calendarId=cal, body={"summary": "Feriado", "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}
        )
        .execute()
    )
    assert day["start"] == {"date": "2030-01-01"}
    local = (
        api.events()
        .insert(
            calendarId=cal,
            body={
                "summary": "Local",
                "start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "America/Sao_Paulo"},
                "end": {"dateTime": "2030-01-07T11:00:00", "timeZone": "America/Sao_Paulo"},
            },
        )
        .execute()
    )
    assert local["start"]["timeZone"] == "America/Sao_Paulo"
    with pytest.raises(HttpError) as err:
        api.events().insert(
            calendarId=cal,
            body={
                "summary": "x",
                "start": {"dateTime": "2030-01-07T10:00:00"},
                "end": {"dateTime": "2030-01-07T11:00:00"},
            },
        ).execute()
    assert err.value.resp.status == 400
    with pytest.raises(HttpError) as err:
        api.events().insert(
            calendarId=cal, body=timed_event("x", "2030-01-07T11:00:00Z", "2030-01-07T10:00:00Z")
        ).execute()
    assert _status(err) == (400, "timeRangeEmpty")


def test_conference_data_version_1_creates_meet_link(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = {
        **EVENT,
        "conferenceData": {"createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}},
    }
    ignored = api.events().insert(calendarId=cal, body=body).execute()
    assert "conferenceData" not in ignored
    assert "hangoutLink" not in ignored
    ev = api.events().insert(calendarId=cal, body=body, conferenceDataVersion=1).execute()
    video = [e for e in ev["conferenceData"]["entryPoints"] if e["entryPointType"] == "video"]
    assert len(video) == 1
    assert video[0]["uri"] == ev["hangoutLink"]
    assert re.fullmatch(r"https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}", ev["hangoutLink"])
    assert ev["conferenceData"]["createRequest"]["status"]["statusCode"] == "success"


def test_service_account_restrictions(calendar_base: str) -> None:
    api = calendar(calendar_base)  # the default service account, no delegation
    body = {
        **EVENT,
        "conferenceData": {"createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}},
    }
    with pytest.raises(HttpError) as err:
        api.events().insert(calendarId="primary", body=body, conferenceDataVersion=1).execute()
    assert _status(err) == (400, "invalid")
    with pytest.raises(HttpError) as err:
        api.events().insert(calendarId="primary", body={**EVENT, "attendees": [{"email": "p@example.com"}]}).execute()
    assert _status(err) == (403, "forbiddenForServiceAccounts")


def test_extended_property_limits(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    props = {"k" * 45: "dropped", "ok": "v" * 1100}
    ev = api.events().insert(calendarId=cal, body={**EVENT, "extendedProperties": {"private": props}}).execute()
    assert ev["extendedProperties"]["private"] == {"ok": "v" * 1024}


def test_update_restores_a_cancelled_event(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    ev = api.events().insert(calendarId=cal, body=EVENT).execute()
    api.events().delete(calendarId=cal, eventId=ev["id"]).execute()
    tomb = api.events().get(calendarId=cal, eventId=ev["id"]).execute()
    restored = (
        api.events().update(calendarId=cal, eventId=ev["id"], body={**EVENT, "sequence": tomb["sequence"]}).execute()
    )
    assert restored["status"] == "confirmed"
    assert [e["id"] for e in api.events().list(calendarId=cal).execute()["items"]] == [ev["id"]]
