"""Build each Cloud Function's source zip into build/ (``make bundle``).

A bundle is what Cloud Functions (2nd gen, Python buildpack) deploys: ``main.py`` at the root,
the ``calsync`` package beside it (importable because the source root is on ``sys.path``) and the
pinned ``requirements.txt`` the buildpack installs. Zips are reproducible — sorted entries, a fixed
timestamp and fixed permissions — so the md5 only changes when the code does; Terraform names the
uploaded object by that md5, so an unchanged bundle never redeploys and a changed one always does.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = ("webhook", "sync", "renew", "publish")
# 1980-01-01 is the earliest timestamp a zip entry can hold.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
SKIPPED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Subpackages of calsync that never run in a function: the admin CLI runs on an operator's machine
# (typer and rich are dev dependencies, not runtime ones in requirements.txt), and ``testing`` holds
# the fakes tests, the local stack and benchmarks use.
SKIPPED_SUBPACKAGES = frozenset({"cli", "testing"})


def _package_files(package_dir: Path) -> Iterator[Path]:
    """Files of the calsync package, without caches, build leftovers, the operator-only CLI or the fakes."""
    for path in package_dir.rglob("*"):
        relative = path.relative_to(package_dir)
        if not path.is_file() or SKIPPED_PARTS.intersection(relative.parts):
            continue
        if relative.parts[0] in SKIPPED_SUBPACKAGES:
            continue
        if path.name.endswith(SKIPPED_SUFFIXES):
            continue
        yield path


def bundle_entries(function: str, repo: Path = REPO) -> dict[str, Path]:
    """Archive name -> source file for one function's bundle."""
    main = repo / "functions" / function / "main.py"
    if not main.is_file():
        raise FileNotFoundError(f"{main} is missing: every function needs functions/<name>/main.py")
    package_dir = repo / "shared" / "calsync"
    entries = {"main.py": main, "requirements.txt": repo / "requirements.txt"}
    for path in _package_files(package_dir):
        entries[(Path("calsync") / path.relative_to(package_dir)).as_posix()] = path
    return entries


def write_bundle(function: str, out_dir: Path, repo: Path = REPO) -> Path:
    """Write ``out_dir/<function>.zip`` reproducibly and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{function}.zip"
    partial = target.with_suffix(".zip.tmp")
    entries = bundle_entries(function, repo)
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name].read_bytes(), compresslevel=9)
    # Replace in one step so Terraform never hashes a half-written zip.
    partial.replace(target)
    return target


def md5_of(path: Path) -> str:
    """Hex md5 of a file (what Terraform's filemd5() returns)."""
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Build the requested bundles (all four by default) and print their md5."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("functions", nargs="*", help=f"functions to bundle (default: all of {', '.join(FUNCTIONS)})")
    parser.add_argument("--out", type=Path, default=REPO / "build", help="output folder (default: build/)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.functions) - set(FUNCTIONS))
    if unknown:
        parser.error(f"unknown function(s) {', '.join(unknown)}; choose from {', '.join(FUNCTIONS)}")
    for function in args.functions or FUNCTIONS:
        try:
            path = write_bundle(function, args.out)
        except FileNotFoundError as exc:
            print(f"bundle: {exc}", file=sys.stderr)
            return 1
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}  md5={md5_of(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
