"""``ports.CalendarApi`` contract: ``FakeCalendarApi`` and ``GoogleCalendarApi`` on the Calendar emulator
(through google-api-python-client) answer the same calls the same way.

Covers Google's rules calsync depends on (https://developers.google.com/calendar/api/guides/sync,
https://developers.google.com/calendar/api/guides/errors, https://developers.google.com/calendar/api/guides/batch):
paging with the sync token only on the last page, incremental listings with tombstones, 410 on a
stale, invalid or foreign sync token, 400 on a bad page token, 409 on a reused id, 412 on a wrong
``If-Match``, 410 on a second delete, batch results in request order with per-part failures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from calsync import errors
from calsync.adapters.google_calendar import GoogleCalendarApi, RetryPolicy
from calsync.model import GoogleEvent
from calsync.ports import BatchOp, CalendarApi, ListEvents
from calsync.testing import FakeCalendarApi, FrozenClock

START = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
PAGE_SIZE = 2


@dataclass
class World:
    """A ``CalendarApi`` and the one control the contract needs: expiring a calendar's sync tokens."""

    api: CalendarApi
    expire_sync_tokens: Callable[[str], None]


@pytest.fixture(params=["fake", "emulator"])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "fake":
        fake = FakeCalendarApi(FrozenClock(START - timedelta(days=1)), page_size=PAGE_SIZE)
        return World(api=fake, expire_sync_tokens=fake.expire_sync_tokens)
    base: str = request.getfixturevalue("calendar_base")
    policy = RetryPolicy(max_attempts=1, max_total_s=1, base_s=0.01, sleep=lambda _: None)
    real = GoogleCalendarApi.for_emulator(base, retry=policy, page_size=PAGE_SIZE)

    def expire(calendar_id: str) -> None:
        answer = requests.post(f"{base}/_emulator/sync-tokens/expire", json={"calendarId": calendar_id}, timeout=5)
        answer.raise_for_status()

    return World(api=real, expire_sync_tokens=expire)


@pytest.fixture
def api(world: World) -> CalendarApi:
    return world.api


@pytest.fixture
def cal(api: CalendarApi) -> str:
    return api.insert_calendar("Contract", time_zone="America/Sao_Paulo")


def body(i: int, **extra: Any) -> dict[str, Any]:
    start = START + timedelta(hours=i)
    return {
        "summary": f"Consulta {i}",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
        "extendedProperties": {"private": {"source": "agendador", "env": "dev"}},
        **extra,
    }


def eid(i: int) -> str:
    """A valid client event id (base32hex, 5-1024 characters)."""
    return f"contract{i:05d}"


def listing(api: CalendarApi, cal: str, **kwargs: Any) -> tuple[list[list[GoogleEvent]], str | None]:
    """Every page of one listing, and its sync token; asserts the token comes only with the last page."""
    pages: list[list[GoogleEvent]] = []
    page_token: str | None = None
    while True:
        page = api.list_events(ListEvents(cal, page_token=page_token, **kwargs))
        pages.append(page.items)
        if page.next_page_token is None:
            assert page.next_sync_token, "the last page carries the sync token"
            return pages, page.next_sync_token
        assert page.next_sync_token is None, "only the last page carries the sync token"
        page_token = page.next_page_token


def ids(pages: list[list[GoogleEvent]]) -> list[str]:
    return [e.id for page in pages for e in page]


def test_calendar_round_trip(api: CalendarApi, cal: str) -> None:
    got = api.get_calendar(cal)
    assert (got["id"], got["summary"], got["timeZone"]) == (cal, "Contract", "America/Sao_Paulo")
    with pytest.raises(errors.NotFound):
        api.get_calendar("nobody@group.calendar.google.com")


def test_event_round_trip(api: CalendarApi, cal: str) -> None:
    created = api.insert_event(cal, body(1, id=eid(1)))
    assert (created.id, created.status) == (eid(1), "confirmed")
    assert created.etag
    assert created.private_tags == {"source": "agendador", "env": "dev"}
    fetched = api.get_event(cal, eid(1))
    assert (fetched.etag, fetched.summary) == (created.etag, "Consulta 1")
    assert fetched.start is not None
    assert fetched.start.as_utc() == START + timedelta(hours=1)
    generated = api.insert_event(cal, body(2))  # no id: the server makes one
    assert generated.id
    assert generated.id != created.id


