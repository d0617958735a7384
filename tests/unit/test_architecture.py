"""The layering rules, checked on the source: what services may import, who may import ``tests``,
and how large a module of the package may grow. Parsed with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "calsync"
SERVICES = PACKAGE / "services"
MAX_MODULE_LINES = 450
# What a service must not import: Google's clients, the web framework, adapters and Settings.
SERVICE_FORBIDDEN = ("google", "googleapiclient", "flask", "werkzeug", "calsync.adapters", "calsync.config")


def python_files(*roots: Path) -> Iterator[Path]:
    """Every Python file under ``roots`` (caches and virtualenvs excluded)."""
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if not {"__pycache__", ".venv"} & set(path.parts):
                yield path


def imported_modules(path: Path) -> set[str]:
    """The absolute module names a file imports (``import a.b``, ``from a.b import c`` → ``a.b``, ``a.b.c``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offenders(paths: Iterator[Path], forbidden: tuple[str, ...]) -> list[str]:
    """``file: module`` for every import of a forbidden package."""
    found = []
    for path in paths:
        for name in sorted(imported_modules(path)):
            if any(_within(name, package) for package in forbidden):
                found.append(f"{path.relative_to(ROOT)}: {name}")
    return found


def test_services_import_no_google_web_adapters_or_settings() -> None:
    bad = offenders(python_files(SERVICES), SERVICE_FORBIDDEN)
    assert bad == [], "services take ports and configs as arguments:\n" + "\n".join(bad)


def test_only_tests_import_tests() -> None:
    roots = [ROOT / name for name in ("shared", "functions", "devstack", "bench")]
    bad = offenders(python_files(*roots), ("tests",))
    assert bad == [], "code outside tests/ must not import tests:\n" + "\n".join(bad)


def test_no_module_of_the_package_is_over_the_limit() -> None:
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in python_files(PACKAGE)}
    bad = [
        f"{path.relative_to(ROOT)}: {lines} lines" for path, lines in sorted(sizes.items()) if lines > MAX_MODULE_LINES
    ]
    assert bad == [], f"modules of shared/calsync over {MAX_MODULE_LINES} lines:\n" + "\n".join(bad)


def test_the_checks_see_the_code() -> None:
    """The walkers find the modules they guard (an empty walk would pass every rule)."""
    services = {path.name for path in python_files(SERVICES)}
    assert {"sync.py", "reconcile.py", "tasks.py", "apply.py"} <= services
    assert "calsync.ports" in imported_modules(SERVICES / "sync.py")
