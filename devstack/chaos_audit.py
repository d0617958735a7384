"""Log audit: scan captured log lines for event content, e-mail addresses and tokens.

calsync logs sync metadata only (``calsync.logs``: an allow-list plus scrubbing). This module checks
that promise from the outside, on what was really written: the functions' stdout logs under a stack's
log dir and the lines the in-process services emitted (captured with ``capture_logs``).

``audit_logs(sources, forbidden)`` takes

- ``sources``: ``Path`` objects (a log file, or a directory whose ``*.log`` files are all read) and/or
  ``str`` objects (each one log line, or several separated by newlines);
- ``forbidden``: the exact strings the run created and that must never appear — event summaries and
  descriptions, attendee e-mails, sync/page/channel/confirmation tokens. Matching is case-insensitive
  and also looks inside JSON-decoded lines (so ``\\u00e9``-escaped text is caught). Strings shorter
  than ``MIN_FORBIDDEN_LEN`` are refused (they would match by accident).

Besides the given strings, any e-mail-shaped text is reported (calsync redacts addresses wholesale).
It answers one ``Finding`` per (line, hit); an empty list means the logs are clean.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from calsync.logs import get_logger

MIN_FORBIDDEN_LEN = 6
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class Finding:
    """One forbidden string (or an e-mail-shaped text) found on one log line."""

    source: str
    line_no: int
    kind: str  # "forbidden" or "email"
    hit: str  # masked: the first three characters and the length, never the whole value
    excerpt: str  # the line, with the hit masked

    def __str__(self) -> str:
        return f"{self.source}:{self.line_no}: {self.kind} {self.hit}: {self.excerpt}"


def mask(value: str) -> str:
    """A recognisable but non-revealing form of ``value`` (for reports)."""
    return f"{value[:3]}…({len(value)} chars)"


def _lines(sources: Iterable[Path | str]) -> Iterator[tuple[str, int, str]]:
    for source in sources:
        if isinstance(source, Path):
            files = sorted(source.glob("*.log")) if source.is_dir() else [source]
            for path in files:
                with path.open(encoding="utf-8", errors="replace") as handle:
                    for number, line in enumerate(handle, start=1):
                        yield str(path), number, line.rstrip("\n")
        else:
            for number, line in enumerate(source.splitlines(), start=1):
                yield "<lines>", number, line


def _decoded(line: str) -> str:
    """The line plus its JSON-decoded form (escapes resolved), when it is JSON."""
    try:
        value = json.loads(line)
    except ValueError:
        return line
    return line + "\n" + json.dumps(value, ensure_ascii=False)


def audit_logs(sources: Iterable[Path | str], forbidden: Iterable[str]) -> list[Finding]:
    """Every occurrence of a forbidden string or an e-mail address in the given logs."""
    needles = sorted({s for s in forbidden if s}, key=len, reverse=True)
    short = [s for s in needles if len(s) < MIN_FORBIDDEN_LEN]
    if short:
        raise ValueError(f"forbidden strings shorter than {MIN_FORBIDDEN_LEN} characters: {len(short)}")
    lowered = [(s, s.lower()) for s in needles]
    findings: list[Finding] = []
    for source, number, line in _lines(sources):
        text = _decoded(line)
        haystack = text.lower()
        for original, needle in lowered:
            if needle in haystack:
                excerpt = re.sub(re.escape(original), mask(original), line, flags=re.IGNORECASE)
                findings.append(Finding(source, number, "forbidden", mask(original), excerpt[:300]))
        for address in sorted(set(EMAIL.findall(text))):
            findings.append(Finding(source, number, "email", mask(address), line.replace(address, mask(address))[:300]))
    return findings


@contextlib.contextmanager
def capture_logs(path: Path, level: int = logging.INFO, *, quiet_console: bool = False) -> Iterator[Path]:
    """Copy every log record of this process into ``path`` through calsync's own JSON formatter.

    The handler sits on the root logger next to calsync's (installed by ``calsync.logs.configure``),
    so what is captured is exactly what would reach Cloud Logging, at ``level`` (INFO: production's
    level) and above. ``quiet_console`` silences calsync's stdout handler meanwhile (chaos prints a
    line per seed; the logs go to the file only).
    """
    get_logger(__name__)  # makes sure calsync's formatter is installed
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_calsync", False)]
    formatter = next((h.formatter for h in ours), None)
    console_levels = [(h, h.level) for h in ours]
    if quiet_console:
        for h in ours:
            h.setLevel(logging.CRITICAL + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    if formatter is not None:
        handler.setFormatter(formatter)
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(previous, level))
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        for h, old in console_levels:
            h.setLevel(old)
        handler.close()
