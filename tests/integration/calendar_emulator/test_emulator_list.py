"""Point 4: events.list semantics — time window, ordering, deleted, q, paging, extended properties, fields."""

from __future__ import annotations

from typing import Any

import pytest
from googleapiclient.errors import HttpError

from .helpers import calendar, new_batch, timed_event

USER = "recepcao@clinic.example"


def _setup(base: str) -> tuple[Any, str]:
    api = calendar(base, user=USER)
    return api, api.calendars().insert(body={"summary": "Sala"}).execute()["id"]


def _summaries(response: dict[str, Any]) -> list[str]:
    return [e["summary"] for e in response["items"]]


def test_time_window_bounds_are_exclusive(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    api.events().insert(
        calendarId=cal, body=timed_event("early", "2030-01-07T08:00:00Z", "2030-01-07T09:00:00Z")
    ).execute()
    api.events().insert(
        calendarId=cal, body=timed_event("mid", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z")
    ).execute()
    api.events().insert(
        calendarId=cal, body=timed_event("late", "2030-01-07T10:00:00Z", "2030-01-07T11:00:00Z")
    ).execute()
    window = api.events().list(calendarId=cal, timeMin="2030-01-07T09:00:00Z", timeMax="2030-01-07T10:00:00Z").execute()
    assert _summaries(window) == ["mid"]  # "early" ends at timeMin, "late" starts at timeMax
    offset = api.events().list(calendarId=cal, timeMin="2030-01-07T07:00:00-03:00").execute()
    assert _summaries(offset) == ["late"]


def test_empty_or_malformed_range_is_400(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    with pytest.raises(HttpError) as err:
        api.events().list(calendarId=cal, timeMin="2030-01-07T10:00:00Z", timeMax="2030-01-07T10:00:00Z").execute()
    assert (err.value.resp.status, err.value.error_details[0]["reason"]) == (400, "timeRangeEmpty")
    with pytest.raises(HttpError) as err:
        api.events().list(calendarId=cal, timeMin="2030-01-07T10:00:00").execute()
    assert err.value.resp.status == 400


def test_order_by_and_single_events(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    b = (
        api.events()
        .insert(calendarId=cal, body=timed_event("b", "2030-01-08T09:00:00Z", "2030-01-08T10:00:00Z"))
        .execute()
    )
    api.events().insert(calendarId=cal, body=timed_event("a", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z")).execute()
    by_start = api.events().list(calendarId=cal, singleEvents=True, orderBy="startTime").execute()
    assert _summaries(by_start) == ["a", "b"]
    api.events().patch(calendarId=cal, eventId=b["id"], body={"description": "touched"}).execute()
    assert _summaries(api.events().list(calendarId=cal, orderBy="updated").execute()) == ["a", "b"]
    with pytest.raises(HttpError) as err:
        api.events().list(calendarId=cal, orderBy="startTime").execute()
    assert err.value.resp.status == 400


def test_show_deleted_and_q(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    gone = (
        api.events()
        .insert(calendarId=cal, body=timed_event("Retorno Maria", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"))
        .execute()
    )
    api.events().insert(
        calendarId=cal,
        body=timed_event("Consulta Joao", "2030-01-07T11:00:00Z", "2030-01-07T12:00:00Z", location="Sala Azul"),
    ).execute()
    api.events().delete(calendarId=cal, eventId=gone["id"]).execute()
    assert _summaries(api.events().list(calendarId=cal).execute()) == ["Consulta Joao"]
    with_deleted = api.events().list(calendarId=cal, showDeleted=True).execute()
    assert {(e["summary"], e["status"]) for e in with_deleted["items"]} == {
        ("Retorno Maria", "cancelled"),
        ("Consulta Joao", "confirmed"),
    }
    assert _summaries(api.events().list(calendarId=cal, q="joao azul").execute()) == ["Consulta Joao"]
    assert api.events().list(calendarId=cal, q="maria").execute()["items"] == []


def test_paging_default_cap_and_tokens(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    batch = new_batch(calendar_base)
    for i in range(260):
        batch.add(
            api.events().insert(
                calendarId=cal, body=timed_event(f"e{i}", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z")
            )
        )
    batch.execute()
    first = api.events().list(calendarId=cal).execute()
    assert len(first["items"]) == 250
    assert "nextSyncToken" not in first
    second = api.events().list(calendarId=cal, pageToken=first["nextPageToken"]).execute()
    assert len(second["items"]) == 10
    assert "nextPageToken" not in second
    assert second["nextSyncToken"]
    capped = api.events().list(calendarId=cal, maxResults=5000).execute()
    assert len(capped["items"]) == 260  # the cap is 2500, so everything fits
    pages, token = [], None
    while True:
        page = api.events().list(calendarId=cal, maxResults=100, pageToken=token).execute()
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            break
    assert [len(p["items"]) for p in pages] == [100, 100, 60]
    assert len({e["id"] for p in pages for e in p["items"]}) == 260


def test_repeated_private_extended_property_filters_are_anded(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    for name, props in (
        ("both", {"calsync": "1", "env": "dev"}),
        ("one", {"calsync": "1", "env": "prod"}),
        ("none", {}),
    ):
        api.events().insert(
            calendarId=cal,
            body=timed_event(
                name, "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z", extendedProperties={"private": props}
            ),
        ).execute()
    single = api.events().list(calendarId=cal, privateExtendedProperty="calsync=1").execute()
    assert sorted(_summaries(single)) == ["both", "one"]
    both = api.events().list(calendarId=cal, privateExtendedProperty=["calsync=1", "env=dev"]).execute()
    assert _summaries(both) == ["both"]
    assert api.events().list(calendarId=cal, sharedExtendedProperty="calsync=1").execute()["items"] == []


def test_partial_response_fields(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    api.events().insert(
        calendarId=cal, body=timed_event("x", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z", location="L")
    ).execute()
    resp = api.events().list(calendarId=cal, fields="items(id,summary,start/dateTime),nextSyncToken").execute()
    assert set(resp) == {"items", "nextSyncToken"}
    assert set(resp["items"][0]) == {"id", "summary", "start"}
    assert set(resp["items"][0]["start"]) == {"dateTime"}


def test_updated_min_includes_deleted_entries(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    old = (
        api.events()
        .insert(calendarId=cal, body=timed_event("old", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"))
        .execute()
    )
    gone = (
        api.events()
        .insert(calendarId=cal, body=timed_event("gone", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"))
        .execute()
    )
    api.events().delete(calendarId=cal, eventId=gone["id"]).execute()
    tomb = api.events().get(calendarId=cal, eventId=gone["id"]).execute()
    since = api.events().list(calendarId=cal, updatedMin=tomb["updated"]).execute()
    assert [(e["id"], e["status"]) for e in since["items"]] == [(gone["id"], "cancelled")]
    assert old["id"] not in [e["id"] for e in since["items"]]