def test_paging_gives_the_sync_token_only_on_the_last_page(api: CalendarApi, cal: str) -> None:
    for i in range(5):
        api.insert_event(cal, body(i, id=eid(i)))
    pages, token = listing(api, cal)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(ids(pages)) == [eid(i) for i in range(5)]
    assert token
    windowed, _ = listing(api, cal, time_min=START + timedelta(hours=1), time_max=START + timedelta(hours=3))
    assert sorted(ids(windowed)) == [eid(1), eid(2)]  # [timeMin, timeMax) overlaps
    empty = api.list_events(ListEvents(cal, sync_token=token))
    assert (empty.items, empty.next_page_token) == ([], None)
    assert empty.next_sync_token


def test_incremental_listing_reports_changes_and_tombstones(api: CalendarApi, cal: str) -> None:
    created = [api.insert_event(cal, body(i, id=eid(i))) for i in range(4)]
    _, token = listing(api, cal)
    assert token is not None
    api.update_event(cal, eid(0), body(10), if_match=created[0].etag)
    api.delete_event(cal, eid(1))
    api.insert_event(cal, body(5, id=eid(5)))
    pages, next_token = listing(api, cal, sync_token=token)
    changes = {e.id: e for page in pages for e in page}
    assert sorted(changes) == [eid(0), eid(1), eid(5)]
    assert changes[eid(1)].cancelled
    start = changes[eid(0)].start
    assert start is not None
    assert start.as_utc() == START + timedelta(hours=10)
    assert next_token != token
    full, _ = listing(api, cal)
    assert eid(1) not in ids(full)  # a full listing hides deleted events ...
    with_deleted, _ = listing(api, cal, show_deleted=True)
    assert eid(1) in ids(with_deleted)  # ... unless asked for them


def test_stale_invalid_or_foreign_sync_tokens_are_gone(world: World, api: CalendarApi, cal: str) -> None:
    api.insert_event(cal, body(1, id=eid(1)))
    _, token = listing(api, cal)
    assert token is not None
    other = api.insert_calendar("Other", time_zone="UTC")
    for bad_calendar, bad_token in ((other, token), (cal, "notatoken")):
        with pytest.raises(errors.SyncTokenGone) as gone:
            api.list_events(ListEvents(bad_calendar, sync_token=bad_token))
        assert (gone.value.status, gone.value.reason) == (410, "fullSyncRequired")
    world.expire_sync_tokens(cal)
    with pytest.raises(errors.SyncTokenGone):
        api.list_events(ListEvents(cal, sync_token=token))
    _, fresh = listing(api, cal)  # the full re-sync's token works
    assert api.list_events(ListEvents(cal, sync_token=fresh)).items == []


def test_a_sync_token_is_never_combined_with_filters(api: CalendarApi, cal: str) -> None:
    _, token = listing(api, cal)
    with pytest.raises(errors.InvalidRequest):
        api.list_events(ListEvents(cal, sync_token=token, time_min=START))
    with pytest.raises(errors.InvalidRequest):
        api.list_events(ListEvents(cal, sync_token=token, private_filters=["source=agendador"]))


def test_an_invalid_page_token_is_a_bad_request(api: CalendarApi, cal: str) -> None:
    with pytest.raises(errors.BadRequest):
        api.list_events(ListEvents(cal, page_token="notapagetoken"))


def test_unknown_calendar_or_event_is_not_found(api: CalendarApi, cal: str) -> None:
    with pytest.raises(errors.NotFound):
        api.list_events(ListEvents("nobody@group.calendar.google.com"))
    with pytest.raises(errors.NotFound):
        api.get_event(cal, eid(99))
    with pytest.raises(errors.NotFound):
        api.update_event(cal, eid(99), body(1))
    with pytest.raises(errors.NotFound):
        api.delete_event(cal, eid(99))


def test_a_reused_id_is_a_409_even_after_a_delete(api: CalendarApi, cal: str) -> None:
    api.insert_event(cal, body(1, id=eid(1)))
    with pytest.raises(errors.Duplicate) as dup:
        api.insert_event(cal, body(2, id=eid(1)))
    assert dup.value.status == 409
    api.delete_event(cal, eid(1))
    with pytest.raises(errors.Duplicate):
        api.insert_event(cal, body(2, id=eid(1)))


def test_an_invalid_event_id_is_a_bad_request(api: CalendarApi, cal: str) -> None:
    for bad in ("UPPER_case_wxyz", "abc", "has-dash1"):
        with pytest.raises(errors.BadRequest):
            api.insert_event(cal, body(1, id=bad))


def test_a_wrong_if_match_is_a_412(api: CalendarApi, cal: str) -> None:
    created = api.insert_event(cal, body(1, id=eid(1)))
    updated = api.update_event(cal, eid(1), body(2), if_match=created.etag)
    assert updated.etag != created.etag
    with pytest.raises(errors.PreconditionFailed) as stale:
        api.update_event(cal, eid(1), body(3), if_match=created.etag)
    assert stale.value.status == 412
    with pytest.raises(errors.PreconditionFailed):
        api.delete_event(cal, eid(1), if_match=created.etag)
    assert api.get_event(cal, eid(1)).etag == updated.etag  # nothing changed
    again = api.update_event(cal, eid(1), body(4), if_match="*")  # "*" matches any version
    api.delete_event(cal, eid(1), if_match=again.etag)
    assert api.get_event(cal, eid(1)).cancelled


