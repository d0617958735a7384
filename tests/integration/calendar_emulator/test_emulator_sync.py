"""Point 5: incremental sync with syncToken — changes only, tombstones, paging, restrictions and 410."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from .helpers import calendar, control, stats, timed_event

USER = "recepcao@clinic.example"
FULL_SYNC_BODY = {
    "error": {
        "errors": [
            {
                "domain": "calendar",
                "reason": "fullSyncRequired",
                "message": "Sync token is no longer valid, a full sync is required.",
                "locationType": "parameter",
                "location": "syncToken",
            }
        ],
        "code": 410,
        "message": "Sync token is no longer valid, a full sync is required.",
    }
}


def _setup(base: str, n: int = 3) -> tuple[Any, str, list[dict[str, Any]]]:
    api = calendar(base, user=USER)
    cal = api.calendars().insert(body={"summary": "Sala"}).execute()["id"]
    events = [
        api.events()
        .insert(calendarId=cal, body=timed_event(f"e{i}", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"))
        .execute()
        for i in range(n)
    ]
    return api, cal, events


def _full_sync(api: Any, cal: str) -> str:
    token = None
    while True:
        page = api.events().list(calendarId=cal, pageToken=token).execute()
        token = page.get("nextPageToken")
        if not token:
            return str(page["nextSyncToken"])


def test_incremental_sync_returns_only_changes_with_tombstones(calendar_base: str) -> None:
    api, cal, events = _setup(calendar_base)
    token = _full_sync(api, cal)
    unchanged = api.events().list(calendarId=cal, syncToken=token).execute()
    assert unchanged["items"] == []
    assert unchanged["nextSyncToken"]

    api.events().patch(calendarId=cal, eventId=events[0]["id"], body={"summary": "moved"}).execute()
    api.events().patch(calendarId=cal, eventId=events[0]["id"], body={"summary": "moved twice"}).execute()
    api.events().delete(calendarId=cal, eventId=events[1]["id"]).execute()
    new = (
        api.events()
        .insert(calendarId=cal, body=timed_event("new", "2030-01-08T09:00:00Z", "2030-01-08T10:00:00Z"))
        .execute()
    )

    changes = api.events().list(calendarId=cal, syncToken=token).execute()
    got = {e["id"]: (e["status"], e.get("summary")) for e in changes["items"]}
    assert got == {
        events[0]["id"]: ("confirmed", "moved twice"),
        events[1]["id"]: ("cancelled", "e1"),
        new["id"]: ("confirmed", "new"),
    }
    # An older, still valid token keeps working; the newest one shows no changes.
    assert api.events().list(calendarId=cal, syncToken=changes["nextSyncToken"]).execute()["items"] == []
    assert len(api.events().list(calendarId=cal, syncToken=token).execute()["items"]) == 3


def test_incremental_paging_gives_sync_token_only_on_last_page(calendar_base: str) -> None:
    api, cal, events = _setup(calendar_base, n=5)
    token = _full_sync(api, cal)
    for ev in events:
        api.events().patch(calendarId=cal, eventId=ev["id"], body={"description": "changed"}).execute()
    first = api.events().list(calendarId=cal, syncToken=token, maxResults=2).execute()
    assert len(first["items"]) == 2
    assert "nextSyncToken" not in first
    assert first["nextPageToken"]
    seen = [e["id"] for e in first["items"]]
    page = first
    while "nextPageToken" in page:
        page = (
            api.events().list(calendarId=cal, syncToken=token, maxResults=2, pageToken=page["nextPageToken"]).execute()
        )
        seen += [e["id"] for e in page["items"]]
        assert ("nextPageToken" in page) != ("nextSyncToken" in page)
    assert sorted(seen) == sorted(e["id"] for e in events)


@pytest.mark.parametrize(
    "extra",
    [
        {"iCalUID": "x@google.com"},
        {"orderBy": "updated"},
        {"privateExtendedProperty": "a=b"},
        {"q": "x"},
        {"sharedExtendedProperty": "a=b"},
        {"timeMin": "2030-01-01T00:00:00Z"},
        {"timeMax": "2030-01-01T00:00:00Z"},
        {"updatedMin": "2030-01-01T00:00:00Z"},
        {"showDeleted": False},
    ],
)
def test_sync_token_with_restrictions_is_400(calendar_base: str, extra: dict[str, Any]) -> None:
    api, cal, _ = _setup(calendar_base, n=1)
    token = _full_sync(api, cal)
    with pytest.raises(HttpError) as err:
        api.events().list(calendarId=cal, syncToken=token, **extra).execute()
    assert err.value.resp.status == 400
    assert err.value.error_details[0]["reason"] == "syncTokenWithRequestRestrictions"
    assert api.events().list(calendarId=cal, syncToken=token, showDeleted=True).execute()["items"] == []


def test_unknown_and_expired_tokens_are_410_with_googles_body(calendar_base: str) -> None:
    api, cal, _ = _setup(calendar_base, n=1)
    with pytest.raises(HttpError) as err:
        api.events().list(calendarId=cal, syncToken="not-a-token").execute()
    assert err.value.resp.status == 410
    token = _full_sync(api, cal)
    control(calendar_base, "sync-tokens/expire", {"calendarId": cal})
    with pytest.raises(HttpError) as err:
        api.events().list(calendarId=cal, syncToken=token).execute()
    assert err.value.resp.status == 410
    raw = requests.get(
        f"{calendar_base}/calendar/v3/calendars/{cal}/events",
        params={"syncToken": token},
        headers={"X-Emulator-User": USER},
        timeout=10,
    )
    assert raw.json() == FULL_SYNC_BODY
    assert api.events().list(calendarId=cal, syncToken=_full_sync(api, cal)).execute()["items"] == []


def test_list_calls_are_counted_under_an_obvious_key(calendar_base: str) -> None:
    api, cal, _ = _setup(calendar_base, n=1)
    control(calendar_base, "stats/reset")
    _full_sync(api, cal)
    counted = stats(calendar_base)
    assert counted["requests"]["GET /calendar/v3/calendars/{calendarId}/events"] == 1
    assert counted["methods"]["calendar.events.list"] == 1
