"""Transparency, event types (status events on primary calendars only) and the eventTypes list filter."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from .helpers import calendar, timed_event

USER = "dra.ana@clinic.example"


def _ooo(**extra: Any) -> dict[str, Any]:
    return timed_event(
        "Férias",
        "2030-02-04T00:00:00-03:00",
        "2030-02-06T00:00:00-03:00",
        eventType="outOfOffice",
        outOfOfficeProperties={"autoDeclineMode": "declineOnlyNewConflictingInvitations", "declineMessage": "Férias"},
        **extra,
    )


def test_transparency_is_echoed_and_validated(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    plain = (
        api.events()
        .insert(calendarId="primary", body=timed_event("a", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"))
        .execute()
    )
    assert "transparency" not in plain  # absent means opaque, Google's default
    assert plain["eventType"] == "default"
    free = timed_event("b", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z", transparency="transparent")
    assert api.events().insert(calendarId="primary", body=free).execute()["transparency"] == "transparent"
    busy = timed_event("c", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z", transparency="opaque")
    assert api.events().insert(calendarId="primary", body=busy).execute()["transparency"] == "opaque"
    with pytest.raises(HttpError) as err:
        api.events().insert(
            calendarId="primary",
            body=timed_event("d", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z", transparency="x"),
        ).execute()
    assert err.value.resp.status == 400


def test_status_events_only_on_primary_calendars(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    ooo = api.events().insert(calendarId="primary", body=_ooo()).execute()
    assert ooo["eventType"] == "outOfOffice"
    assert ooo["outOfOfficeProperties"]["autoDeclineMode"] == "declineOnlyNewConflictingInvitations"
    focus = (
        api.events()
        .insert(
            calendarId="primary",
            body=timed_event("foco", "2030-02-07T09:00:00Z", "2030-02-07T11:00:00Z", eventType="focusTime"),
        )
        .execute()
    )
    assert focus["eventType"] == "focusTime"
    where = (
        api.events()
        .insert(
            calendarId="primary",
            body={
                "start": {"date": "2030-02-07"},
                "end": {"date": "2030-02-08"},
                "eventType": "workingLocation",
                "visibility": "public",
                "workingLocationProperties": {"type": "officeLocation", "officeLocation": {"label": "Clínica"}},
            },
        )
        .execute()
    )
    assert (where["eventType"], where["transparency"]) == ("workingLocation", "transparent")
    secondary = api.calendars().insert(body={"summary": "Agenda"}).execute()["id"]
    for body in (_ooo(), timed_event("foco", "2030-02-07T09:00:00Z", "2030-02-07T11:00:00Z", eventType="focusTime")):
        with pytest.raises(HttpError) as err:
            api.events().insert(calendarId=secondary, body=body).execute()
        assert (err.value.resp.status, err.value.error_details[0]["reason"]) == (400, "eventTypeRestriction")


@pytest.mark.parametrize(
    "body",
    [
        # outOfOfficeProperties only with eventType outOfOffice
        timed_event("x", "2030-02-04T09:00:00Z", "2030-02-04T10:00:00Z", outOfOfficeProperties={}),
        # out of office cannot be all-day
        {"start": {"date": "2030-02-04"}, "end": {"date": "2030-02-05"}, "eventType": "outOfOffice"},
        # out of office blocks time
        _ooo(transparency="transparent"),
        timed_event("x", "2030-02-04T09:00:00Z", "2030-02-04T10:00:00Z", eventType="vacation"),
        timed_event("x", "2030-02-04T09:00:00Z", "2030-02-04T10:00:00Z", eventType="fromGmail"),
    ],
)
def test_invalid_event_type_combinations_are_400(calendar_base: str, body: dict[str, Any]) -> None:
    api = calendar(calendar_base, user=USER)
    with pytest.raises(HttpError) as err:
        api.events().insert(calendarId="primary", body=body).execute()
    assert err.value.resp.status == 400


def test_event_type_cannot_change(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    ooo = api.events().insert(calendarId="primary", body=_ooo()).execute()
    with pytest.raises(HttpError) as err:
        api.events().patch(calendarId="primary", eventId=ooo["id"], body={"eventType": "default"}).execute()
    assert err.value.resp.status == 400
    kept = api.events().patch(calendarId="primary", eventId=ooo["id"], body={"summary": "Congresso"}).execute()
    assert kept["eventType"] == "outOfOffice"
    full = {k: v for k, v in kept.items() if k != "eventType"}
    assert (
        api.events().update(calendarId="primary", eventId=ooo["id"], body=full).execute()["eventType"] == "outOfOffice"
    )


def test_event_types_filter_is_repeatable(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    api.events().insert(
        calendarId="primary", body=timed_event("a", "2030-02-03T09:00:00Z", "2030-02-03T10:00:00Z")
    ).execute()
    api.events().insert(calendarId="primary", body=_ooo()).execute()
    api.events().insert(
        calendarId="primary",
        body=timed_event("foco", "2030-02-07T09:00:00Z", "2030-02-07T11:00:00Z", eventType="focusTime"),
    ).execute()

    def types(**params: Any) -> list[str]:
        items = api.events().list(calendarId="primary", singleEvents=True, orderBy="startTime", **params).execute()
        return [i["eventType"] for i in items["items"]]

    assert types() == ["default", "outOfOffice", "focusTime"]
    assert types(eventTypes="outOfOffice") == ["outOfOffice"]
    assert types(eventTypes=["default", "focusTime"]) == ["default", "focusTime"]
    # The client refuses unknown types itself; the server answers 400 to anyone who sends one.
    raw = requests.get(
        f"{calendar_base}/calendar/v3/calendars/primary/events",
        params={"eventTypes": "holiday"},
        headers={"X-Emulator-User": USER},
        timeout=10,
    )
    assert (raw.status_code, raw.json()["error"]["errors"][0]["location"]) == (400, "eventTypes")
