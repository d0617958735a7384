"""``ports.MirrorStore`` contract: mirror documents, windows, pages, cursors, the published snapshot and
retention (memory and Firestore)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calsync import errors
from calsync.model import CalendarRecord, EventOrigin, MirrorEvent, PublishedSnapshot, SyncCursor
from calsync.ports import MirrorStore, PublishStore
from calsync.ports.queries import MirrorQuery

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def mirror(event_id: str, hours: int, *, origin: EventOrigin = "manual", status: str = "confirmed") -> MirrorEvent:
    start = NOW + timedelta(hours=hours)
    return MirrorEvent(
        calendar_key="k",
        external_id=event_id,
        google_calendar_id="g",
        etag='"1"',
        start=start,
        end=start + timedelta(hours=1),
        origin=origin,
        status=status,
    )


def every_page(store: MirrorStore, *, time_min: datetime | None, time_max: datetime | None, size: int) -> list[str]:
    seen: list[str] = []
    token = None
    while True:
        page, token = store.list_mirror_events(
            MirrorQuery("k", time_min=time_min, time_max=time_max, page_size=size, page_token=token)
        )
        seen.extend(e.external_id for e in page)
        if token is None:
            return seen


def test_mirror_batches_windows_and_pages(mirror_store: MirrorStore) -> None:
    store = mirror_store
    events = [mirror(f"ev{i:04d}", i) for i in range(620)]  # > one 500-write batch
    events[3] = mirror("ev0003", 3, status="cancelled")
    events[5] = mirror("ev0005", 5, origin="system")
    store.put_events(events)
    got = store.get_events("k", ["ev0001", "ev0619", "nope"])
    assert set(got) == {"ev0001", "ev0619"}
    assert got["ev0619"].start == NOW + timedelta(hours=619)
    window = store.window_event_ids("k", NOW + timedelta(hours=2), NOW + timedelta(hours=6))
    assert window == {"ev0002", "ev0004", "ev0005"}  # ev0001 ends at time_min (exclusive); ev0003 cancelled
    assert [e.external_id for e in store.system_events_overlapping("k", NOW, NOW + timedelta(days=1))] == ["ev0005"]
    seen = every_page(store, time_min=NOW, time_max=NOW + timedelta(hours=30), size=7)
    assert seen == [f"ev{i:04d}" for i in range(30) if i != 3]


def test_overlap_queries_by_origin(mirror_store: MirrorStore) -> None:
    mirror_store.put_events(
        [
            mirror("m1", 1),
            mirror("m2", 5),
            mirror("s1", 1, origin="system"),
            mirror("m3", 2, status="cancelled"),
        ]
    )
    window = (NOW + timedelta(hours=1, minutes=30), NOW + timedelta(hours=3))
    assert [e.external_id for e in mirror_store.manual_events_overlapping("k", *window)] == ["m1"]
    assert [e.external_id for e in mirror_store.system_events_overlapping("k", *window)] == ["s1"]
    assert mirror_store.manual_events_overlapping("other", *window) == []
    assert mirror_store.get_events("other", ["m1"]) == {}  # events belong to their calendar


def test_pages_skip_cancelled_events_and_refuse_an_unknown_token(mirror_store: MirrorStore) -> None:
    mirror_store.put_events([mirror(f"ev{i}", i, status="cancelled" if i in (1, 2) else "confirmed") for i in range(5)])
    first, token = mirror_store.list_mirror_events(
        MirrorQuery("k", time_min=None, time_max=None, page_size=2, page_token=None)
    )
    assert [e.external_id for e in first] == ["ev0"]  # pages may be short: cancelled ones are read, not listed
    assert token is not None
    assert every_page(mirror_store, time_min=None, time_max=None, size=2) == ["ev0", "ev3", "ev4"]
    assert every_page(mirror_store, time_min=None, time_max=None, size=5) == ["ev0", "ev3", "ev4"]
    with pytest.raises(errors.InvalidRequest):
        mirror_store.list_mirror_events(MirrorQuery("k", time_min=None, time_max=None, page_size=2, page_token="gone0"))


def test_cursor_round_trip_with_many_seen_ids(mirror_store: MirrorStore) -> None:
    store = mirror_store
    ids = [f"id{i:06d}" for i in range(12_000)]
    cursor = SyncCursor(
        calendar_key="k",
        cursor_id="c1",
        mode="full",
        page_token="p",
        query_version="1",
        seen_ids=ids,
        started_at=NOW,
        time_min=NOW,
        time_max=NOW + timedelta(days=1),
    )
    store.put_sync_cursor(cursor)
    loaded = store.get_sync_cursor("k")
    assert loaded is not None
    assert loaded.seen_ids == ids
    assert loaded.page_token == "p"
    store.put_sync_cursor(cursor.model_copy(update={"page_token": "q", "seen_ids": ids[:3]}))  # replaces
    replaced = store.get_sync_cursor("k")
    assert replaced is not None
    assert (replaced.page_token, replaced.seen_ids) == ("q", ids[:3])
    store.delete_sync_cursor("k")
    assert store.get_sync_cursor("k") is None
    store.delete_sync_cursor("k")  # no cursor: nothing to do


def _published(etag: str, updated: datetime, published: str | None) -> MirrorEvent:
    return MirrorEvent(
        calendar_key="room-1",
        external_id="evt00001",
        google_calendar_id="room-1@group.calendar.google.com",
        etag=etag,
        updated=updated,
        origin="system",
        source_of_truth="backend",
        published=PublishedSnapshot(etag=published) if published else None,
    )


def test_a_sync_merge_never_puts_an_old_snapshot_back(mirror_store: MirrorStore) -> None:
    store = mirror_store
    t0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
    store.record_published([_published('"2"', t0, published='"2"')])  # the apply recorded its write
    store.merge_observed_events([_published('"1"', t0 - timedelta(minutes=1), published=None)])  # a late sync
    stored = store.get_events("room-1", ["evt00001"])["evt00001"]
    assert stored.etag == '"1"'  # content as the sync observed it (the next sync brings "2" back) ...
    assert stored.published is not None
    assert stored.published.etag == '"2"'  # ... but the snapshot of what we published survives


def test_recording_a_write_never_rolls_the_mirror_back_behind_google(mirror_store: MirrorStore) -> None:
    store = mirror_store
    t0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
    store.merge_observed_events([_published('"3"', t0 + timedelta(seconds=5), published=None)])  # a person's edit
    stored = store.record_published([_published('"2"', t0, published='"2"')])["evt00001"]
    assert stored.etag == '"3"'  # the person's newer version stays
    assert stored.published is not None
    assert stored.published.etag == '"2"'  # and what we published is recorded
    assert store.get_events("room-1", ["evt00001"])["evt00001"] == stored
    assert store.record_published([]) == {}


def test_retention_deletes_ended_events_of_registered_calendars(state_store: PublishStore) -> None:
    store = state_store
    for key in ("k1", "k2"):
        store.put_calendar(CalendarRecord(key=key, google_calendar_id=f"{key}@g", kind="room"))

    def event(key: str, eid: str, days_ago: int) -> MirrorEvent:
        end = NOW - timedelta(days=days_ago)
        return MirrorEvent(
            calendar_key=key, external_id=eid, google_calendar_id="g", start=end - timedelta(hours=1), end=end
        )

    store.put_events(
        [event("k1", "old1", 200), event("k1", "new1", 10), event("k2", "old2", 300), event("k2", "old3", 190)]
    )
    store.put_events([event("unregistered", "old4", 400)])  # a mirror without a calendar record: not walked
    cutoff = NOW - timedelta(days=180)
    assert store.delete_mirror_events_ended_before(cutoff, 2) == 2
    assert store.delete_mirror_events_ended_before(cutoff, 2) == 1
    assert store.delete_mirror_events_ended_before(cutoff, 2) == 0
    assert set(store.get_events("k1", ["old1", "new1"])) == {"new1"}
    assert store.get_events("k2", ["old2", "old3"]) == {}
    assert set(store.get_events("unregistered", ["old4"])) == {"old4"}


def test_series_instances_are_the_live_ones_of_that_series(mirror_store: MirrorStore) -> None:
    store = mirror_store
    first, second, gone, other = (mirror(f"s1_{i}", i) for i in range(4))
    store.put_events(
        [
            first.model_copy(update={"recurring_event_id": "s1"}),
            second.model_copy(update={"recurring_event_id": "s1", "origin": "system"}),
            gone.model_copy(update={"recurring_event_id": "s1", "status": "cancelled"}),
            other.model_copy(update={"recurring_event_id": "s2"}),
            mirror("s1", 0),
        ]
    )
    assert sorted(e.external_id for e in store.series_instances("k", "s1")) == ["s1_0", "s1_1"]
    assert store.series_instances("other", "s1") == []


def test_scrubbing_people_content_keeps_busy_time_and_our_events(state_store: PublishStore) -> None:
    store = state_store
    store.put_calendar(CalendarRecord(key="k", google_calendar_id="g", kind="room"))
    theirs = mirror("theirs", 1).model_copy(update={"summary": "dentist", "attendees": ["x@example.com"]})
    ours = mirror("ours", 2, origin="system").model_copy(update={"summary": "consulta", "attendees": ["p@example.com"]})
    store.put_events([theirs, ours, mirror("clean", 3)])
    assert store.scrub_people_content(500) == 1
    assert store.scrub_people_content(500) == 0
    got = store.get_events("k", ["theirs", "ours"])
    assert (got["theirs"].summary, got["theirs"].attendees, got["theirs"].start) == (None, [], theirs.start)
    assert (got["ours"].summary, got["ours"].attendees) == ("consulta", ["p@example.com"])
