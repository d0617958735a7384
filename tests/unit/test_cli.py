"""The ``calsync`` admin CLI through typer's ``CliRunner``, against a fake admin API on 127.0.0.1.

The fake is a tiny werkzeug app serving answers built from the API's own models (``calsync.results``,
dumped as ``calsync.http`` dumps them), so they cannot drift from the real API; it records every request, so each
test asserts both what the CLI sent (method, path, query, body, bearer token) and what it printed and
how it exited. No mocks: the real client, over real HTTP.
"""

from __future__ import annotations

import copy
import json
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pytest
from typer.testing import CliRunner, Result
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from calsync.cli.app import app
from calsync.cli.cache import PlanCache
from calsync.cli.client import ExitCode
from calsync.results import (
    ConflictItem,
    ConflictsPage,
    EventResynced,
    HealthAnswer,
    HealthCalendar,
    HealthFreeBusy,
    PlanAnswer,
    PlanCalendar,
    PlanItem,
    PlanStatus,
    PlanWarning,
    ProgressAnswer,
    ProgressCalendar,
    ProgressError,
    Provisioned,
    Quota,
    SyncEnqueued,
    Totals,
)
from calsync.results import Result as ApiResult
from calsync.results_connections import ClinicDisconnected, ConnectionStarted

PlanAction = Literal["create", "update", "delete", "skip"]

TOKEN = "t0ken-for-tests"
PLAN_ID = "plan-2025w11-abc"
CONFIRM = "confirm-one"
CONFIRM_CLEAR = "confirm-two"
PLANNED_AT = datetime(2025, 3, 9, 11, 0, tzinfo=UTC)
BRT = timezone(timedelta(hours=-3))


def wire(answer: ApiResult) -> dict[str, Any]:
    """An answer as the admin API sends it (``calsync.http`` dumps its results exactly so)."""
    return answer.model_dump(mode="json", exclude_unset=True)


def _item(
    action: PlanAction, reason: str, event_id: str, allocation_id: str | None, hour: int | None = None
) -> PlanItem:
    """One plan item; times only for a desired event (as the planner answers)."""
    if hour is None:
        return PlanItem(action=action, reason=reason, event_id=event_id, allocation_id=allocation_id)
    start = datetime(2025, 3, 10, hour, tzinfo=BRT)
    return PlanItem(
        action=action,
        reason=reason,
        event_id=event_id,
        allocation_id=allocation_id,
        start=start,
        end=start + timedelta(minutes=50),
    )


def _plan() -> PlanAnswer:
    """A plan over two calendars: creates, an update, a delete and two skips with their reasons."""
    calendars = [
        PlanCalendar(
            calendar_id="prof-ana",
            create=2,
            update=1,
            delete=0,
            skip=1,
            items=[
                _item("create", "new_allocation", "ev1", "alloc-1", 9),
                _item("create", "new_allocation", "ev2", "alloc-2", 10),
                _item("update", "allocation_changed", "ev3", "alloc-3", 11),
                _item("skip", "untagged_event", "manual-7", None),
            ],
        ),
        PlanCalendar(
            calendar_id="room-101",
            create=1,
            update=0,
            delete=1,
            skip=1,
            deletes_by_clinic={"clinic-1": 1},
            items=[
                _item("create", "new_allocation", "ev4", "alloc-1", 9),
                _item("delete", "allocation_cancelled", "ev5", "alloc-9"),
                _item("skip", "past_event", "ev6", "alloc-0"),
            ],
        ),
    ]
    return PlanAnswer(
        plan_id=PLAN_ID,
        planned_at=PLANNED_AT,
        confirm_token=CONFIRM,
        expires_at=PLANNED_AT + timedelta(hours=1),
        clear_future=False,
        totals=Totals(create=3, update=1, delete=1, skip=2),
        quota=Quota(requests=5, minutes=0.01),
        calendars=calendars,
    )


PLAN_ANSWER = wire(_plan())
# The second token is a key the planner sets only for a clear_future plan.
CLEAR_PLAN_ANSWER = wire(_plan().model_copy(update={"clear_future": True, "confirm_clear_future_token": CONFIRM_CLEAR}))
HEALTH_ANSWER = wire(
    HealthAnswer(
        status="degraded",
        checked_at=PLANNED_AT,
        calendars=[
            HealthCalendar(
                key="prof-ana",
                google_calendar_id="ana@group.calendar.google.com",
                kind="professional",
                status="ok",
                sync_status="ok",
                last_synced_at=PLANNED_AT - timedelta(minutes=1),
                last_sync_age_s=60,
                channel_expires_at=PLANNED_AT + timedelta(days=6),
                open_conflicts=0,
            ),
            HealthCalendar(
                key="room-101",
                google_calendar_id="room101@group.calendar.google.com",
                kind="room",
                status="failing",
                sync_status="error",
                last_synced_at=None,
                last_sync_age_s=None,
                channel_expires_at=None,
                open_conflicts=2,
            ),
        ],
        free_busy=[
            HealthFreeBusy(
                clinic_id="c1", professional_id="ana", readable=False, reason="not_shared", checked_at=PLANNED_AT
            )
        ],
    )
)


def _conflict_item(number: int, *, status: Literal["open", "resolved"] = "open") -> ConflictItem:
    return ConflictItem(
        id=f"conflict-{number}",
        kind="moved_in_google",
        calendar_id="prof-ana",
        event_id=f"ev{number}",
        allocation_id=f"alloc-{number}",
        suggestion="move the allocation to 2025-03-11 10:00",
        status=status,
        detected_at=PLANNED_AT - timedelta(hours=1),
        resolved_at=PLANNED_AT if status == "resolved" else None,
    )


