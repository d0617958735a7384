"""Per-acting-account usage limits ("Avoid Calendar use limits"): 403 quotaExceeded, lockout, isolation, stats.

Everything goes through google-api-python-client; ``/_emulator/*`` through plain HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from devstack import procs, stack

from .helpers import calendar, control, new_batch, stats, timed_event

GOOGLE_403 = {
    "error": {
        "errors": [{"domain": "usageLimits", "reason": "quotaExceeded", "message": "Calendar usage limits exceeded."}],
        "code": 403,
        "message": "Calendar usage limits exceeded.",
    }
}
DEFAULTS = {
    "calendars_created": None,
    "events_created": None,
    "acl_shares": None,
    "external_invites": None,
    "window_s": 3600.0,
    "lockout_s": 10800.0,
}


def _event(n: int = 0, **extra: Any) -> dict[str, Any]:
    return timed_event(f"consulta {n}", "2030-01-07T12:00:00Z", "2030-01-07T13:00:00Z", **extra)


def _refused(request: Any) -> datetime:
    """``request.execute()`` answers Google's usage-limits 403, exactly; the answer's ``Date``."""
    with pytest.raises(HttpError) as err:
        request.execute()
    assert err.value.resp.status == 403
    assert err.value.error_details[0]["reason"] == "quotaExceeded"
    assert json.loads(err.value.content) == GOOGLE_403
    return parsedate_to_datetime(err.value.resp["date"])


def _limits(base: str, body: Any) -> requests.Response:
    return requests.post(f"{base}/_emulator/usage-limits", json=body, timeout=10)


def _usage(base: str, user: str) -> dict[str, Any]:
    return dict(stats(base)["usage"][user])


def test_off_by_default(calendar_base: str) -> None:
    assert requests.get(f"{calendar_base}/_emulator/usage-limits", timeout=10).json() == DEFAULTS
    api = calendar(calendar_base, user="muitas@clinic.example")
    for n in range(30):
        api.calendars().insert(body={"summary": f"sala {n}"}).execute()
    usage = _usage(calendar_base, "muitas@clinic.example")
    assert (usage["calendars_created"], usage["locked_until"]) == (30, None)
    assert stats(calendar_base)["usage_limit_rejections"] == 0


def test_each_limit_breached_answers_googles_403(calendar_base: str) -> None:
    control(calendar_base, "usage-limits", {"calendars_created": 2, "events_created": 3, "acl_shares": 2})
    control(calendar_base, "usage-limits", {"external_invites": 3, "window_s": 60, "lockout_s": 60})

    cals = calendar(calendar_base, user="cals@clinic.example")
    for n in range(2):
        cals.calendars().insert(body={"summary": f"sala {n}"}).execute()
    _refused(cals.calendars().insert(body={"summary": "one too many"}))

    events = calendar(calendar_base, user="events@clinic.example")
    for n in range(3):
        events.events().insert(calendarId="primary", body=_event(n)).execute()
    _refused(events.events().insert(calendarId="primary", body=_event(3)))

    shares = calendar(calendar_base, user="shares@clinic.example")
    for n in range(2):
        rule = {"role": "reader", "scope": {"type": "user", "value": f"p{n}@clinic.example"}}
        shares.acl().insert(calendarId="primary", body=rule).execute()
    _refused(
        shares.acl().insert(calendarId="primary", body={"role": "reader", "scope": {"type": "user", "value": "x@y"}})
    )

    guests = calendar(calendar_base, user="guests@clinic.example")
    attendees = [
        {"email": "ana@gmail.com"},
        {"email": "Bia@Example.org"},
        {"email": "colega@clinic.example"},  # same domain: not external
        {"email": "sala-1@resource.calendar.google.com", "resource": True},  # a room is not a guest
    ]
    ev = guests.events().insert(calendarId="primary", body=_event(attendees=attendees)).execute()
    assert _usage(calendar_base, "guests@clinic.example")["external_invites"] == 2
    # Only attendees not on the event before count: bia is already invited (case aside), caio is new.
    patch = {"attendees": [*attendees, {"email": "bia@example.org"}, {"email": "caio@hotmail.com"}]}
    guests.events().patch(calendarId="primary", eventId=ev["id"], body=patch).execute()
    assert _usage(calendar_base, "guests@clinic.example")["external_invites"] == 3
    update = _event(attendees=[*patch["attendees"], {"email": "davi@outlook.com"}])
    _refused(guests.events().update(calendarId="primary", eventId=ev["id"], body=update))

    snapshot = stats(calendar_base)
    assert snapshot["usage_limit_rejections"] == 4
    assert snapshot["usage"]["cals@clinic.example"]["calendars_created"] == 2
    assert snapshot["usage"]["events@clinic.example"]["events_created"] == 3
    assert snapshot["usage"]["shares@clinic.example"]["acl_shares"] == 2
    assert snapshot["usage"]["guests@clinic.example"]["events_created"] == 1
    assert all(snapshot["usage"][u]["locked_until"] for u in snapshot["usage"])


def test_lockout_refuses_every_write_keeps_reads_and_spares_other_accounts(calendar_base: str) -> None:
    control(calendar_base, "usage-limits", {"calendars_created": 1, "lockout_s": 60})
    user = "agenda-1@clinic.example"
    api = calendar(calendar_base, user=user)
    own = api.calendars().insert(body={"summary": "sala 1"}).execute()
    ev = api.events().insert(calendarId=own["id"], body=_event()).execute()
    # The lockout is measured on the emulator's own clock: the Date of the breaching answer.
    before = _refused(api.calendars().insert(body={"summary": "sala 2"}))

    rule = {"role": "reader", "scope": {"type": "user", "value": "p@clinic.example"}}
    for write in (
        api.events().insert(calendarId=own["id"], body=_event(1)),
        api.events().update(calendarId=own["id"], eventId=ev["id"], body=_event(2)),
        api.events().patch(calendarId=own["id"], eventId=ev["id"], body={"summary": "x"}),
        api.events().delete(calendarId=own["id"], eventId=ev["id"]),
        api.calendars().insert(body={"summary": "sala 3"}),
        api.calendars().delete(calendarId=own["id"]),
        api.acl().insert(calendarId=own["id"], body=rule),
    ):
        _refused(write)
    # Reads keep working.
    assert [e["id"] for e in api.events().list(calendarId=own["id"]).execute()["items"]] == [ev["id"]]
    assert api.events().get(calendarId=own["id"], eventId=ev["id"]).execute()["summary"] == "consulta 0"
    assert own["id"] in {c["id"] for c in api.calendarList().list().execute()["items"]}
    # Another acting account is not affected.
    other = calendar(calendar_base, user="agenda-2@clinic.example")
    other.calendars().insert(body={"summary": "sala 1"}).execute()
    other.events().insert(calendarId="primary", body=_event()).execute()

    snapshot = stats(calendar_base)
    assert snapshot["usage_limit_rejections"] == 8
    locked_until = datetime.fromisoformat(snapshot["usage"][user]["locked_until"].replace("Z", "+00:00"))
    assert 55 <= (locked_until - before).total_seconds() <= 65
    assert snapshot["usage"][user]["calendars_created"] == 1
    assert snapshot["usage"][user]["events_created"] == 1
    assert snapshot["usage"]["agenda-2@clinic.example"]["locked_until"] is None


def test_lockout_expires_and_the_window_slides(calendar_base: str) -> None:
    control(calendar_base, "usage-limits", {"events_created": 2, "window_s": 1, "lockout_s": 1})
    api = calendar(calendar_base, user="rapida@clinic.example")
    for n in range(2):
        api.events().insert(calendarId="primary", body=_event(n)).execute()
    _refused(api.events().insert(calendarId="primary", body=_event(2)))
    assert _usage(calendar_base, "rapida@clinic.example")["locked_until"] is not None
    time.sleep(1.1)
    usage = _usage(calendar_base, "rapida@clinic.example")
    assert (usage["events_created"], usage["locked_until"]) == (0, None)
    for n in range(2):
        api.events().insert(calendarId="primary", body=_event(n + 3)).execute()
    assert _usage(calendar_base, "rapida@clinic.example")["events_created"] == 2


def test_changing_limits_does_not_lift_a_lockout(calendar_base: str) -> None:
    control(calendar_base, "usage-limits", {"acl_shares": 0, "lockout_s": 60})
    api = calendar(calendar_base, user="travada@clinic.example")
    _refused(api.acl().insert(calendarId="primary", body={"role": "reader", "scope": {"type": "user", "value": "a@b"}}))
    locked_until = _usage(calendar_base, "travada@clinic.example")["locked_until"]
    control(calendar_base, "usage-limits", {"acl_shares": None, "lockout_s": 0, "window_s": 1})
    _refused(api.events().insert(calendarId="primary", body=_event()))
    assert _usage(calendar_base, "travada@clinic.example")["locked_until"] == locked_until
    # Statistics reset zeroes counters, not lockouts; a full reset clears both.
    assert control(calendar_base, "stats/reset")["usage_limit_rejections"] == 0
    _refused(api.events().insert(calendarId="primary", body=_event()))
    control(calendar_base, "reset")
    assert requests.get(f"{calendar_base}/_emulator/usage-limits", timeout=10).json() == DEFAULTS
    assert stats(calendar_base)["usage"] == {}
    assert stats(calendar_base)["usage_limit_rejections"] == 0
    api.events().insert(calendarId="primary", body=_event()).execute()


def test_batch_parts_are_charged_and_refused_one_by_one(calendar_base: str) -> None:
    control(calendar_base, "usage-limits", {"events_created": 2, "lockout_s": 60})
    user = "lote@clinic.example"
    api = calendar(calendar_base, user=user)
    answers: list[tuple[str, Any]] = []

    def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
        answers.append((request_id, exception if exception is not None else response))

    batch = new_batch(calendar_base, collect)
    for n in range(4):
        batch.add(api.events().insert(calendarId="primary", body=_event(n)), request_id=str(n))
    batch.execute()
    outcome = dict(answers)
    assert [isinstance(outcome[str(n)], dict) for n in range(4)] == [True, True, False, False]
    for n in (2, 3):
        error = outcome[str(n)]
        assert isinstance(error, HttpError)
        assert error.resp.status == 403
        assert json.loads(error.content) == GOOGLE_403
    assert len(api.events().list(calendarId="primary").execute()["items"]) == 2
    assert stats(calendar_base)["usage_limit_rejections"] == 2


def test_partial_updates_and_bad_bodies(calendar_base: str) -> None:
    assert control(calendar_base, "usage-limits", {"events_created": 5})["events_created"] == 5
    both = control(calendar_base, "usage-limits", {"acl_shares": 2, "window_s": 2})
    assert both == {**DEFAULTS, "events_created": 5, "acl_shares": 2, "window_s": 2.0}
    for bad, where in (
        ({"events_created": -1}, "events_created"),
        ({"events_created": "10"}, "events_created"),
        ({"calendars_created": 2.5}, "calendars_created"),
        ({"window_s": 0}, "window_s"),
        ({"window_s": None}, "window_s"),
        ({"lockout_s": -5}, "lockout_s"),
        ({"lockout_s": "1h"}, "lockout_s"),
        ({"per_minute": 3}, "per_minute"),
        ([1, 2], "JSON object"),
    ):
        answer = _limits(calendar_base, bad)
        assert answer.status_code == 400, bad
        error = answer.json()["error"]
        assert where in error["message"]
        assert error["errors"][0]["reason"] == "invalid"
    assert requests.get(f"{calendar_base}/_emulator/usage-limits", timeout=10).json() == both


@pytest.fixture(scope="module")
def local_limits_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An emulator started as the stack starts it with ``CALSYNC_DEVSTACK_USAGE_LIMITS=local``."""
    limits = stack.usage_limits_from({"CALSYNC_DEVSTACK_USAGE_LIMITS": "local"})
    logs: Path = tmp_path_factory.mktemp("usage-limits")
    server = procs.start_calendar_emulator(procs.free_port(), logs, usage_limits=limits)
    try:
        yield f"http://{procs.HOST}:{server.port}"
    finally:
        server.stop()


def test_the_stacks_local_limits_are_in_force_from_start_and_after_reset(local_limits_emulator: str) -> None:
    assert stack.usage_limits_from({}) == stack.LOCAL_USAGE_LIMITS  # on unless turned off
    assert stack.usage_limits_from({"CALSYNC_DEVSTACK_USAGE_LIMITS": "off"}) is None
    with pytest.raises(stack.StackError):
        stack.usage_limits_from({"CALSYNC_DEVSTACK_USAGE_LIMITS": "google"})
    base = local_limits_emulator
    assert requests.get(f"{base}/_emulator/usage-limits", timeout=10).json() == stack.LOCAL_USAGE_LIMITS
    api = calendar(base, user="agenda@clinic.example")
    for n in range(25):
        api.calendars().insert(body={"summary": f"sala {n}"}).execute()
    _refused(api.calendars().insert(body={"summary": "sala 26"}))
    control(base, "reset")
    assert requests.get(f"{base}/_emulator/usage-limits", timeout=10).json() == stack.LOCAL_USAGE_LIMITS
    api.calendars().insert(body={"summary": "sala 26"}).execute()
