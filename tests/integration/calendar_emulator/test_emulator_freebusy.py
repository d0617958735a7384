"""freebusy.query through google-api-python-client: busy intervals, errors and the freeBusyReader role."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import calendar, timed_event

OWNER = "dra.ana@clinic.example"
AGENDA = "agenda@clinic.example"
STRANGER = "outra@clinic.example"


def _query(api: object, *ids: str, tz: str | None = None, **window: str) -> dict[str, object]:
    body = {
        "timeMin": window.get("timeMin", "2030-03-04T00:00:00-03:00"),
        "timeMax": window.get("timeMax", "2030-03-09T00:00:00-03:00"),
        "items": [{"id": i} for i in ids],
    }
    if tz:
        body["timeZone"] = tz
    return api.freebusy().query(body=body).execute()  # type: ignore[attr-defined, no-any-return]


def test_busy_intervals_are_opaque_live_expanded_merged_and_clipped(calendar_base: str) -> None:
    api = calendar(calendar_base, user=OWNER)
    cal = api.calendars().insert(body={"summary": "Consultório", "timeZone": "America/Sao_Paulo"}).execute()["id"]
    ins = api.events().insert
    ins(calendarId=cal, body=timed_event("a", "2030-03-04T12:00:00Z", "2030-03-04T13:00:00Z")).execute()
    ins(calendarId=cal, body=timed_event("overlap", "2030-03-04T12:30:00Z", "2030-03-04T14:00:00Z")).execute()
    ins(calendarId=cal, body=timed_event("adjacent", "2030-03-04T14:00:00Z", "2030-03-04T14:30:00Z")).execute()
    ins(
        calendarId=cal,
        body=timed_event("free", "2030-03-05T12:00:00Z", "2030-03-05T13:00:00Z", transparency="transparent"),
    ).execute()
    gone = ins(calendarId=cal, body=timed_event("gone", "2030-03-05T15:00:00Z", "2030-03-05T16:00:00Z")).execute()
    api.events().delete(calendarId=cal, eventId=gone["id"]).execute()
    ins(
        calendarId=cal, body={"summary": "férias", "start": {"date": "2030-03-06"}, "end": {"date": "2030-03-07"}}
    ).execute()
    lunch = {
        "summary": "almoço",
        "start": {"dateTime": "2030-03-07T12:00:00", "timeZone": "America/Sao_Paulo"},
        "end": {"dateTime": "2030-03-07T13:00:00", "timeZone": "America/Sao_Paulo"},
        "recurrence": ["RRULE:FREQ=DAILY"],
    }
    ins(calendarId=cal, body=lunch).execute()
    ins(calendarId=cal, body=timed_event("early", "2030-03-03T20:00:00Z", "2030-03-04T04:00:00Z")).execute()
    answer = _query(api, cal)
    assert answer["kind"] == "calendar#freeBusy"
    assert answer["timeMin"] == "2030-03-04T03:00:00Z"
    assert answer["timeMax"] == "2030-03-09T03:00:00Z"
    assert answer["calendars"] == {
        cal: {
            "busy": [
                {"start": "2030-03-04T03:00:00Z", "end": "2030-03-04T04:00:00Z"},  # clipped at timeMin
                {"start": "2030-03-04T12:00:00Z", "end": "2030-03-04T14:30:00Z"},  # merged
                {"start": "2030-03-06T03:00:00Z", "end": "2030-03-07T03:00:00Z"},  # the whole day in São Paulo
                {"start": "2030-03-07T15:00:00Z", "end": "2030-03-07T16:00:00Z"},
                {"start": "2030-03-08T15:00:00Z", "end": "2030-03-08T16:00:00Z"},
            ]
        }
    }
    local = _query(api, cal, tz="America/Sao_Paulo")["calendars"][cal]["busy"]  # type: ignore[index]
    assert local[2] == {"start": "2030-03-06T00:00:00-03:00", "end": "2030-03-07T00:00:00-03:00"}


def test_moved_and_cancelled_instances_and_status_events(calendar_base: str) -> None:
    api = calendar(calendar_base, user=OWNER)
    block = {
        "summary": "bloco",
        "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "America/Sao_Paulo"},
        "end": {"dateTime": "2030-03-04T10:00:00", "timeZone": "America/Sao_Paulo"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
    }
    sid = api.events().insert(calendarId="primary", body=block).execute()["id"]
    api.events().delete(calendarId="primary", eventId=f"{sid}_20300305T120000Z").execute()
    api.events().patch(
        calendarId="primary",
        eventId=f"{sid}_20300306T120000Z",
        body={"start": {"dateTime": "2030-03-06T18:00:00Z"}, "end": {"dateTime": "2030-03-06T19:00:00Z"}},
    ).execute()
    api.events().insert(
        calendarId="primary",
        body=timed_event("fora", "2030-03-07T11:00:00Z", "2030-03-07T21:00:00Z", eventType="outOfOffice"),
    ).execute()
    api.events().insert(
        calendarId="primary",
        body={
            "start": {"date": "2030-03-08"},
            "end": {"date": "2030-03-09"},
            "eventType": "workingLocation",
            "workingLocationProperties": {"type": "homeOffice"},
        },
    ).execute()
    busy = _query(api, "primary")["calendars"]["primary"]["busy"]  # type: ignore[index]
    assert busy == [
        {"start": "2030-03-04T12:00:00Z", "end": "2030-03-04T13:00:00Z"},
        {"start": "2030-03-06T18:00:00Z", "end": "2030-03-06T19:00:00Z"},
        {"start": "2030-03-07T11:00:00Z", "end": "2030-03-07T21:00:00Z"},
    ]


def test_free_busy_reader_sees_busy_time_and_nothing_else(calendar_base: str) -> None:
    ana = calendar(calendar_base, user=OWNER)
    ana.events().insert(
        calendarId="primary", body=timed_event("x", "2030-03-04T12:00:00Z", "2030-03-04T13:00:00Z")
    ).execute()
    ana.acl().insert(
        calendarId="primary", body={"role": "freeBusyReader", "scope": {"type": "user", "value": AGENDA}}
    ).execute()
    agenda = calendar(calendar_base, user=AGENDA)
    answer = _query(agenda, OWNER, STRANGER, "nobody@clinic.example")["calendars"]
    assert answer[OWNER] == {"busy": [{"start": "2030-03-04T12:00:00Z", "end": "2030-03-04T13:00:00Z"}]}
    not_found = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
    assert answer[STRANGER] == not_found
    assert answer["nobody@clinic.example"] == not_found
    for call in (
        agenda.events().list(calendarId=OWNER),
        agenda.events().get(calendarId=OWNER, eventId="abcdefgh"),
        agenda.calendars().get(calendarId=OWNER),
    ):
        with pytest.raises(HttpError) as err:
            call.execute()
        assert (err.value.resp.status, err.value.error_details[0]["reason"]) == (404, "notFound")
    stranger = calendar(calendar_base, user=STRANGER)
    assert _query(stranger, OWNER)["calendars"][OWNER] == not_found  # type: ignore[index]


def test_request_errors_and_the_fifty_calendar_limit(calendar_base: str) -> None:
    api = calendar(calendar_base, user=OWNER)
    with pytest.raises(HttpError) as err:
        api.freebusy().query(body={"timeMax": "2030-03-04T00:00:00Z", "items": [{"id": "primary"}]}).execute()
    assert (err.value.resp.status, err.value.error_details[0]["reason"]) == (400, "required")
    with pytest.raises(HttpError) as err:
        _query(api, "primary", timeMin="2030-03-05T00:00:00Z", timeMax="2030-03-04T00:00:00Z")
    assert err.value.error_details[0]["reason"] == "timeRangeEmpty"
    ids = ["primary"] + [f"p{n}@clinic.example" for n in range(50)]
    answer = _query(api, *ids)["calendars"]
    assert answer["primary"] == {"busy": []}  # type: ignore[index]
    assert answer["p48@clinic.example"]["errors"][0]["reason"] == "notFound"  # type: ignore[index]
    assert answer["p49@clinic.example"]["errors"][0]["reason"] == "tooManyCalendarsRequested"  # type: ignore[index]
