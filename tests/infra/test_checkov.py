"""checkov over infra/terraform: zero failed checks; every skip is listed, with its reason, in .checkov.yaml.

checkov lives in its own venv (.venv-checkov, built by ``make setup`` from requirements-checkov.txt)
because its dependency pins clash with the app's; ``--skip-download`` keeps it offline.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from tests.infra.conftest import REPO

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CONFIG = REPO / ".checkov.yaml"


def _reports(stdout: str) -> list[dict[str, Any]]:
    """checkov -o json prints one report object, or a list of them (one per framework)."""
    parsed = json.loads(stdout)
    return parsed if isinstance(parsed, list) else [parsed]


def test_checkov_passes_with_only_listed_skips() -> None:
    """No failed check, and checkov really scanned the Terraform resources."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup` (builds .venv-checkov)"
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(CONFIG), "-o", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    reports = _reports(result.stdout)
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failures (fix them or skip with a reason in .checkov.yaml):\n" + "\n".join(failed)
    summary = reports[0]["summary"]
    assert reports[0]["check_type"] == "terraform"
    assert summary["passed"] > 0
    assert summary["resource_count"] > 0
    assert result.returncode == 0, result.stderr


def test_every_checkov_skip_has_a_reason() -> None:
    """Each skipped check id in .checkov.yaml is preceded by a comment explaining it."""
    lines = CONFIG.read_text(encoding="utf-8").splitlines()
    skips = [index for index, line in enumerate(lines) if re.match(r"\s*-\s*CKV\w*_\d+", line)]
    assert skips, "no skip listed (remove this test if none is needed)"
    for index in skips:
        assert lines[index - 1].strip().startswith("#"), f"no reason above {lines[index].strip()}"
        check_id = lines[index].strip("- ").strip()
        assert any(check_id in line for line in lines[:index] if line.strip().startswith("#")), (
            f"the comment above {check_id} does not name it"
        )
