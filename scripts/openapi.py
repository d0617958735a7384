"""Regenerate docs/openapi.json from the publish function's route table and pydantic models.

Usage: ``.venv/bin/python scripts/openapi.py`` (``--check`` exits 1 when the committed file differs).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "openapi.json"


def load_publish() -> ModuleType:
    """Import ``functions/publish/main.py`` as a module."""
    spec = importlib.util.spec_from_file_location("calsync_publish_main", ROOT / "functions" / "publish" / "main.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # postponed annotations are resolved through sys.modules
    spec.loader.exec_module(module)
    return module


def render() -> str:
    """The document as committed (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(load_publish().openapi_document(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) docs/openapi.json."""
    text = render()
    if "--check" in argv:
        return 0 if TARGET.exists() and TARGET.read_text() == text else 1
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