def _conflicts(*numbers: int, next_page_token: str | None = None) -> dict[str, Any]:
    return wire(ConflictsPage(items=[_conflict_item(n) for n in numbers], next_page_token=next_page_token))


# --- The fake admin API ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


Answer = tuple[int, Any] | Callable[[Seen], tuple[int, Any]]


@dataclass
class FakeAdminApi:
    """Answers per (method, path): a fixed answer, a queue of answers (the last repeats), or a function."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Answer ``method path`` with ``answers`` in turn (the last one repeats)."""
        self.routes[(method, path)] = list(answers)

    def requests_to(self, method: str, path: str) -> list[Seen]:
        """The requests received on one route."""
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    def last_authorization(self) -> str | None:
        """The Authorization header of the latest request."""
        return self.seen[-1].authorization

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The WSGI app: record, then answer from the routes (404 in the API's error shape otherwise)."""
        request = Request(environ)
        raw = request.get_data(as_text=True)
        seen = Seen(
            method=request.method,
            path=request.path,
            query=request.args.to_dict(),
            body=json.loads(raw) if raw else None,
            authorization=request.headers.get("Authorization"),
        )
        self.seen.append(seen)
        queue = self.routes.get((request.method, request.path))
        body: Any
        if not queue:
            status, body = 404, {"error": {"code": "not_found", "message": "no such route", "details": {}}}
        else:
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            status, body = answer(seen) if callable(answer) else answer
        if isinstance(body, str):
            response = Response(body, status=status, mimetype="text/html")
        else:
            response = Response(json.dumps(body), status=status, mimetype="application/json")
        return response(environ, start_response)


class QuietHandler(WSGIRequestHandler):
    """No access log: the CLI's own output is what the tests read."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""


@pytest.fixture
def api() -> Iterator[FakeAdminApi]:
    """A fake admin API on a free 127.0.0.1 port, shut down after the test."""
    fake = FakeAdminApi()
    server = make_server("127.0.0.1", 0, fake.wsgi, threaded=True, request_handler=QuietHandler)
    fake.url = f"http://127.0.0.1:{server.server_port}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def env(api: FakeAdminApi, tmp_path: Path) -> dict[str, str | None]:
    """The CLI's environment: the fake's URL and token, a private plan cache, no local stack, wide tables."""
    return {
        "CALSYNC_ADMIN_URL": api.url,
        "CALSYNC_ADMIN_TOKEN": TOKEN,
        "CALSYNC_CACHE_DIR": str(tmp_path / "plans"),
        "CALSYNC_DEVSTACK_DIR": str(tmp_path / "no-stack"),
        "COLUMNS": "220",
    }


def run(env: Mapping[str, str | None], *args: str, stdin: str | None = None) -> Result:
    """``calsync ARGS`` in-process."""
    return CliRunner(env=dict(env)).invoke(app, list(args), input=stdin)


def assert_clean_failure(result: Result, code: ExitCode) -> None:
    """An expected failure: the exit code, and no traceback anywhere."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


# --- plan -------------------------------------------------------------------------------------------


def test_plan_sends_the_request_renders_tables_and_caches_the_tokens(
    api: FakeAdminApi, env: dict[str, str | None], tmp_path: Path
) -> None:
    api.on("POST", "/publish/plan", (201, PLAN_ANSWER))

    result = run(
        env, "plan", "--clinic", "clinic-1", "--from", "2025-03-10", "--to", "2025-03-16", "--tz", "America/Sao_Paulo"
    )

    assert result.exit_code == 0, result.output
    (sent,) = api.requests_to("POST", "/publish/plan")
    assert sent.body == {
        "clinic_id": "clinic-1",
        "from": "2025-03-10T00:00:00-03:00",
        "to": "2025-03-16T00:00:00-03:00",
        "clear_future": False,
    }
    assert sent.authorization == f"Bearer {TOKEN}"
    out = result.stdout
    counts = next(line for line in out.splitlines() if "prof-ana" in line)
    assert [cell.strip() for cell in counts.strip("│ ").split("│")] == ["prof-ana", "2", "1", "0", "1", "-"]
    room = next(line for line in out.splitlines() if "room-101" in line and "│" in line)
    assert [cell.strip() for cell in room.strip("│ ").split("│")][-1] == "clinic-1:1"  # whose events it deletes
    total = next(line for line in out.splitlines() if "total" in line)
    assert [cell.strip() for cell in total.strip("│ ").split("│")] == ["total", "3", "1", "1", "2"]
    assert "5 requests" in out
    assert "alloc-9" in out  # the delete is listed among the changes
    skipped = out[out.index("Skipped") :]
    assert "untagged_event" in skipped
    assert skipped.splitlines()[2].count("reason") == 1  # header: each column once
    assert "past_event" in skipped
    assert "ev1" not in skipped  # creates are not skips
    assert f"calsync apply {PLAN_ID}" in out
    assert CONFIRM not in result.output  # tokens are kept, not printed

    cached = PlanCache(tmp_path / "plans").load(PLAN_ID)
    assert cached is not None
    assert (cached.confirm_token, cached.url, cached.clear_future) == (CONFIRM, api.url, False)
    assert (cached.totals, cached.calendars, cached.planned_at) == (
        Totals(create=3, update=1, delete=1, skip=2),
        2,
        PLANNED_AT,
    )
    assert stat.S_IMODE(PlanCache(tmp_path / "plans").path(PLAN_ID).stat().st_mode) == 0o600


def test_plan_json_prints_the_raw_answer(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    api.on("POST", "/publish/plan", (201, PLAN_ANSWER))

    result = run(
        env,
        "plan",
        "--clinic",
        "c",
        "--from",
        "2025-03-10",
        "--to",
        "2025-03-16",
        "--tz",
        "America/Sao_Paulo",
        "--json",
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == PLAN_ANSWER


def test_plan_with_clear_future_asks_for_it_and_says_so(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    api.on("POST", "/publish/plan", (201, CLEAR_PLAN_ANSWER))

    result = run(
        env,
        "plan",
        "--clinic",
        "c",
        "--from",
        "2025-03-10",
        "--to",
        "2025-03-16",
        "--tz",
        "America/Sao_Paulo",
        "--clear-future",
    )

    assert result.exit_code == 0, result.output
    assert api.requests_to("POST", "/publish/plan")[0].body["clear_future"] is True
    assert "clear_future" in result.stdout


def test_plan_shows_its_warnings_of_busy_time(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    warning = PlanWarning(
        allocation_id="alloc-7",
        calendar_id="prof-ana",
        kind="busy_elsewhere",
        start=PLANNED_AT + timedelta(days=1),
        end=PLANNED_AT + timedelta(days=1, hours=2),
    )
    api.on("POST", "/publish/plan", (201, wire(_plan().model_copy(update={"warnings": [warning]}))))

    result = run(env, "plan", "--clinic", "clinic-1", "--from", "2025-03-10", "--to", "2025-03-16", "--tz", "UTC")

    assert result.exit_code == 0, result.output
    shown = result.stdout[result.stdout.index("Warnings") :]
    row = next(line for line in shown.splitlines() if "alloc-7" in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:3] == ["alloc-7", "prof-ana", "busy_elsewhere"]


def test_plan_refuses_a_malformed_date_without_calling_the_api(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    result = run(
        env, "plan", "--clinic", "c", "--from", "2025-13-40", "--to", "2025-03-16", "--tz", "America/Sao_Paulo"
    )

    assert result.exit_code == ExitCode.USAGE
    assert "not an ISO date" in result.output
    assert api.seen == []


def test_plan_window_needs_an_offset_or_a_zone(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    api.on("POST", "/publish/plan", (201, PLAN_ANSWER))

    bare = run(env, "plan", "--clinic", "c", "--from", "2025-03-10", "--to", "2025-03-16T00:00:00Z")
    unknown_zone = run(env, "plan", "--clinic", "c", "--from", "2025-03-10", "--to", "2025-03-16", "--tz", "Mars/Base")
    assert bare.exit_code == unknown_zone.exit_code == ExitCode.USAGE
    assert "no timezone offset" in bare.output
    assert "not an IANA time zone" in unknown_zone.output
    assert api.seen == []

    given = run(env, "plan", "--clinic", "c", "--from", "2025-03-10T08:00:00+01:00", "--to", "2025-03-16T00:00:00Z")
    assert given.exit_code == 0, given.output
    body = api.requests_to("POST", "/publish/plan")[0].body
    assert (body["from"], body["to"]) == ("2025-03-10T08:00:00+01:00", "2025-03-16T00:00:00+00:00")


def test_plan_validation_error_shows_the_fields(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    error = {"error": {"code": "invalid_request", "message": "invalid request", "details": {"fields": ["to"]}}}
    api.on("POST", "/publish/plan", (400, error))

    result = run(
        env, "plan", "--clinic", "c", "--from", "2025-03-16", "--to", "2025-03-10", "--tz", "America/Sao_Paulo"
    )

    assert_clean_failure(result, ExitCode.API_ERROR)
    assert "HTTP 400 invalid_request: invalid request" in result.stderr
    assert "fields=to" in result.stderr


# --- apply ------------------------------------------------------------------------------------------


def _plan_first(api: FakeAdminApi, env: dict[str, str | None], answer: dict[str, Any] = PLAN_ANSWER) -> None:
    api.on("POST", "/publish/plan", (201, answer))
    assert (
        run(
            env, "plan", "--clinic", "c", "--from", "2025-03-10", "--to", "2025-03-16", "--tz", "America/Sao_Paulo"
        ).exit_code
        == 0
    )


def _progress_answer(
    state: PlanStatus, done: int, total: int = 6, errors: list[ProgressError] | None = None
) -> ProgressAnswer:
    """A plan's progress over its two calendars (prof-ana's writes counted first)."""
    ana = min(done, 4)
    return ProgressAnswer(
        plan_id=PLAN_ID,
        status=state,
        done=done,
        total=total,
        errors=errors or [],
        calendars=[
            ProgressCalendar(calendar_id="prof-ana", done=ana, total=4, written=ana, skipped=0, failed=0),
            ProgressCalendar(
                calendar_id="room-101", done=done - ana, total=total - 4, written=done - ana, skipped=0, failed=0
            ),
        ],
    )


def _progress(
    state: PlanStatus, done: int, total: int = 6, errors: list[ProgressError] | None = None
) -> tuple[int, Any]:
    return 200, wire(_progress_answer(state, done, total, errors))


ACCEPTED = (202, wire(_progress_answer("running", 0)))


def test_apply_confirms_sends_the_cached_token_and_polls_until_done(
    api: FakeAdminApi, env: dict[str, str | None]
) -> None:
    _plan_first(api, env)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("planned", 0), _progress("running", 3), _progress("done", 6))
    api.on("POST", "/publish/apply", ACCEPTED)

    result = run(env, "apply", PLAN_ID, "--poll-interval", "0", stdin="y\n")

    assert result.exit_code == 0, result.output
    (sent,) = api.requests_to("POST", "/publish/apply")
    assert sent.body == {"plan_id": PLAN_ID, "confirm": CONFIRM}
    assert sent.authorization == f"Bearer {TOKEN}"
    assert "3 creates, 1 updates, 1 deletes on 2 calendars" in result.stderr  # the question
    assert "clear_future" not in result.stderr  # asked once only
    assert len(api.requests_to("GET", f"/publish/{PLAN_ID}")) == 3  # status before the prompt, then polled to done
    assert "done, 6/6 done" in result.stdout


def test_apply_declined_writes_nothing(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    _plan_first(api, env)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("planned", 0))

    result = run(env, "apply", PLAN_ID, stdin="n\n")

    assert_clean_failure(result, ExitCode.ABORTED)
    assert "nothing was changed" in result.stderr
    assert api.requests_to("POST", "/publish/apply") == []


def test_apply_without_an_answer_to_the_prompt_aborts(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    _plan_first(api, env)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("planned", 0))

    result = run(env, "apply", PLAN_ID, stdin="")

    assert_clean_failure(result, ExitCode.ABORTED)
    assert api.requests_to("POST", "/publish/apply") == []


@pytest.mark.parametrize(("answers", "applied"), [("y\ny\n", True), ("y\nn\n", False), ("n\n", False)])
def test_apply_clear_future_asks_twice_and_sends_both_tokens(
    api: FakeAdminApi, env: dict[str, str | None], answers: str, applied: bool
) -> None:
    _plan_first(api, env, CLEAR_PLAN_ANSWER)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("done", 6))
    api.on("POST", "/publish/apply", ACCEPTED)

    result = run(env, "apply", PLAN_ID, "--poll-interval", "0", stdin=answers)

    sent = api.requests_to("POST", "/publish/apply")
    if applied:
        assert result.exit_code == 0, result.output
        assert result.stderr.count("?") >= 2
        assert "DELETES every future calsync event" in result.stderr
        assert [s.body for s in sent] == [
            {"plan_id": PLAN_ID, "confirm": CONFIRM, "confirm_clear_future": CONFIRM_CLEAR}
        ]
    else:
        assert_clean_failure(result, ExitCode.ABORTED)
        assert sent == []


def test_apply_yes_skips_prompts_and_json_prints_the_final_status(
    api: FakeAdminApi, env: dict[str, str | None]
) -> None:
    _plan_first(api, env, CLEAR_PLAN_ANSWER)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("running", 1), _progress("done", 6))
    api.on("POST", "/publish/apply", ACCEPTED)

    result = run(env, "apply", PLAN_ID, "--yes", "--json", "--poll-interval", "0")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == _progress("done", 6)[1]
    assert api.requests_to("POST", "/publish/apply")[0].body["confirm_clear_future"] == CONFIRM_CLEAR


def test_apply_without_cached_plan_needs_explicit_tokens(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    api.on("GET", f"/publish/{PLAN_ID}", _progress("done", 6))
    api.on("POST", "/publish/apply", ACCEPTED)

    refused = run(env, "apply", PLAN_ID, "--yes")
    assert_clean_failure(refused, ExitCode.ABORTED)
    assert "no confirmation token" in refused.stderr
    assert "--confirm" in refused.stderr
    assert api.seen == []

    accepted = run(env, "apply", PLAN_ID, "--yes", "--confirm", "given", "--poll-interval", "0")
    assert accepted.exit_code == 0, accepted.output
    assert api.requests_to("POST", "/publish/apply")[0].body == {"plan_id": PLAN_ID, "confirm": "given"}


def test_apply_refuses_a_plan_made_on_another_api(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    _plan_first(api, env)
    other = {**env, "CALSYNC_ADMIN_URL": "http://127.0.0.1:9/"}  # nothing listens there; never contacted

    result = run(other, "apply", PLAN_ID, "--yes")

    assert_clean_failure(result, ExitCode.ABORTED)
    assert "was made on" in result.stderr
    assert api.requests_to("POST", "/publish/apply") == []


def test_apply_failed_plan_shows_errors_and_exits_7(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    _plan_first(api, env)
    error = ProgressError(calendar_id="room-101", event_id="ev5", code="calendar_not_shared")
    api.on("GET", f"/publish/{PLAN_ID}", _progress("failed", 5, errors=[error]))
    api.on("POST", "/publish/apply", ACCEPTED)

    result = run(env, "apply", PLAN_ID, "--yes", "--poll-interval", "0")

    assert_clean_failure(result, ExitCode.PUBLISH_FAILED)
    assert "calendar_not_shared" in result.stdout
    assert "failed, 5/6 done" in result.stdout


def test_apply_stale_plan_says_plan_again(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    _plan_first(api, env)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("planned", 0))
    stale = {"error": {"code": "conflict", "message": "plan is stale, plan again", "details": {}}}
    api.on("POST", "/publish/apply", (409, stale))

    result = run(env, "apply", PLAN_ID, "--yes")

    assert_clean_failure(result, ExitCode.CONFLICT)
    assert "plan is stale, plan again" in result.stderr
    assert "calsync plan" in result.stderr


def test_apply_stops_waiting_at_the_wait_timeout(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    _plan_first(api, env)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("running", 2))
    api.on("POST", "/publish/apply", ACCEPTED)

    result = run(env, "apply", PLAN_ID, "--yes", "--poll-interval", "0", "--wait-timeout", "0")

    assert_clean_failure(result, ExitCode.STILL_RUNNING)
    assert f"calsync status {PLAN_ID}" in result.stderr


def test_apply_unknown_plan_fails_before_any_prompt(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    unknown = {"error": {"code": "not_found", "message": "unknown plan nope", "details": {"plan_id": "nope"}}}
    api.on("GET", "/publish/nope", (404, unknown))

    result = run(env, "apply", "nope", "--confirm", "x")

    assert_clean_failure(result, ExitCode.NOT_FOUND)
    assert "unknown plan nope" in result.stderr
    assert "?" not in result.stderr.split("Error")[0]  # no question was asked
    assert api.requests_to("POST", "/publish/apply") == []


def test_apply_no_wait_returns_the_accepted_answer(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    _plan_first(api, env)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("planned", 0))
    api.on("POST", "/publish/apply", ACCEPTED)

    result = run(env, "apply", PLAN_ID, "--yes", "--no-wait", "--json")
    table = run(env, "apply", PLAN_ID, "--yes", "--no-wait")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ACCEPTED[1]
    assert table.exit_code == 0, table.output
    assert "running, 0/6 done" in table.stdout
    assert len(api.requests_to("GET", f"/publish/{PLAN_ID}")) == 2  # once per run, before the prompt: no polling


def test_status_shows_per_calendar_progress(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    status, body = _progress("running", 5)
    api.on("GET", f"/publish/{PLAN_ID}", (status, body))

    result = run(env, "status", PLAN_ID)

    assert result.exit_code == 0, result.output
    assert "running, 5/6 done" in result.stdout
    room = next(line for line in result.stdout.splitlines() if "room-101" in line)
    assert [cell.strip() for cell in room.strip("│ ").split("│")][:3] == ["room-101", "1", "2"]
    assert json.loads(run(env, "status", PLAN_ID, "--json").stdout) == body


# --- provision, sync, conflicts, resolve, health ------------------------------------------------------


def test_provision_schedules_the_clinic_and_follows_it_to_the_end(
    api: FakeAdminApi, env: dict[str, str | None]
) -> None:
    keys = ["clinic-1-prof-ana", "clinic-1-room-101"]

    def status(created: int, done: bool) -> dict[str, Any]:
        return wire(
            Provisioned(
                clinic_id="clinic-1", created=created, shared=min(created, 1), watched=created, calendars=keys,
                total=2, done=done,
            )
        )  # fmt: skip

    started = status(0, False) | {"scheduled": 2}
    api.on("POST", "/provision", (200, started), (200, status(2, True)))
    api.on("GET", "/provision/clinic-1", (200, status(1, False)), (200, status(2, True)))

    result = run(env, "provision", "--clinic", "clinic-1", "--poll-interval", "0")

    assert result.exit_code == 0, result.output
    assert api.requests_to("POST", "/provision")[0].body == {"clinic_id": "clinic-1"}
    assert len(api.requests_to("GET", "/provision/clinic-1")) == 2  # followed until every calendar is watched
    assert "Provisioned clinic clinic-1" in result.stdout
    created = next(line for line in result.stdout.splitlines() if "created" in line)
    assert [cell.strip() for cell in created.strip("│ ").split("│")] == ["created", "2"]
    assert "clinic-1-prof-ana, clinic-1-room-101" in result.stdout
    # Again: everything exists, nothing to follow.
    assert json.loads(run(env, "provision", "--clinic", "clinic-1", "--json").stdout) == status(2, True)


def test_connect_prints_the_consent_link_and_disconnect_revokes(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    url = "https://accounts.google.com/o/oauth2/v2/auth?client_id=x&state=s"
    started = ConnectionStarted(
        clinic_id="clinic-1", consent_url=url, expires_at=datetime(2026, 3, 2, 12, 10, tzinfo=UTC), scopes=["a", "b"]
    )
    api.on("POST", "/clinics/clinic-1/connection", (201, wire(started)))
    api.on(
        "DELETE", "/clinics/clinic-1/connection", (200, wire(ClinicDisconnected(clinic_id="clinic-1", revoked=True)))
    )

    result = run(env, "connect", "--clinic", "clinic-1", "--login-hint", "agenda@clinic.example", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["consent_url"] == url
    assert api.requests_to("POST", "/clinics/clinic-1/connection")[0].query == {"login_hint": "agenda@clinic.example"}
    shown = run(env, "connect", "--clinic", "clinic-1")
    assert "Google account" in " ".join(shown.stdout.split())
    gone = run(env, "disconnect", "--clinic", "clinic-1")
    assert gone.exit_code == 0, gone.output
    revoked = next(line for line in gone.stdout.splitlines() if "revoked" in line)
    assert [cell.strip() for cell in revoked.strip("│ ").split("│")] == ["revoked", "yes"]


def test_sync_a_calendar_and_one_event(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    def answer(seen: Seen) -> tuple[int, Any]:
        calendar_id, event_id = seen.body["calendar_id"], seen.body.get("event_id")
        if event_id is None:
            return 202, wire(SyncEnqueued(calendar_id=calendar_id, enqueued=True, task_name="dev-sync-x"))
        resynced = EventResynced(
            calendar_id=calendar_id,
            event_id=event_id,
            written=1,
            unchanged=0,
            ignored=0,
            conflicts_opened=1,
            conflicts_resolved=0,
        )
        return 200, wire(resynced)

    api.on("POST", "/sync", answer)

    whole = run(env, "sync", "prof-ana")
    one = run(env, "sync", "prof-ana", "--event", "ev1", "--json")
    shown = run(env, "sync", "prof-ana", "--event", "ev1")

    assert whole.exit_code == one.exit_code == shown.exit_code == 0, whole.output + one.output + shown.output
    assert "dev-sync-x" in whole.stdout
    assert [s.body for s in api.requests_to("POST", "/sync")] == [
        {"calendar_id": "prof-ana"},
        {"calendar_id": "prof-ana", "event_id": "ev1"},
        {"calendar_id": "prof-ana", "event_id": "ev1"},
    ]
    assert json.loads(one.stdout) == answer(api.requests_to("POST", "/sync")[1])[1]
    assert "Sync of prof-ana, event ev1" in shown.stdout
    opened = next(line for line in shown.stdout.splitlines() if "conflicts_opened" in line)
    assert [cell.strip() for cell in opened.strip("│ ").split("│")] == ["conflicts_opened", "1"]


def test_sync_unknown_calendar_is_a_clean_404(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    unknown = {"error": {"code": "not_found", "message": "unknown calendar nope", "details": {"calendar_id": "nope"}}}
    api.on("POST", "/sync", (404, unknown))

    result = run(env, "sync", "nope")

    assert_clean_failure(result, ExitCode.NOT_FOUND)
    assert "unknown calendar nope" in result.stderr


def test_conflicts_filters_and_follows_pages(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    api.on(
        "GET",
        "/conflicts",
        (200, _conflicts(1, 2, next_page_token="p2")),
        (200, _conflicts(3)),
    )

    result = run(env, "conflicts", "--calendar", "prof-ana", "--status", "open")

    assert result.exit_code == 0, result.output
    first, second = api.requests_to("GET", "/conflicts")
    assert first.query == {"calendar_id": "prof-ana", "status": "open", "page_size": "100"}
    assert second.query == {"calendar_id": "prof-ana", "status": "open", "page_size": "100", "page_token": "p2"}
    for number in (1, 2, 3):
        assert f"conflict-{number}" in result.stdout
    assert "Conflicts (3)" in result.stdout


def test_conflicts_limit_json_and_empty(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    api.on("GET", "/conflicts", (200, _conflicts(1, 2, next_page_token="p2")))

    limited = run(env, "conflicts", "--limit", "2", "--json")
    assert limited.exit_code == 0, limited.output
    assert json.loads(limited.stdout) == _conflicts(1, 2, next_page_token="p2")
    assert len(api.requests_to("GET", "/conflicts")) == 1  # the limit was reached on page one

    api.on("GET", "/conflicts", (200, _conflicts()))
    assert "No conflicts." in run(env, "conflicts").stdout
    assert run(env, "conflicts", "--status", "bogus").exit_code == ExitCode.USAGE


def test_resolve_accept_google_needs_no_prompt_republish_does(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    api.on("POST", "/conflicts/conflict-1/resolve", (200, wire(_conflict_item(1, status="resolved"))))

    accepted = run(env, "resolve", "conflict-1", "--action", "accept_google")
    declined = run(env, "resolve", "conflict-1", "--action", "republish", stdin="n\n")
    republished = run(env, "resolve", "conflict-1", "--action", "republish", stdin="y\n")

    assert accepted.exit_code == 0, accepted.output
    assert "resolved" in accepted.stdout
    assert_clean_failure(declined, ExitCode.ABORTED)
    assert republished.exit_code == 0, republished.output
    bodies = [s.body for s in api.requests_to("POST", "/conflicts/conflict-1/resolve")]
    assert bodies == [{"action": "accept_google"}, {"action": "republish"}]
    assert run(env, "resolve", "conflict-1", "--action", "delete_it").exit_code == ExitCode.USAGE


def test_health_table_and_json(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    api.on("GET", "/health", (200, HEALTH_ANSWER))

    result = run(env, "health")

    assert result.exit_code == 0, result.output
    assert "Overall: degraded" in result.stdout
    room = next(line for line in result.stdout.splitlines() if "room-101" in line)
    assert "error" in room
    assert "2" in room
    ana = next(line for line in result.stdout.splitlines() if "not_shared" in line)
    assert [cell.strip() for cell in ana.strip("│ ").split("│")][:4] == ["c1", "ana", "no", "not_shared"]
    assert json.loads(run(env, "health", "--json").stdout) == HEALTH_ANSWER
    assert all(s.authorization == f"Bearer {TOKEN}" for s in api.seen)


# --- typed answers: a newer API is read, another shape is a version mismatch ---------------------------


def _grown(answer: dict[str, Any], *path: str | int) -> dict[str, Any]:
    """``answer`` with an optional field this CLI does not know, at the top and in the object at ``path``."""
    grown = copy.deepcopy(answer)
    grown["served_by"] = "calsync 9.0"
    nested: Any = grown
    for step in path:
        nested = nested[step]
    nested["future_hint"] = {"note": "added by a newer API"}
    return grown


@pytest.mark.parametrize(
    ("route", "answer", "path", "args", "shown"),
    [
        (("POST", "/publish/plan"), (201, PLAN_ANSWER), ("calendars", 0, "items", 0), ("plan",), "Apply with:"),
        (("GET", "/health"), (200, HEALTH_ANSWER), ("calendars", 1), ("health",), "room-101"),
        (("GET", "/conflicts"), (200, _conflicts(1)), ("items", 0), ("conflicts",), "conflict-1"),
        (("GET", f"/publish/{PLAN_ID}"), _progress("running", 5), ("calendars", 0), ("status", PLAN_ID), "5/6"),
    ],
)
def test_an_answer_with_fields_this_cli_does_not_know_still_renders(
    api: FakeAdminApi,
    env: dict[str, str | None],
    route: tuple[str, str],
    answer: tuple[int, dict[str, Any]],
    path: tuple[str | int, ...],
    args: tuple[str, ...],
    shown: str,
) -> None:
    status, known = answer
    api.on(*route, (status, _grown(known, *path)))
    if args == ("plan",):
        args = ("plan", "--clinic", "c", "--from", "2025-03-10", "--to", "2025-03-16", "--tz", "America/Sao_Paulo")

    table = run(env, *args)
    raw = run(env, *args, "--json")

    assert table.exit_code == 0, table.output
    assert shown in table.stdout
    assert raw.exit_code == 0, raw.output
    assert json.loads(raw.stdout) == known  # what this CLI knows of the answer; the newer fields left out


@pytest.mark.parametrize(
    ("route", "answer", "args", "misfit"),
    [
        (
            ("POST", "/publish/plan"),
            (
                201,
                {**PLAN_ANSWER, "calendars": [{k: v for k, v in PLAN_ANSWER["calendars"][0].items() if k != "create"}]},
            ),
            ("plan", "--clinic", "c", "--from", "2025-03-10T00:00:00Z", "--to", "2025-03-16T00:00:00Z"),
            "calendars.0.create: field required",
        ),
        (
            ("GET", "/health"),
            (200, {k: v for k, v in HEALTH_ANSWER.items() if k != "checked_at"}),
            ("health",),
            "checked_at: field required",
        ),
        (
            ("GET", "/conflicts"),
            (200, {**_conflicts(), "items": [{**_conflicts(1)["items"][0], "kind": "moved"}]}),
            ("conflicts",),
            "items.0.kind: input should be",
        ),
        (("GET", f"/publish/{PLAN_ID}"), (200, {"plan_id": PLAN_ID, "status": "running"}), ("status", PLAN_ID), "done"),
    ],
)
def test_an_answer_that_does_not_fit_is_a_version_mismatch(
    api: FakeAdminApi,
    env: dict[str, str | None],
    route: tuple[str, str],
    answer: tuple[int, dict[str, Any]],
    args: tuple[str, ...],
    misfit: str,
) -> None:
    api.on(*route, answer)

    result = run(env, *args)

    assert_clean_failure(result, ExitCode.UNREACHABLE)
    said = " ".join(result.stderr.split())  # rich wraps long lines
    assert "this is not the answer calsync's API gives — version mismatch?" in said
    assert misfit in said
    assert result.stdout == ""
    assert CONFIRM not in result.output  # the misfit is named, values (here a token) are not shown


def test_a_plan_with_a_misfit_keeps_no_tokens(api: FakeAdminApi, env: dict[str, str | None], tmp_path: Path) -> None:
    api.on("POST", "/publish/plan", (201, {k: v for k, v in PLAN_ANSWER.items() if k != "planned_at"}))

    result = run(env, "plan", "--clinic", "c", "--from", "2025-03-10T00:00:00Z", "--to", "2025-03-16T00:00:00Z")

    assert_clean_failure(result, ExitCode.UNREACHABLE)
    assert PlanCache(tmp_path / "plans").load(PLAN_ID) is None


# --- where the API is, and expected failures ------------------------------------------------------------


def test_url_and_token_from_the_local_stack_endpoints_file(
    api: FakeAdminApi, env: dict[str, str | None], tmp_path: Path
) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    endpoints = {"functions": {"publish": api.url, "sync": "http://127.0.0.1:9/"}, "admin_token": "stack-token"}
    (stack / "endpoints.json").write_text(json.dumps({**endpoints, "project": "demo-calsync"}))
    api.on("GET", "/health", (200, HEALTH_ANSWER))
    local = {**env, "CALSYNC_ADMIN_URL": None, "CALSYNC_ADMIN_TOKEN": None, "CALSYNC_DEVSTACK_DIR": str(stack)}

    assert run(local, "health").exit_code == 0
    assert api.last_authorization() == "Bearer stack-token"

    # An explicit URL never receives the local stack's token.
    assert run({**local, "CALSYNC_ADMIN_URL": api.url}, "health").exit_code == 0
    assert api.last_authorization() is None
    # Options win over the environment.
    assert run(local, "health", "--url", api.url, "--token", "opt").exit_code == 0
    assert api.last_authorization() == "Bearer opt"


def test_no_url_anywhere_says_how_to_get_one(env: dict[str, str | None]) -> None:
    result = run({**env, "CALSYNC_ADMIN_URL": None}, "health")

    assert_clean_failure(result, ExitCode.UNREACHABLE)
    assert "no admin API URL" in result.stderr
    assert "devstack up" in result.stderr


def test_broken_endpoints_file_is_named(env: dict[str, str | None], tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "endpoints.json").write_text("{not json")

    result = run({**env, "CALSYNC_ADMIN_URL": None, "CALSYNC_DEVSTACK_DIR": str(stack)}, "health")

    assert_clean_failure(result, ExitCode.UNREACHABLE)
    assert "is not a local stack endpoints file" in result.stderr


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://example.org/", "http://", "not a url"])
def test_malformed_url_is_refused(env: dict[str, str | None], url: str) -> None:
    result = run(env, "health", "--url", url)

    assert_clean_failure(result, ExitCode.UNREACHABLE)
    assert "is not an http(s) URL" in result.stderr


def test_connection_refused_is_one_line(env: dict[str, str | None]) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = run(env, "sync", "prof-ana", "--url", f"http://127.0.0.1:{port}/")

    assert_clean_failure(result, ExitCode.UNREACHABLE)
    assert f"cannot connect to http://127.0.0.1:{port}/sync: connection refused" in result.stderr


def test_slow_api_times_out_cleanly(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    def slow(_: Seen) -> tuple[int, Any]:
        time.sleep(1.0)
        return 202, wire(SyncEnqueued(calendar_id="prof-ana", enqueued=True, task_name="dev-sync-x"))

    api.on("POST", "/sync", slow)

    result = run(env, "sync", "prof-ana", "--timeout", "0.2")

    assert_clean_failure(result, ExitCode.UNREACHABLE)
    assert "no answer from" in result.stderr
    assert len(api.requests_to("POST", "/sync")) == 1  # a write is never retried by the client


@pytest.mark.parametrize(
    ("status", "body", "code", "text"),
    [
        (
            401,
            {"error": {"code": "unauthenticated", "message": "a valid admin bearer token is required"}},
            ExitCode.AUTH,
            "--token",
        ),
        (
            403,
            {"error": {"code": "permission_denied", "message": "not an admin", "details": {}}},
            ExitCode.AUTH,
            "not an admin",
        ),
        (500, "<html>Internal Server Error</html>", ExitCode.API_ERROR, "HTTP 500"),
        (200, "<html>a login page</html>", ExitCode.UNREACHABLE, "without a JSON object"),
    ],
)
def test_error_answers_become_readable_messages(
    api: FakeAdminApi, env: dict[str, str | None], status: int, body: Any, code: ExitCode, text: str
) -> None:
    api.on("GET", "/health", (status, body))

    result = run(env, "health")

    assert_clean_failure(result, code)
    assert text in result.stderr


def test_reads_are_retried_on_503_writes_are_not(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    busy = {"error": {"code": "store_unavailable", "message": "try again", "details": {}}}
    api.on("GET", "/health", (503, busy), (200, HEALTH_ANSWER))
    provisioned = Provisioned(clinic_id="c", created=0, shared=0, watched=0, calendars=[])
    api.on("POST", "/provision", (503, busy), (201, wire(provisioned)))

    assert run(env, "health").exit_code == 0
    assert len(api.requests_to("GET", "/health")) == 2
    assert_clean_failure(run(env, "provision", "--clinic", "c"), ExitCode.API_ERROR)
    assert len(api.requests_to("POST", "/provision")) == 1


def test_functions_never_import_the_cli() -> None:
    """typer and rich are not runtime dependencies: nothing deployed may import ``calsync.cli``."""
    root = Path(__file__).resolve().parents[2]
    deployed = [*root.glob("functions/*/main.py"), *root.glob("shared/calsync/**/*.py")]
    cli = root / "shared" / "calsync" / "cli"
    offenders = [
        str(path.relative_to(root))
        for path in deployed
        if not path.is_relative_to(cli) and "calsync.cli" in path.read_text(encoding="utf-8")
    ]
    assert deployed
    assert offenders == []


def test_console_script_points_at_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``pyproject.toml`` declares ``calsync`` as the CLI's entry point, and that entry point runs the app."""
    import importlib
    import sys
    import tomllib

    root = Path(__file__).resolve().parents[2]
    target = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]["calsync"]
    module, _, function = target.partition(":")
    entry = getattr(importlib.import_module(module), function)
    monkeypatch.setattr(sys, "argv", ["calsync", "--help"])
    monkeypatch.setenv("COLUMNS", "200")

    with pytest.raises(SystemExit) as exited:
        entry()

    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for command in ("plan", "apply", "status", "provision", "sync", "conflicts", "resolve", "health"):
        assert f" {command} " in help_text


def test_ctrl_c_while_waiting_stops_watching_not_publishing(
    api: FakeAdminApi, env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    _plan_first(api, env)
    api.on("GET", f"/publish/{PLAN_ID}", _progress("running", 2))
    api.on("POST", "/publish/apply", ACCEPTED)

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("calsync.cli.app.time.sleep", interrupted)
    result = run(env, "apply", PLAN_ID, "--yes")

    assert_clean_failure(result, ExitCode.STILL_RUNNING)
    assert "the publish goes on" in result.stderr
    assert len(api.requests_to("POST", "/publish/apply")) == 1


def test_ids_are_never_broken_across_lines_in_narrow_terminals(api: FakeAdminApi, env: dict[str, str | None]) -> None:
    long_id = "moved_in_google-1dddeed034657dc2e6c93ba1e2b3ec9c"
    page = ConflictsPage(items=[_conflict_item(1).model_copy(update={"id": long_id})], next_page_token=None)
    api.on("GET", "/conflicts", (200, wire(page)))

    result = run({**env, "COLUMNS": "100"}, "conflicts")

    assert result.exit_code == 0, result.output
    assert long_id in result.stdout  # copy-pasteable into `calsync resolve`
