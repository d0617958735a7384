"""Incremental sync keeps a series' instances outside the sync window out of the mirror.

With ``singleEvents=true`` an incremental listing (no ``timeMax``: a sync token allows no filter)
returns a changed series as its instances far beyond the window a full sync covers. An infinite
weekly series must not grow the mirror: on the Calendar emulator (google-api-python-client) and
Google's Firestore emulator, every pass mirrors exactly the instances inside its own window.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from calsync.model import GoogleEvent
from calsync.ports import ListEvents
from calsync.ports.queries import MirrorQuery
from tests.integration.test_sync_emulator import CONFIG, KEY, Env, env  # noqa: F401 - env: fixture

DAY_S = 86400


def mirrored(env: Env) -> set[str]:  # noqa: F811 - the fixture's name
    events, token = env.firestore.list_mirror_events(
        MirrorQuery(KEY, time_min=None, time_max=None, page_size=1000, page_token=None)
    )
    assert token is None
    return {e.external_id for e in events}


def in_window(env: Env, series: str, now: datetime) -> set[str]:  # noqa: F811
    """The series' instances Google lists inside the window of a pass made at ``now``."""
    page = env.seeder.list_events(
        ListEvents(
            env.cal,
            time_min=now - timedelta(days=CONFIG.past_days),
            time_max=now + timedelta(days=CONFIG.future_days),
            single_events=True,
        )
    )
    assert page.next_page_token is None
    return {e.id for e in page.items if e.recurring_event_id == series}


def endless_weekly(env: Env, summary: str) -> GoogleEvent:  # noqa: F811
    """A person's endless weekly hour from tomorrow 09:00 (UTC) on the room."""
    start = env.clock.now().replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return env.seeder.insert_event(
        env.cal,
        {
            "summary": summary,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
            "recurrence": ["RRULE:FREQ=WEEKLY"],
        },
    )


def test_an_infinite_weekly_series_does_not_grow_the_mirror_across_incremental_passes(env: Env) -> None:  # noqa: F811
    assert env.sync().mode == "full"
    series = endless_weekly(env, "weekly block")
    now = env.clock.now()
    assert env.sync().mode == "incremental"
    first = mirrored(env)
    assert first == in_window(env, series.id, now)
    assert 20 < len(first) <= 27  # about 180 days of weeks, not the year Google expands to

    # The series is edited (every instance changes) a month later: the window moved, so did the mirror's reach.
    # (The window is refreshed by a full listing less often here, to see the incremental pass.)
    env.clock.advance(30 * DAY_S)
    env.seeder.update_event(env.cal, series.id, series.to_api() | {"summary": "weekly block (moved room)"})
    now = env.clock.now()
    assert env.sync(config=replace(CONFIG, window_refresh_days=60)).mode == "incremental"
    assert mirrored(env) == in_window(env, series.id, now)
    assert len(mirrored(env)) - len(first) <= 5


def test_instances_entering_the_window_reach_the_mirror_without_any_change(env: Env) -> None:  # noqa: F811
    """An endless weekly block nobody edits: as days pass, its later instances come inside the window.
    A sync token only reports changes, so the window is refreshed by a full listing once the last one is
    ``window_refresh_days`` old: the conflicts a late instance causes are seen before its day comes."""
    series = endless_weekly(env, "lunch")
    assert env.sync().mode == "full"
    assert mirrored(env) == in_window(env, series.id, env.clock.now())

    env.clock.advance((CONFIG.window_refresh_days - 1) * DAY_S)
    assert env.sync().mode == "incremental"  # within the refresh period: only changes are listed

    env.clock.advance(2 * DAY_S)
    now = env.clock.now()
    summary = env.sync()
    assert summary.mode == "full"
    assert mirrored(env) == in_window(env, series.id, now)
    assert env.sync().mode == "incremental"  # refreshed: back to the token
