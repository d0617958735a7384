"""Where the fakes may be imported from: ``calsync.testing`` serves tests, devstack and bench; the
deployed code (the rest of ``calsync`` and ``functions/``) never imports it, and nothing outside
``tests/`` imports ``tests``."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _sources(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((REPO / folder).rglob("*.py"))]


def test_deployed_code_never_imports_the_fakes() -> None:
    package = REPO / "shared" / "calsync"
    offenders = [
        str(path.relative_to(REPO))
        for path in _sources("shared/calsync", "functions")
        if package / "testing" not in path.parents
        and any(name == "calsync.testing" or name.startswith("calsync.testing.") for name in _imports(path))
    ]
    assert offenders == []


def test_nothing_outside_tests_imports_tests() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in _sources("shared", "functions", "devstack", "bench", "scripts")
        if any(name == "tests" or name.startswith("tests.") for name in _imports(path))
    ]
    assert offenders == []
