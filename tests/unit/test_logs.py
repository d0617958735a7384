"""The log allow-list: only sync metadata leaves the process."""

from __future__ import annotations

import io
import json
import logging

import pytest

from calsync import logs

SUMMARY = "Consulta Maria Souza - retorno"
DESCRIPTION = "Paciente com dor lombar, trazer exames"
EMAILS = ["maria.souza@gmail.com", "dr.paulo@clinica.example"]
ACCESS_TOKEN = "ya29.a0AfH6SMBx-very-secret-access-token_123"
REFRESH_TOKEN = "1//0gLq-refresh-token-value"
SYNC_TOKEN = "CPDAlvWDx70CEPDAlvWDx70CGAU="
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
SECRETS = [SUMMARY, DESCRIPTION, *EMAILS, ACCESS_TOKEN, REFRESH_TOKEN, SYNC_TOKEN, JWT]


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    logs.configure(level="DEBUG", stream=stream)
    yield stream
    logs.configure(level="INFO")


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_content_and_secrets_never_leave(captured: io.StringIO) -> None:
    log = logs.get_logger("calsync.test")
    log.info(
        "synced event",
        calendar_key="prof-1",
        event_id="abc12345",
        summary=SUMMARY,
        description=DESCRIPTION,
        attendees=EMAILS,
        access_token=ACCESS_TOKEN,
        sync_token=SYNC_TOKEN,
        fetched=3,
    )
    # Secrets smuggled into allowed fields and the message itself are scrubbed too.
    log.warning(f"refresh failed for {EMAILS[0]} with Bearer {ACCESS_TOKEN}", reason=f"syncToken={SYNC_TOKEN}")
    log.error("auth", error_code=f"token={REFRESH_TOKEN} jwt {JWT}")
    logging.getLogger("googleapiclient.http").warning("GET ...?syncToken=%s&x=1 for %s", SYNC_TOKEN, EMAILS[1])
    try:
        raise ValueError(f"bad event {SUMMARY} {ACCESS_TOKEN}")
    except ValueError:
        log.exception("sync crashed", calendar_key="prof-1")

    text = captured.getvalue()
    for secret in SECRETS:
        assert secret not in text, secret
    records = lines(captured)
    assert len(records) == 5
    first = records[0]
    assert first["severity"] == "INFO"
    assert first["message"] == "synced event"
    assert first["calendar_key"] == "prof-1"
    assert first["fetched"] == 3
    assert set(first["dropped_fields"]) == {"summary", "description", "attendees", "access_token", "sync_token"}
    assert records[3]["logger"] == "googleapiclient.http"
    assert "[redacted]" in records[3]["message"]
    assert records[4]["severity"] == "ERROR"
    assert "ValueError" in records[4]["exception"]


def test_trace_and_execution_id_fields(captured: io.StringIO) -> None:
    headers = {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1", "Function-Execution-Id": "abc123"}
    with logs.request_context(headers, project="demo-calsync", function="sync"):
        logs.get_logger("t").info("hello", count=1)
    (record,) = lines(captured)
    assert record["logging.googleapis.com/trace"] == "projects/demo-calsync/traces/105445aa7843bc8bf206b12000100000"
    assert record["logging.googleapis.com/spanId"] == "1"
    assert record["logging.googleapis.com/labels"] == {"execution_id": "abc123"}
    assert record["function"] == "sync"


def test_invocation_summary_line(captured: io.StringIO) -> None:
    log = logs.get_logger("t")
    with logs.invocation(log, "sync.done") as summary:
        summary.update(calendar_key="room-1", pages=2, written=5)
    with pytest.raises(RuntimeError), logs.invocation(log, "sync.done"):
        raise RuntimeError("boom")
    ok, failed = lines(captured)
    assert ok["status"] == "ok"
    assert ok["pages"] == 2
    assert isinstance(ok["duration_ms"], float)
    assert failed["status"] == "error"
    assert failed["error_type"] == "RuntimeError"
    assert failed["severity"] == "ERROR"


def test_stdlib_exceptions_are_scrubbed_too(captured: io.StringIO) -> None:
    try:
        raise KeyError(f"{SUMMARY} {EMAILS[0]}")
    except KeyError:
        logging.getLogger("google.api_core").exception("call failed %s", ACCESS_TOKEN)
    text = captured.getvalue()
    for secret in SECRETS:
        assert secret not in text
    (record,) = lines(captured)
    assert "KeyError" in record["exception"]
    assert record["severity"] == "ERROR"