def test_a_second_delete_is_gone(api: CalendarApi, cal: str) -> None:
    created = api.insert_event(cal, body(1, id=eid(1)))
    api.delete_event(cal, eid(1))
    assert api.get_event(cal, eid(1)).cancelled  # a tombstone, still readable
    with pytest.raises(errors.ResourceGone) as gone:
        api.delete_event(cal, eid(1))
    assert (gone.value.status, gone.value.reason) == (410, "deleted")
    with pytest.raises(errors.PreconditionFailed):  # If-Match is checked before the tombstone
        api.delete_event(cal, eid(1), if_match=created.etag)


def test_batch_keeps_order_and_reports_failures_per_part(api: CalendarApi, cal: str) -> None:
    existing = api.insert_event(cal, body(0, id=eid(0)))
    ops = [
        BatchOp(kind="insert", calendar_id=cal, body=body(1, id=eid(1))),
        BatchOp(kind="insert", calendar_id=cal, body=body(2, id=eid(0))),  # reused id
        BatchOp(kind="update", calendar_id=cal, event_id=eid(0), body=body(3), if_match='"stale"'),
        BatchOp(kind="get", calendar_id=cal, event_id=eid(0)),
        BatchOp(kind="delete", calendar_id=cal, event_id=eid(98)),  # unknown
        BatchOp(kind="update", calendar_id=cal, event_id=eid(0), body=body(4), if_match=existing.etag),
        BatchOp(kind="delete", calendar_id=cal, event_id=eid(1)),
        BatchOp(kind="delete", calendar_id=cal, event_id=eid(1)),  # second delete
    ]
    results = api.execute_batch(ops)
    assert [r.op for r in results] == ops
    kinds = [type(r.error).__name__ if r.error else "ok" for r in results]
    assert kinds == ["ok", "Duplicate", "PreconditionFailed", "ok", "NotFound", "ok", "ok", "ResourceGone"]
    assert results[0].event is not None
    assert results[0].event.id == eid(1)
    assert results[3].event is not None
    assert results[3].event.etag == existing.etag
    assert results[5].event is not None
    assert results[5].event.etag != existing.etag
    assert results[6].event is None
    assert api.get_event(cal, eid(1)).cancelled


def test_full_listing_filters_by_private_property_and_window(api: CalendarApi, cal: str) -> None:
    api.insert_event(cal, body(1, id=eid(1)))
    api.insert_event(cal, body(2, id=eid(2), extendedProperties={"private": {"source": "agendador", "env": "prd"}}))
    api.insert_event(cal, body(3, id=eid(3), extendedProperties={}))  # a person's event, untagged
    tagged, _ = listing(api, cal, private_filters=["source=agendador"])
    assert sorted(ids(tagged)) == [eid(1), eid(2)]
    ours, _ = listing(api, cal, private_filters=["source=agendador", "env=dev"])  # every filter must hold
    assert ids(ours) == [eid(1)]
    with pytest.raises(errors.BadRequest):  # an empty window
        api.list_events(ListEvents(cal, time_min=START + timedelta(hours=2), time_max=START + timedelta(hours=2)))


def test_free_busy_reads_opaque_live_time_only_and_names_unreadable_calendars(api: CalendarApi, cal: str) -> None:
    window = (START, START + timedelta(days=1))
    api.insert_event(cal, body(1, id=eid(1)))  # 01:00-01:30
    api.insert_event(cal, body(1, id=eid(2), end={"dateTime": (START + timedelta(hours=2)).isoformat()}))  # overlaps
    api.insert_event(cal, body(4, id=eid(3), transparency="transparent"))  # "show as free"
    api.insert_event(cal, body(6, id=eid(4)))
    api.delete_event(cal, eid(4))  # cancelled: not busy
    api.insert_event(cal, body(30, id=eid(5)))  # outside the window

    mine, nobody = api.free_busy([cal, "nobody@group.calendar.google.com"], *window)

    assert mine.calendar_id == cal
    assert mine.error is None
    assert [(s - START, e - START) for s, e in mine.busy] == [(timedelta(hours=1), timedelta(hours=2))]
    assert (nobody.calendar_id, nobody.busy, nobody.error) == ("nobody@group.calendar.google.com", (), "notFound")
    with pytest.raises(errors.BadRequest):
        api.free_busy([cal], window[1], window[0])
