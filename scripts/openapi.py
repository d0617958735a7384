"""Regenerate docs/openapi.json from the admin API (flask-openapi3 builds it from ``calsync.http``).

Usage: ``.venv/bin/python scripts/openapi.py`` (``--check`` exits 1 when the committed file differs).
"""

from __future__ import annotations

import sys
from pathlib import Path

from calsync.http.app import render_document

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "openapi.json"


def main(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) docs/openapi.json."""
    text = render_document()
    if "--check" in argv:
        return 0 if TARGET.exists() and TARGET.read_text() == text else 1
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
