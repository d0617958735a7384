"""Point 10: the control API (/_emulator/*) and the command line (startup line, --state-file)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from devstack import procs

from .helpers import calendar, control, new_batch, stats, timed_event

USER = "recepcao@clinic.example"
EVENT = timed_event("Consulta", "2030-01-07T10:00:00Z", "2030-01-07T11:00:00Z")
EVENTS_PATH = r"^/calendar/v3/calendars/[^/]+/events$"


def test_reset_wipes_state_faults_and_stats(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    cal = api.calendars().insert(body={"summary": "Sala"}).execute()["id"]
    control(calendar_base, "faults", {"path": "nothing-matches", "status": 500})
    control(calendar_base, "reset")
    with pytest.raises(HttpError) as err:
        api.calendars().get(calendarId=cal).execute()
    assert err.value.resp.status == 404
    assert control(calendar_base, "faults", method="GET") == {"faults": []}
    assert stats(calendar_base)["requests"] == {"GET /calendar/v3/calendars/{calendarId}": 1}


def test_faults_are_queued_matched_consumed_and_cleared(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    listed = control(
        calendar_base,
        "faults",
        [
            {"method": "GET", "path": EVENTS_PATH, "status": 503, "count": 2, "retry_after_s": 3},
            {"method": "POST", "path": EVENTS_PATH, "status": 500, "reason": "backendError", "delay_ms": 50},
        ],
    )
    assert [f["status"] for f in listed["faults"]] == [503, 500]
    for _ in range(2):
        with pytest.raises(HttpError) as err:
            api.events().list(calendarId="primary").execute()
        assert err.value.resp.status == 503
        assert err.value.resp["retry-after"] == "3"
        assert err.value.error_details[0]["reason"] == "backendError"
    assert api.events().list(calendarId="primary").execute()["items"] == []
    with pytest.raises(HttpError) as err:
        api.events().insert(calendarId="primary", body=EVENT).execute()
    assert err.value.resp.status == 500
    assert api.events().insert(calendarId="primary", body=EVENT).execute()["status"] == "confirmed"
    control(calendar_base, "faults", {"path": "/calendar/v3/", "status": 500, "count": 5})
    assert control(calendar_base, "faults", method="DELETE") == {"faults": []}
    api.calendarList().list().execute()
    assert stats(calendar_base)["faults_injected"] == 3


def test_faults_apply_to_batch_parts(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    control(calendar_base, "faults", {"method": "POST", "path": EVENTS_PATH, "status": 503, "count": 1})
    outcomes: list[int] = []

    def collect(_rid: str, _response: Any, exception: HttpError | None) -> None:
        outcomes.append(exception.resp.status if exception else 200)

    batch = new_batch(calendar_base, callback=collect)
    for _ in range(3):
        batch.add(api.events().insert(calendarId="primary", body=EVENT))
    batch.execute()
    assert outcomes == [503, 200, 200]


def test_expire_all_sync_tokens(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    cals = [api.calendars().insert(body={"summary": f"S{i}"}).execute()["id"] for i in range(2)]
    tokens = [api.events().list(calendarId=c).execute()["nextSyncToken"] for c in cals]
    assert control(calendar_base, "sync-tokens/expire", {})["expired_calendars"] >= 2
    for cal, token in zip(cals, tokens, strict=True):
        with pytest.raises(HttpError) as err:
            api.events().list(calendarId=cal, syncToken=token).execute()
        assert err.value.error_details[0]["reason"] == "fullSyncRequired"


def test_stats_reset_and_control_validation(calendar_base: str) -> None:
    calendar(calendar_base, user=USER).calendarList().list().execute()
    assert stats(calendar_base)["methods"] == {"calendar.calendarList.list": 1}
    control(calendar_base, "stats/reset")
    assert stats(calendar_base)["methods"] == {}
    bad = requests.post(f"{calendar_base}/_emulator/push", json={"mode": "sometimes"}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == 400
    bad = requests.post(f"{calendar_base}/_emulator/faults", json={"path": "x", "status": 200}, timeout=10)
    assert bad.status_code == 400


def test_startup_line_and_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    port = procs.free_port()
    argv = [sys.executable, "-m", "devstack.calendar_emulator", "--host", procs.HOST, "--port", str(port)]
    argv += ["--state-file", str(state)]
    server = procs.start("cal-state", argv, port=port, log_dir=tmp_path, ready_pattern="listening on")
    base = f"http://{procs.HOST}:{port}"
    try:
        first_line = server.log.read_text().splitlines()[0]
        assert re.fullmatch(rf"calendar-emulator listening on http://127\.0\.0\.1:{port}", first_line)
        api = calendar(base, user=USER)
        ev = api.events().insert(calendarId="primary", body=EVENT).execute()
        token = api.events().list(calendarId="primary").execute()["nextSyncToken"]
    finally:
        server.stop()
    assert state.exists()
    server = procs.start("cal-state-2", argv, port=port, log_dir=tmp_path, ready_pattern="listening on")
    try:
        api = calendar(base, user=USER)
        assert api.events().get(calendarId="primary", eventId=ev["id"]).execute()["etag"] == ev["etag"]
        assert api.events().list(calendarId="primary", syncToken=token).execute()["items"] == []
        again = api.events().patch(calendarId="primary", eventId=ev["id"], body={"summary": "z"}).execute()
        assert again["etag"] != ev["etag"]
    finally:
        server.stop()
