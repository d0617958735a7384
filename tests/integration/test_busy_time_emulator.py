"""Busy time on a calsync calendar, through a real sync on the Calendar emulator and Firestore's emulator.

People's events raise ``overlap_manual`` when they block time: timed, all-day (whole days of the
calendar's zone, end exclusive, multi-day) and each instance of a series; never when they are shown as
free. Moving an instance away resolves its conflict. People's titles and guests are not kept.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from calsync.ports.queries import ConflictQuery, MirrorQuery
from tests.integration.test_sync_emulator import CONFIG, KEY, Env, env, publish  # noqa: F401 - env: fixture

ZONED = replace(CONFIG, time_zone="America/Sao_Paulo")


def open_overlaps(env: Env) -> dict[str, str]:  # noqa: F811 - the fixture's name
    """Open overlap conflicts: the person's event id → the allocation it names."""
    conflicts, _ = env.firestore.list_conflicts(ConflictQuery(KEY, status="open", page_size=50, page_token=None))
    return {c.event_id: c.allocation_id or "" for c in conflicts if c.kind == "overlap_manual"}


def test_all_day_days_and_series_instances_block_time_and_shown_as_free_does_not(env: Env) -> None:  # noqa: F811
    day = env.clock.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)

    def ours(event_id: str, allocation: str, at: timedelta) -> None:
        body: dict[str, Any] = env.event(event_id, 0, allocation=allocation)
        start = day + at
        body |= {
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        }
        publish(env, body)

    ours("evferias1", "a1", timedelta(hours=13))  # 10:00 in São Paulo, first day of the vacation
    ours("evferias2", "a2", timedelta(days=1, hours=17))  # second day of the vacation
    ours("evmarker1", "a3", timedelta(days=2, hours=13))  # under a transparent all-day marker
    ours("evfree001", "a4", timedelta(days=3, hours=13))  # under a "free" timed event
    ours("evsemana1", "a5", timedelta(days=4, hours=13))  # under this week's instance of a series
    assert env.sync(config=ZONED).conflicts_opened == 0

    def date(n: int) -> str:
        return (day + timedelta(days=n)).date().isoformat()

    env.seeder.insert_event(
        env.cal, {"id": "ferias001", "summary": "Férias", "start": {"date": date(0)}, "end": {"date": date(2)}}
    )
    env.seeder.insert_event(
        env.cal,
        {
            "id": "plantao01",
            "summary": "Plantão",
            "transparency": "transparent",
            "start": {"date": date(2)},
            "end": {"date": date(3)},
        },
    )
    free = day + timedelta(days=3, hours=12)
    env.seeder.insert_event(
        env.cal,
        {
            "id": "livre0001",
            "summary": "livre",
            "transparency": "transparent",
            "start": {"dateTime": free.isoformat()},
            "end": {"dateTime": (free + timedelta(hours=3)).isoformat()},
        },
    )
    first = day + timedelta(days=4 - 7, hours=12, minutes=30)
    series = env.seeder.insert_event(
        env.cal,
        {
            "id": "almoco001",
            "summary": "Almoço",
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
            "start": {"dateTime": first.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (first + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
        },
    )

    env.sync(config=ZONED)

    instance = f"{series.id}_{(first + timedelta(days=7)).strftime('%Y%m%dT%H%M%SZ')}"
    assert open_overlaps(env) == {"ferias001": "a1", instance: "a5"}
    mirror = env.firestore.get_events(KEY, ["ferias001", instance])
    assert (mirror["ferias001"].all_day, mirror["ferias001"].summary, mirror[instance].summary) == (True, None, None)
    assert mirror["ferias001"].start == day  # midnight of the calendar's zone (UTC), not São Paulo's
    assert mirror[instance].recurring_event_id == series.id

    moved = first + timedelta(days=7, hours=5)
    env.seeder.update_event(
        env.cal,
        instance,
        {
            "summary": "Almoço",
            "start": {"dateTime": moved.isoformat()},
            "end": {"dateTime": (moved + timedelta(hours=1)).isoformat()},
        },
    )
    env.sync(config=ZONED)
    assert open_overlaps(env) == {"ferias001": "a1"}


def test_deleting_a_series_resolves_the_overlaps_of_its_instances(env: Env) -> None:  # noqa: F811
    day = env.clock.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    body: dict[str, Any] = env.event("evsemana2", 0, allocation="a6")
    start = day + timedelta(hours=13)
    body |= {"start": {"dateTime": start.isoformat()}, "end": {"dateTime": (start + timedelta(hours=1)).isoformat()}}
    publish(env, body)
    env.sync(config=ZONED)
    series = env.seeder.insert_event(
        env.cal,
        {
            "summary": "Bloqueio",
            "recurrence": ["RRULE:FREQ=WEEKLY"],
            "start": {"dateTime": (start - timedelta(days=7, minutes=30)).isoformat()},
            "end": {"dateTime": (start - timedelta(days=7) + timedelta(minutes=30)).isoformat()},
        },
    )
    env.sync(config=ZONED)
    assert set(open_overlaps(env).values()) == {"a6"}

    env.seeder.delete_event(env.cal, series.id)
    env.sync(config=ZONED)
    assert open_overlaps(env) == {}
    live, _ = env.firestore.list_mirror_events(
        MirrorQuery(KEY, time_min=None, time_max=None, page_size=500, page_token=None)
    )
    assert [e.external_id for e in live if e.recurring_event_id == series.id] == []


def test_all_day_dates_are_days_of_the_calendars_zone_not_the_display_zone(env: Env) -> None:  # noqa: F811
    """Google reads an all-day date in the calendar's own time zone (UTC for this room), whatever zone
    calsync writes its suggestions in (São Paulo here): the day ends at midnight UTC."""
    day = env.clock.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    body: dict[str, Any] = env.event("evnoite01", 0, allocation="a7")
    late = day + timedelta(days=1, hours=1)  # 01:00 UTC the next day: 22:00 of the same day in São Paulo
    body |= {"start": {"dateTime": late.isoformat()}, "end": {"dateTime": (late + timedelta(hours=1)).isoformat()}}
    publish(env, body)
    body = env.event("evmanha01", 0, allocation="a8")
    early = day + timedelta(hours=1)  # 01:00 UTC of the day: 22:00 of the day before in São Paulo
    body |= {"start": {"dateTime": early.isoformat()}, "end": {"dateTime": (early + timedelta(hours=1)).isoformat()}}
    publish(env, body)
    env.sync(config=ZONED)
    date = day.date().isoformat()
    env.seeder.insert_event(
        env.cal,
        {
            "id": "congresso1",
            "summary": "Congresso",
            "start": {"date": date},
            "end": {"date": (day + timedelta(days=1)).date().isoformat()},
        },
    )
    env.sync(config=ZONED)
    mirror = env.firestore.get_events(KEY, ["congresso1"])["congresso1"]
    assert (mirror.start, mirror.end) == (day, day + timedelta(days=1))  # midnight to midnight, UTC
    assert open_overlaps(env) == {"congresso1": "a8"}
