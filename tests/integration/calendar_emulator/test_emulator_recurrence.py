"""Recurring events through google-api-python-client: expansion, instance ids, events.instances, exceptions."""

from __future__ import annotations

from typing import Any

import pytest
from googleapiclient.errors import HttpError

from .helpers import calendar, timed_event

USER = "recepcao@clinic.example"
NY = "America/New_York"


def _setup(base: str, tz: str = "America/Sao_Paulo") -> tuple[Any, str]:
    api = calendar(base, user=USER)
    return api, api.calendars().insert(body={"summary": "Sala", "timeZone": tz}).execute()["id"]


def _series(summary: str, start: str, end: str, rules: list[str], tz: str = NY, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": start, "timeZone": tz},
        "end": {"dateTime": end, "timeZone": tz},
        "recurrence": rules,
        **extra,
    }


def _all(api: Any, cal: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = api.events().list(calendarId=cal, pageToken=token, **params).execute()
        items.extend(page["items"])
        token = page.get("nextPageToken")
        if not token:
            return items


def _sync(api: Any, cal: str, token: str, **params: Any) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    page_token = None
    while True:
        page = api.events().list(calendarId=cal, syncToken=token, pageToken=page_token, **params).execute()
        items.extend(page["items"])
        page_token = page.get("nextPageToken")
        if not page_token:
            return items, page["nextSyncToken"]


def test_single_events_expands_in_the_events_zone_across_dst(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("almoço", "2030-03-08T12:00:00", "2030-03-08T13:00:00", ["RRULE:FREQ=DAILY;COUNT=4"])
    master = api.events().insert(calendarId=cal, body=body).execute()
    items = api.events().list(calendarId=cal, singleEvents=True, orderBy="startTime").execute()["items"]
    sid = master["id"]
    # New York leaves EST for EDT on 2030-03-10: 12:00 local stays 12:00, its UTC instant moves.
    assert [i["id"] for i in items] == [
        f"{sid}_20300308T170000Z",
        f"{sid}_20300309T170000Z",
        f"{sid}_20300310T160000Z",
        f"{sid}_20300311T160000Z",
    ]
    third = items[2]
    assert third["start"] == {"dateTime": "2030-03-10T12:00:00-04:00", "timeZone": NY}
    assert third["end"] == {"dateTime": "2030-03-10T13:00:00-04:00", "timeZone": NY}
    assert third["originalStartTime"] == third["start"]
    assert third["recurringEventId"] == sid
    assert third["iCalUID"] == master["iCalUID"]
    assert "recurrence" not in third
    masters = api.events().list(calendarId=cal, singleEvents=False).execute()["items"]
    assert [(m["id"], m["recurrence"]) for m in masters] == [(sid, ["RRULE:FREQ=DAILY;COUNT=4"])]


def test_all_day_series_ids_exdate_rdate_and_start_order_with_single_events(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    weekly = {
        "summary": "plantão",
        "start": {"date": "2030-01-07"},
        "end": {"date": "2030-01-08"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE;VALUE=DATE:20300114", "RDATE;VALUE=DATE:20300116"],
    }
    sid = api.events().insert(calendarId=cal, body=weekly).execute()["id"]
    api.events().insert(
        calendarId=cal, body=timed_event("single", "2030-01-15T12:00:00Z", "2030-01-15T13:00:00Z")
    ).execute()
    items = api.events().list(calendarId=cal, singleEvents=True, orderBy="startTime").execute()["items"]
    assert [i["id"] if i["summary"] == "plantão" else "single" for i in items] == [
        f"{sid}_20300107",
        "single",
        f"{sid}_20300116",
        f"{sid}_20300121",
    ]
    assert items[0]["start"] == {"date": "2030-01-07"}
    assert items[0]["end"] == {"date": "2030-01-08"}
    assert items[0]["originalStartTime"] == {"date": "2030-01-07"}


def test_an_infinite_series_is_bounded_by_the_window_or_a_year_ahead(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("ponto", "2030-01-01T09:00:00", "2030-01-01T09:15:00", ["RRULE:FREQ=DAILY"])
    api.events().insert(calendarId=cal, body=body).execute()
    window = _all(api, cal, singleEvents=True, timeMin="2030-02-01T00:00:00-05:00", timeMax="2030-02-08T00:00:00-05:00")
    assert [i["start"]["dateTime"][:10] for i in window] == [f"2030-02-0{d}" for d in range(1, 8)]
    unbounded = _all(api, cal, singleEvents=True, maxResults=2500)
    assert 366 <= len(unbounded) <= 368  # one year after the series starts (it starts in the future)
    masters = _all(api, cal, timeMin="2031-06-01T00:00:00Z", timeMax="2031-06-02T00:00:00Z")
    assert len(masters) == 1  # without singleEvents the master matches any window its series reaches


def test_events_instances_window_paging_and_deleted(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("reunião", "2030-05-06T10:00:00", "2030-05-06T11:00:00", ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE"])
    sid = api.events().insert(calendarId=cal, body=body).execute()["id"]
    first = api.events().instances(calendarId=cal, eventId=sid, timeMax="2030-05-20T00:00:00Z", maxResults=2).execute()
    assert [i["id"] for i in first["items"]] == [f"{sid}_20300506T140000Z", f"{sid}_20300508T140000Z"]
    rest = (
        api.events()
        .instances(calendarId=cal, eventId=sid, timeMax="2030-05-20T00:00:00Z", pageToken=first["nextPageToken"])
        .execute()
    )
    assert [i["id"] for i in rest["items"]] == [f"{sid}_20300513T140000Z", f"{sid}_20300515T140000Z"]
    assert "nextPageToken" not in rest
    api.events().delete(calendarId=cal, eventId=f"{sid}_20300508T140000Z").execute()
    window = {"timeMin": "2030-05-06T00:00:00Z", "timeMax": "2030-05-14T00:00:00Z"}
    live = api.events().instances(calendarId=cal, eventId=sid, **window).execute()["items"]
    assert [i["id"][-16:] for i in live] == ["20300506T140000Z", "20300513T140000Z"]
    shown = api.events().instances(calendarId=cal, eventId=sid, showDeleted=True, **window).execute()["items"]
    assert [(i["id"][-16:], i["status"]) for i in shown] == [
        ("20300506T140000Z", "confirmed"),
        ("20300508T140000Z", "cancelled"),
        ("20300513T140000Z", "confirmed"),
    ]
    one = api.events().instances(calendarId=cal, eventId=sid, originalStart="2030-05-13T10:00:00-04:00").execute()
    assert [i["id"] for i in one["items"]] == [f"{sid}_20300513T140000Z"]
    with pytest.raises(HttpError) as err:
        api.events().instances(calendarId=cal, eventId="nosuchevent1").execute()
    assert err.value.resp.status == 404


def test_moving_and_cancelling_instances_make_exceptions(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("consulta", "2030-06-03T09:00:00", "2030-06-03T10:00:00", ["RRULE:FREQ=DAILY;COUNT=3"])
    master = api.events().insert(calendarId=cal, body=body).execute()
    sid = master["id"]
    moved_id, gone_id = f"{sid}_20300604T130000Z", f"{sid}_20300605T130000Z"
    got = api.events().get(calendarId=cal, eventId=moved_id).execute()
    assert (got["etag"], got["sequence"], got["status"]) == (master["etag"], master["sequence"], "confirmed")
    moved = (
        api.events()
        .patch(
            calendarId=cal,
            eventId=moved_id,
            body={"start": {"dateTime": "2030-06-04T15:00:00-04:00"}, "end": {"dateTime": "2030-06-04T16:00:00-04:00"}},
        )
        .execute()
    )
    assert moved["id"] == moved_id
    assert moved["recurringEventId"] == sid
    assert moved["originalStartTime"] == {"dateTime": "2030-06-04T09:00:00-04:00", "timeZone": NY}
    assert moved["sequence"] == master["sequence"] + 1
    assert moved["etag"] != master["etag"]
    api.events().delete(calendarId=cal, eventId=gone_id).execute()
    assert api.events().get(calendarId=cal, eventId=gone_id).execute()["status"] == "cancelled"
    with pytest.raises(HttpError) as err:
        api.events().delete(calendarId=cal, eventId=gone_id).execute()
    assert err.value.resp.status == 410
    listed = api.events().list(calendarId=cal, singleEvents=True, orderBy="startTime").execute()["items"]
    assert [(i["id"], i["start"]["dateTime"]) for i in listed] == [
        (f"{sid}_20300603T130000Z", "2030-06-03T09:00:00-04:00"),
        (moved_id, "2030-06-04T15:00:00-04:00"),
    ]
    with_deleted = api.events().list(calendarId=cal, singleEvents=True, showDeleted=True).execute()["items"]
    assert {i["id"]: i["status"] for i in with_deleted}[gone_id] == "cancelled"
    # Without singleEvents: the master and its exceptions; cancelled ones even without showDeleted.
    plain = api.events().list(calendarId=cal).execute()["items"]
    assert [(i["id"], i["status"]) for i in plain] == [
        (sid, "confirmed"),
        (moved_id, "confirmed"),
        (gone_id, "cancelled"),
    ]
    with pytest.raises(HttpError) as err:
        api.events().get(calendarId=cal, eventId=f"{sid}_20300604T140000Z").execute()  # not an occurrence
    assert err.value.resp.status == 404


def test_if_match_on_an_instance_and_etags_follow_the_series(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("aula", "2030-07-01T18:00:00", "2030-07-01T19:00:00", ["RRULE:FREQ=WEEKLY;COUNT=4"])
    master = api.events().insert(calendarId=cal, body=body).execute()
    iid = f"{master['id']}_20300708T220000Z"
    stale = api.events().get(calendarId=cal, eventId=iid).execute()["etag"]
    api.events().patch(calendarId=cal, eventId=master["id"], body={"summary": "aula de yoga"}).execute()
    fresh = api.events().get(calendarId=cal, eventId=iid).execute()
    assert fresh["etag"] != stale
    assert fresh["summary"] == "aula de yoga"
    request = api.events().patch(calendarId=cal, eventId=iid, body={"summary": "x"})
    request.headers["If-Match"] = stale
    with pytest.raises(HttpError) as err:
        request.execute()
    assert (err.value.resp.status, err.value.error_details[0]["reason"]) == (412, "conditionNotMet")
    request = api.events().delete(calendarId=cal, eventId=iid)
    request.headers["If-Match"] = fresh["etag"]
    request.execute()
    assert api.events().get(calendarId=cal, eventId=iid).execute()["status"] == "cancelled"


def test_series_edits_reach_unchanged_instances_and_incremental_listings(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("grupo", "2030-08-05T14:00:00", "2030-08-05T15:00:00", ["RRULE:FREQ=WEEKLY;COUNT=3"])
    sid = api.events().insert(calendarId=cal, body=body).execute()["id"]
    first = _all(api, cal, singleEvents=True)
    token = api.events().list(calendarId=cal, singleEvents=True).execute()["nextSyncToken"]
    assert len(first) == 3
    moved_id = f"{sid}_20300812T180000Z"
    api.events().patch(calendarId=cal, eventId=moved_id, body={"summary": "grupo (sala 2)"}).execute()
    changes, token = _sync(api, cal, token, singleEvents=True)
    assert [(c["id"], c["summary"]) for c in changes] == [(moved_id, "grupo (sala 2)")]
    api.events().patch(calendarId=cal, eventId=sid, body={"location": "Sala 3"}).execute()
    changes, token = _sync(api, cal, token, singleEvents=True, maxResults=1)
    # The series changed: its unchanged instances come back (one per page here), the exception keeps its edit.
    assert sorted(c["id"][-16:] for c in changes) == ["20300805T180000Z", "20300819T180000Z"]
    assert all(c["location"] == "Sala 3" for c in changes)
    assert api.events().get(calendarId=cal, eventId=moved_id).execute().get("location") is None
    api.events().delete(calendarId=cal, eventId=f"{sid}_20300819T180000Z").execute()
    changes, token = _sync(api, cal, token, singleEvents=True)
    assert [(c["id"][-16:], c["status"]) for c in changes] == [("20300819T180000Z", "cancelled")]
    plain, _ = _sync(api, cal, api.events().list(calendarId=cal).execute()["nextSyncToken"])
    assert plain == []
    api.events().delete(calendarId=cal, eventId=sid).execute()
    changes, _ = _sync(api, cal, token, singleEvents=True)
    # A deleted series: its master's tombstone, and its exceptions cancelled with it.
    assert {c["id"]: c["status"] for c in changes} == {sid: "cancelled", moved_id: "cancelled"}
    assert _all(api, cal, singleEvents=True) == []


def test_an_instance_changed_while_a_listing_pages_through_its_series_costs_no_other_instance(
    calendar_base: str,
) -> None:
    """A person cancels (or moves) an instance between two pages of an incremental listing: the pages
    still hold every unchanged instance once; the changed one is in this listing or the next."""
    api, cal = _setup(calendar_base)
    token = api.events().list(calendarId=cal, singleEvents=True).execute()["nextSyncToken"]
    body = _series("almoço", "2030-09-02T12:00:00", "2030-09-02T13:00:00", ["RRULE:FREQ=WEEKLY;COUNT=8"])
    sid = api.events().insert(calendarId=cal, body=body).execute()["id"]
    every = [i["id"] for i in _all(api, cal, singleEvents=True)]
    assert len(every) == 8
    assert all(i.startswith(f"{sid}_") for i in every)

    first = api.events().list(calendarId=cal, syncToken=token, singleEvents=True, maxResults=3).execute()
    listed = [i["id"] for i in first["items"]]
    assert listed == every[:3]
    api.events().delete(calendarId=cal, eventId=every[1]).execute()  # returned already
    api.events().patch(calendarId=cal, eventId=every[4], body={"summary": "almoço (fora)"}).execute()  # not yet
    page = first
    while "nextPageToken" in page:
        page = (
            api.events()
            .list(calendarId=cal, syncToken=token, singleEvents=True, maxResults=3, pageToken=page["nextPageToken"])
            .execute()
        )
        listed += [i["id"] for i in page["items"]]
    token = page["nextSyncToken"]
    unchanged = [i for i in every if i not in (every[1], every[4])]
    assert sorted(i for i in listed if i in unchanged) == sorted(unchanged)  # each once, none skipped
    later, _ = _sync(api, cal, token, singleEvents=True)
    assert {i["id"]: i["status"] for i in later} == {every[1]: "cancelled", every[4]: "confirmed"}


def test_this_and_following_is_an_until_on_the_master_and_a_new_series(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("terapia", "2030-09-02T08:00:00", "2030-09-02T09:00:00", ["RRULE:FREQ=WEEKLY"])
    sid = api.events().insert(calendarId=cal, body=body).execute()["id"]
    api.events().patch(
        calendarId=cal, eventId=sid, body={"recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20300915T000000Z"]}
    ).execute()
    later = _series("terapia (tarde)", "2030-09-16T16:00:00", "2030-09-16T17:00:00", ["RRULE:FREQ=WEEKLY"])
    assert _all(api, cal, singleEvents=True)[-1]["start"]["dateTime"][:10] == "2030-09-09"
    new_id = api.events().insert(calendarId=cal, body=later).execute()["id"]
    items = _all(
        api, cal, singleEvents=True, orderBy="startTime", timeMin="2030-09-01T00:00:00Z", timeMax="2030-10-01T00:00:00Z"
    )
    assert [(i["recurringEventId"], i["start"]["dateTime"][:16]) for i in items] == [
        (sid, "2030-09-02T08:00"),
        (sid, "2030-09-09T08:00"),
        (new_id, "2030-09-16T16:00"),
        (new_id, "2030-09-23T16:00"),
        (new_id, "2030-09-30T16:00"),
    ]


def test_removing_the_recurrence_collapses_the_series(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("bloco", "2030-10-07T12:00:00", "2030-10-07T13:00:00", ["RRULE:FREQ=DAILY;COUNT=3"])
    master = api.events().insert(calendarId=cal, body=body).execute()
    moved = f"{master['id']}_20301008T160000Z"
    api.events().patch(calendarId=cal, eventId=moved, body={"summary": "bloco (movido)"}).execute()
    full = {k: v for k, v in master.items() if k != "recurrence"}
    api.events().update(calendarId=cal, eventId=master["id"], body=full).execute()
    items = api.events().list(calendarId=cal, singleEvents=True).execute()["items"]
    assert [i["id"] for i in items] == [master["id"]]
    assert api.events().get(calendarId=cal, eventId=moved).execute()["status"] == "cancelled"


@pytest.mark.parametrize(
    "rules",
    [["RRULE:FREQ=SOMETIMES"], ["DTSTART:20300101T000000Z"], ["not a rule"], ["RRULE:FREQ=DAILY;BYDAY=XX"]],
)
def test_invalid_recurrence_is_400(calendar_base: str, rules: list[str]) -> None:
    api, cal = _setup(calendar_base)
    with pytest.raises(HttpError) as err:
        api.events().insert(
            calendarId=cal, body=_series("x", "2030-01-01T09:00:00", "2030-01-01T10:00:00", rules)
        ).execute()
    assert err.value.resp.status == 400


def test_an_instance_cannot_get_a_recurrence_and_insert_ignores_instance_fields(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("x", "2030-01-01T09:00:00", "2030-01-01T10:00:00", ["RRULE:FREQ=DAILY;COUNT=2"])
    sid = api.events().insert(calendarId=cal, body=body).execute()["id"]
    with pytest.raises(HttpError) as err:
        api.events().patch(
            calendarId=cal, eventId=f"{sid}_20300102T140000Z", body={"recurrence": ["RRULE:FREQ=DAILY"]}
        ).execute()
    assert err.value.resp.status == 400
    plain = timed_event("y", "2030-01-03T09:00:00Z", "2030-01-03T10:00:00Z", recurringEventId=sid)
    created = api.events().insert(calendarId=cal, body=plain).execute()
    assert "recurringEventId" not in created


def test_instances_a_series_edit_removes_come_back_cancelled_in_incremental_listings(calendar_base: str) -> None:
    api, cal = _setup(calendar_base)
    body = _series("sessão", "2030-11-04T10:00:00", "2030-11-04T11:00:00", ["RRULE:FREQ=WEEKLY;COUNT=4"])
    sid = api.events().insert(calendarId=cal, body=body).execute()["id"]
    moved = f"{sid}_20301125T150000Z"
    api.events().patch(calendarId=cal, eventId=moved, body={"summary": "sessão (remarcada)"}).execute()
    token = api.events().list(calendarId=cal, singleEvents=True).execute()["nextSyncToken"]
    api.events().patch(calendarId=cal, eventId=sid, body={"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=2"]}).execute()
    changes, token = _sync(api, cal, token, singleEvents=True)
    assert {c["id"][-16:]: c["status"] for c in changes} == {
        "20301104T150000Z": "confirmed",
        "20301111T150000Z": "confirmed",
        "20301118T150000Z": "cancelled",  # no longer produced by the series
        "20301125T150000Z": "cancelled",  # an exception the series no longer has
    }
    gone = next(c for c in changes if c["id"].endswith("20301118T150000Z"))
    assert gone["recurringEventId"] == sid
    assert gone["originalStartTime"] == {"dateTime": "2030-11-18T15:00:00Z"}
    assert api.events().get(calendarId=cal, eventId=moved).execute()["status"] == "cancelled"
    # Moving the whole series an hour later: every instance gets a new id, the old ones are cancelled.
    api.events().patch(
        calendarId=cal,
        eventId=sid,
        body={"start": {"dateTime": "2030-11-04T11:00:00"}, "end": {"dateTime": "2030-11-04T12:00:00"}},
    ).execute()
    changes, _ = _sync(api, cal, token, singleEvents=True)
    assert sorted((c["id"][-16:], c["status"]) for c in changes) == [
        ("20301104T150000Z", "cancelled"),
        ("20301104T160000Z", "confirmed"),
        ("20301111T150000Z", "cancelled"),
        ("20301111T160000Z", "confirmed"),
        ("20301118T150000Z", "cancelled"),
    ]


@pytest.mark.parametrize(
    "exdate", ["EXDATE;TZID=America/New_York:20300310T020000", "EXDATE:20300310T070000Z"], ids=["tzid", "utc"]
)
def test_an_exdate_removes_an_occurrence_in_a_dst_gap(calendar_base: str, exdate: str) -> None:
    api, cal = _setup(calendar_base)
    # 02:00 does not exist in New York on 2030-03-10 (clocks jump from 02:00 EST to 03:00 EDT); the
    # rule's occurrence that day is the instant 07:00Z, which both spellings of the EXDATE name.
    body = _series("plantão", "2030-03-09T02:00:00", "2030-03-09T02:15:00", ["RRULE:FREQ=DAILY;COUNT=3", exdate])
    master = api.events().insert(calendarId=cal, body=body).execute()
    items = api.events().list(calendarId=cal, singleEvents=True, orderBy="startTime").execute()["items"]
    assert [i["id"] for i in items] == [f"{master['id']}_20300309T070000Z", f"{master['id']}_20300311T060000Z"]
