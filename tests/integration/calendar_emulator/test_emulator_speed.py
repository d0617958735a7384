"""Point 11: a 10,000-event calendar pages in 2500s and incremental sync returns only the changes.

Timing figures live in the README (measured separately); these tests assert behaviour only.
"""

from __future__ import annotations

from .helpers import calendar, control, stats, timed_event

USER = "recepcao@clinic.example"
TOTAL = 10_000


def _fill(base: str, cal: str) -> None:
    # Bulk load through the control API: building 10,000 requests in the client alone takes ~20 s.
    events = [timed_event(f"e{n}", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z") for n in range(TOTAL)]
    assert len(control(base, "seed", {"calendarId": cal, "user": USER, "events": events})["ids"]) == TOTAL


def test_ten_thousand_events_in_four_pages_then_small_incremental(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    cal = api.calendars().insert(body={"summary": "Grande"}).execute()["id"]
    _fill(calendar_base, cal)

    pages, token = [], None
    while True:
        page = (
            api.events()
            .list(calendarId=cal, maxResults=2500, pageToken=token, fields="items(id),nextPageToken,nextSyncToken")
            .execute()
        )
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            break
    assert [len(p["items"]) for p in pages] == [2500] * 4
    assert all("nextSyncToken" not in p for p in pages[:-1])
    assert pages[-1]["nextSyncToken"]
    assert len({e["id"] for p in pages for e in p["items"]}) == TOTAL

    sync_token = pages[-1]["nextSyncToken"]
    changed = [pages[1]["items"][7]["id"], pages[3]["items"][99]["id"]]
    api.events().patch(calendarId=cal, eventId=changed[0], body={"summary": "moved"}).execute()
    api.events().delete(calendarId=cal, eventId=changed[1]).execute()
    control(calendar_base, "stats/reset")
    delta = api.events().list(calendarId=cal, syncToken=sync_token).execute()
    assert sorted(e["id"] for e in delta["items"]) == sorted(changed)
    assert stats(calendar_base)["methods"] == {"calendar.events.list": 1}
