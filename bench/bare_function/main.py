"""The P3 reference: a functions-framework function that only answers 200 (no parsing, no I/O)."""

from __future__ import annotations

import flask


def main(request: flask.Request) -> tuple[str, int]:
    """Answer 200 with an empty body."""
    del request
    return "", 200
