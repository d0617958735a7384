"""The runtime lock: what is tested is what is deployed.

``requirements.txt`` is generated from ``requirements.in`` by ``make lock`` (pip-compile with hashes);
``make setup`` installs it with ``--require-hashes`` and the bundles ship it, so the buildpack installs
the same files in hash-checking mode.
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.utils import canonicalize_name

from tests.infra.conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")


def _pins(text: str) -> dict[str, str]:
    return {canonicalize_name(m.group(1)): m.group(2) for line in text.splitlines() if (m := PIN.match(line.strip()))}


def _lock() -> str:
    return (REPO / "requirements.txt").read_text()


def test_every_locked_package_is_pinned_with_hashes() -> None:
    blocks: list[list[str]] = []
    for line in _lock().splitlines():
        if PIN.match(line):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    assert len(blocks) == len(_pins(_lock())) > 20
    assert all(any("--hash=sha256:" in line for line in block) for block in blocks), [
        block[0] for block in blocks if not any("--hash" in line for line in block)
    ]
    assert "--find-links" not in _lock()
    assert "--index-url" not in _lock()


def test_the_lock_holds_every_direct_dependency_at_its_pin() -> None:
    direct = _pins((REPO / "requirements.in").read_text())
    locked = _pins(_lock())
    assert direct
    assert {name: locked.get(name) for name in direct} == direct


def test_the_test_venv_runs_exactly_the_locked_versions() -> None:
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    locked = _pins(_lock())
    assert {name: installed.get(name) for name in locked} == locked
