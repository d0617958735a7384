"""Every error class inside every function, through functions-framework: one table of answers.

The service each entry point calls is replaced by one that raises; the answer must be the table's
status with the error envelope (or 200 ``{"dropped": code}`` for a final error on a Cloud Tasks
request), and a retryable error carries ``Retry-After``. The table is written out here, not read from
``calsync.errors``, so a change of status or retry semantics shows up as a failing row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from calsync import errors
from calsync.adapters import oauth_connect, token_crypto
from calsync.bootstrap import set_container
from calsync.services import allocations
from tests.functions.function_world import ADMIN_TOKEN, client, fake_container

# error class -> (status, Retry-After when retried, acknowledged as dropped from a task)
TABLE: dict[type[errors.CalsyncError], tuple[int, str | None, bool]] = {
    errors.CalsyncError: (500, None, True),
    errors.InvalidRequest: (400, None, True),
    allocations.AllocationsRejected: (422, None, True),
    errors.Unauthenticated: (401, None, False),
    errors.PermissionDenied: (403, None, False),
    errors.UnknownResource: (404, None, True),
    errors.MethodNotAllowed: (405, None, True),
    errors.StaleState: (409, None, True),
    errors.EventStarted: (409, None, True),
    errors.StoreUnavailable: (503, "30", False),
    errors.QueueUnavailable: (503, "30", False),
    errors.LockHeld: (429, "30", False),
    errors.LeaseLost: (503, "10", False),
    errors.SecretUnavailable: (500, None, True),
    errors.CalendarApiError: (500, None, True),
    errors.RateLimited: (429, "30", False),
    errors.QuotaExhausted: (429, "300", False),
    errors.AuthRevoked: (500, None, True),
    errors.SyncTokenGone: (500, None, True),
    errors.ResourceGone: (500, None, True),
    errors.Duplicate: (409, None, True),
    errors.BatchConflict: (503, "30", False),
    errors.PreconditionFailed: (412, None, True),
    errors.Forbidden: (403, None, True),
    errors.NotFound: (404, None, True),
    errors.BadRequest: (400, None, True),
    errors.Transient: (503, "30", False),
    errors.NotModified: (500, None, True),
    token_crypto.TokenDecryptionError: (500, None, True),
    oauth_connect.ConnectionRefused: (400, None, True),
}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TASK = {"X-CloudTasks-TaskName": "t-1"}


@dataclass(frozen=True)
class Call:
    """One way into a function: the service it calls, the request, whether the Cloud Tasks rule applies."""

    function: str
    service: tuple[str, str]
    method: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]
    task: bool

    @property
    def id(self) -> str:
        return f"{self.function}{self.path if self.function == 'publish' else ''}{'-task' if self.task else ''}"


SYNC_BODY = {"calendar_id": "room-1", "reason": "poll"}
CHUNK = {"plan_id": "p1", "calendar_key": "c1-room-r0", "chunk": 0}
CALLS = [
    Call("webhook", ("calsync.services.push", "handle_notification"), "POST", "/", None, {}, False),
    Call("sync", ("calsync.services.sync", "sync_calendar"), "POST", "/", SYNC_BODY, {}, False),
    Call("sync", ("calsync.services.sync", "sync_calendar"), "POST", "/", SYNC_BODY, TASK, True),
    Call("renew", ("calsync.services.maintenance", "run_poll"), "POST", "/", {"job": "poll"}, {}, False),
    Call("renew", ("calsync.services.maintenance", "run_poll"), "POST", "/", {"job": "poll"}, TASK, True),
    Call("publish", ("calsync.services.health", "health"), "GET", "/health", None, AUTH, False),
    # Only the task route is a Cloud Tasks target: the header on an admin route changes nothing.
    Call("publish", ("calsync.services.health", "health"), "GET", "/health", None, {**AUTH, **TASK}, False),
    Call(
        "publish",
        ("calsync.services.apply.Publishing", "run_chunk"),
        "POST",
        "/publish/tasks/apply",
        CHUNK,
        AUTH,
        False,
    ),
    Call(
        "publish",
        ("calsync.services.apply.Publishing", "run_chunk"),
        "POST",
        "/publish/tasks/apply",
        CHUNK,
        {**AUTH, **TASK},
        True,
    ),
]


def _all_error_classes(root: type[errors.CalsyncError] = errors.CalsyncError) -> set[type[errors.CalsyncError]]:
    found = {root}
    for sub in root.__subclasses__():
        found |= _all_error_classes(sub)
    return found


def test_the_table_covers_every_error_class() -> None:
    assert _all_error_classes() == set(TABLE)


@pytest.fixture(autouse=True)
def container() -> Iterator[None]:
    set_container(fake_container())
    yield
    set_container(None)


@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.id)
@pytest.mark.parametrize("error", list(TABLE), ids=lambda e: e.__name__)
def test_every_error_in_every_function(
    monkeypatch: pytest.MonkeyPatch, call: Call, error: type[errors.CalsyncError]
) -> None:
    def raising(*_: object, **__: object) -> None:
        raise error("boom", details={"why": "test"})

    monkeypatch.setattr(".".join(call.service), raising)
    status, retry_after, droppable = TABLE[error]

    answer = client(call.function).open(call.path, method=call.method, json=call.body, headers=call.headers)

    if call.task and droppable:
        assert (answer.status_code, answer.get_json()) == (200, {"dropped": error.code})
        return
    assert answer.status_code == status
    assert answer.get_json() == {"error": {"code": error.code, "message": "boom", "details": {"why": "test"}}}
    assert answer.headers.get("Retry-After") == retry_after


@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.id)
def test_the_upstream_retry_after_wins_rounded_up(monkeypatch: pytest.MonkeyPatch, call: Call) -> None:
    def raising(*_: object, **__: object) -> None:
        raise errors.RateLimited("slow down", status=429, retry_after_s=12.5)

    monkeypatch.setattr(".".join(call.service), raising)

    answer = client(call.function).open(call.path, method=call.method, json=call.body, headers=call.headers)

    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "13")


def test_a_retryable_instance_of_a_final_class_is_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secret Manager outages: the adapter marks that one ``SecretUnavailable`` retryable."""

    def raising(*_: object, **__: object) -> None:
        error = errors.SecretUnavailable("backend down")
        error.retryable = True
        raise error

    monkeypatch.setattr("calsync.services.sync.sync_calendar", raising)

    answer = client("sync").post("/", json=SYNC_BODY, headers=TASK)

    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "30")
