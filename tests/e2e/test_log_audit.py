"""The log audit (``devstack.chaos_audit``): what it catches and that calsync's real logs pass it.

The chaos run's own logs are audited in ``test_chaos.py``; here the audit itself is pinned down, so a
clean result there means something: planted summaries, descriptions, e-mails and tokens are found in
plain and JSON-escaped lines, in files and directories, and lines written by calsync's logger through
the capture handler come out clean even when a caller hands it event content.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from calsync.logs import get_logger
from devstack.chaos_audit import audit_logs, capture_logs, mask

SUMMARY = "Consulta Esmeralda 4821"
DESCRIPTION = "nota Quartzo 55555"
EMAIL = "carla.7.123@clinic.example"
SYNC_TOKEN = "CPDAlvWDx70CEPDAlvWDx70CGAU="  # shaped like Google's


def test_planted_content_is_found_in_lines_files_and_directories(tmp_path: Path) -> None:
    forbidden = {SUMMARY, DESCRIPTION, EMAIL, SYNC_TOKEN}
    log = tmp_path / "function-sync.log"
    log.write_text(
        "\n".join(
            [
                json.dumps({"message": "sync.completed", "count": 3}),
                json.dumps({"message": "oops", "summary": "consulta esmeralda 4821"}),  # case-insensitive
                json.dumps({"message": f"nota {chr(81)}uartzo 55555 \u00e9"}, ensure_ascii=True),
                f"GET /events?syncToken={SYNC_TOKEN} 200",
            ]
        )
        + "\n"
    )
    findings = audit_logs([tmp_path], forbidden)
    assert [(f.line_no, f.kind) for f in findings] == [(2, "forbidden"), (3, "forbidden"), (4, "forbidden")]
    assert all(SUMMARY.lower() not in f.excerpt.lower() for f in findings)  # reports never repeat the secret
    assert findings[0].hit == mask(SUMMARY)
    assert audit_logs([log], forbidden) == findings
    lines = audit_logs([f'{{"message": "invited {EMAIL}"}}', "a clean line"], {SUMMARY})
    assert [(f.source, f.line_no, f.kind) for f in lines] == [("<lines>", 1, "email")]


def test_json_escaped_text_is_decoded_before_matching() -> None:
    name = "Consulta Cabeça 4242"
    line = json.dumps({"message": f"x {name}"}, ensure_ascii=True)
    assert "Cabe\\u00e7a" in line
    assert len(audit_logs([line], {name})) == 1


def test_short_forbidden_strings_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter than"):
        audit_logs(["anything"], {"ana"})


def test_calsync_logger_through_capture_is_clean_even_when_handed_content(tmp_path: Path) -> None:
    log = get_logger("calsync.services.sync")
    path = tmp_path / "in-process.log"
    with capture_logs(path, quiet_console=True):
        log.info("sync.completed", calendar_key="c1-prof-p1", written=2)
        # A careless caller: content in non-allow-listed fields and an e-mail in an allowed one.
        log.warning("sync.failed", summary=SUMMARY, description=DESCRIPTION, reason=f"bad {EMAIL}")
        logging.getLogger("googleapiclient.discovery").info("URL being requested: GET /events?syncToken=%s", SYNC_TOKEN)
    text = path.read_text()
    assert "sync.completed" in text
    assert "URL being requested" in text
    assert audit_logs([path], {SUMMARY, DESCRIPTION, EMAIL, SYNC_TOKEN}) == []


def test_a_leak_through_the_capture_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "in-process.log"
    with capture_logs(path, quiet_console=True):
        # Something outside calsync's scrubbing (a plain handler-less print-like record) leaks a summary.
        logging.getLogger("some.library").warning("created event %s", SUMMARY.replace(" ", "_"))
    leaked = SUMMARY.replace(" ", "_")
    findings = audit_logs([path], {leaked})
    assert len(findings) == 1
    assert findings[0].kind == "forbidden"
