"""Wire formats: RFC3339 times, ETags, generated ids and opaque tokens."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devstack.calendar_emulator.errors import ApiError, bad_request

BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
EVENT_ID_RE = re.compile(r"[a-v0-9]{5,1024}")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class Clock:
    """Monotonic sources for ``updated`` (milliseconds) and ETag numbers."""

    def __init__(self) -> None:
        self._last_ms = 0
        self._last_etag = 0

    def now_ms(self) -> int:
        """Wall-clock milliseconds, strictly increasing so ``updated`` orders changes."""
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def etag(self) -> str:
        """A new quoted numeric ETag (``"\\"3181161784712000\\""``), never repeated."""
        self._last_etag = max(int(time.time() * 1_000_000), self._last_etag + 1)
        return f'"{self._last_etag}"'

    def restore(self, last_ms: int, last_etag: int) -> None:
        """Continue after persisted values so ETags never repeat across restarts."""
        self._last_ms = max(self._last_ms, last_ms)
        self._last_etag = max(self._last_etag, last_etag)

    def snapshot(self) -> tuple[int, int]:
        """The values to persist."""
        return self._last_ms, self._last_etag


def format_ms(ms: int) -> str:
    """RFC3339 UTC with milliseconds, as Google writes ``updated``: ``2026-01-02T03:04:05.678Z``."""
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339(value: str, name: str) -> float:
    """Epoch seconds of an RFC3339 timestamp with a mandatory offset, else 400 on ``name``."""
    if not _RFC3339_RE.match(value):
        raise bad_request(f"Bad Request: invalid value for {name}: {value!r}", location=name)
    try:
        return dt.datetime.fromisoformat(value.replace("z", "Z")).timestamp()
    except ValueError as exc:
        raise bad_request(f"Bad Request: invalid value for {name}", location=name) from exc


def zone(name: str | None, default: str) -> ZoneInfo:
    """The IANA zone ``name`` (or ``default``); 400 when unknown."""
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise bad_request(f"Invalid time zone definition: {name}") from exc


def event_time(value: Any, which: str, calendar_tz: str) -> float:
    """Epoch seconds of an event ``start``/``end`` object (``dateTime``+``timeZone`` or ``date``)."""
    if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
        raise ApiError(400, "required", f"Missing {which} time.")
    if value.get("dateTime"):
        raw = str(value["dateTime"])
        try:
            stamp = dt.datetime.fromisoformat(raw.replace("z", "Z"))
        except ValueError as exc:
            raise bad_request(f"Invalid {which} time.") from exc
        if stamp.tzinfo is None:
            if not value.get("timeZone"):
                raise bad_request(f"Missing time zone definition for {which} time.")
            stamp = stamp.replace(tzinfo=zone(str(value["timeZone"]), calendar_tz))
        elif value.get("timeZone"):
            zone(str(value["timeZone"]), calendar_tz)
        return stamp.timestamp()
    try:
        day = dt.date.fromisoformat(str(value["date"]))
    except ValueError as exc:
        raise bad_request(f"Invalid {which} date.") from exc
    local = dt.datetime(day.year, day.month, day.day, tzinfo=zone(None, calendar_tz))
    return local.timestamp()


def new_event_id() -> str:
    """A server-generated event id: 26 base32hex characters, like Google's."""
    return "".join(secrets.choice(BASE32HEX) for _ in range(26))


def new_opaque(prefix: str = "") -> str:
    """A random url-safe string for access tokens and resource ids."""
    return prefix + secrets.token_urlsafe(18)


def encode_token(payload: dict[str, Any]) -> str:
    """Opaque, url-safe token carrying ``payload`` (not a secret: the emulator is local)."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return "CAES" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    """The payload of ``encode_token``, or None when ``token`` is not one of ours."""
    if not token.startswith("CAES"):
        return None
    body = token[4:]
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
