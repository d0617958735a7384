"""The emulator's state records (calendars, events, channels), its constants and query-string helpers.

Shared by the write path (``store.py``), the list/sync path (``listing.py``) and free/busy
(``freebusy.py``). Limits and defaults follow
https://developers.google.com/workspace/calendar/api/v3/reference/events/list.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from devstack.calendar_emulator.errors import bad_request

ROLES = ["none", "freeBusyReader", "reader", "writer", "owner"]
DEFAULT_MAX_RESULTS = 250
MAX_RESULTS_CAP = 2500
LIST_DEFAULT_MAX = 100
LIST_MAX_CAP = 250
DEFAULT_CHANNEL_TTL_S = 604800
XPROP_KEY_MAX = 44
XPROP_VALUE_MAX = 1024
# Parameters Google refuses next to syncToken (discovery doc, events.list.syncToken).
SYNC_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
# Fields the server owns; a client cannot set them through insert, update or patch.
READ_ONLY = {"kind", "etag", "id", "created", "updated", "creator", "htmlLink", "iCalUID", "hangoutLink"}
# Fields that make an event an instance of a series; only the server sets them.
INSTANCE_FIELDS = {"recurringEventId", "originalStartTime"}
# Fields whose change makes Google bump ``sequence`` (iCalendar: rescheduling-relevant properties).
SEQUENCE_FIELDS = ("start", "end", "recurrence", "location", "status")

Query = dict[str, list[str]]


class NotModified(Exception):
    """An ``If-None-Match`` hit: answer 304 with no body."""


@dataclass(frozen=True)
class Caller:
    """The principal of a request: a person or a service account."""

    email: str
    service_account: bool = False


@dataclass
class StoredEvent:
    """An event resource and the bookkeeping the list and sync paths index on."""

    resource: dict[str, Any]
    ordinal: int
    change_seq: int
    start_ts: float
    end_ts: float
    updated_ms: int
    # A master's instance ids that series edits removed, sent as cancelled in incremental listings.
    gone: list[str] = field(default_factory=list)


@dataclass
class Calendar:
    """A calendar: its resource, owner, ACL rules, events and change log."""

    id: str
    uid: str
    owner: str
    resource: dict[str, Any]
    primary: bool = False
    acl: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, StoredEvent] = field(default_factory=dict)
    log_seq: list[int] = field(default_factory=list)
    log_ids: list[str] = field(default_factory=list)
    seq: int = 0
    sync_gen: int = 0
    next_ordinal: int = 0
    updated_ms: int = 0


@dataclass
class Channel:
    """A push channel created by events.watch."""

    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    calendar_uid: str
    address: str
    token: str | None
    expiration_ms: int
    owner: str
    stopped: bool = False
    message_number: int = 1


def one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def flag(query: Query, name: str) -> bool | None:
    value = one(query, name)
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad_request(f"Invalid boolean value for {name}", location=name)


def integer(query: Query, name: str) -> int | None:
    value = one(query, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request(f"Invalid value for {name}: {value}", location=name) from exc


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge, null deletes, anything else (lists included) replaces."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def clean_xprops(resource: dict[str, Any]) -> None:
    """Google's extendedProperties limits: long keys dropped, long values truncated."""
    props = resource.get("extendedProperties")
    if not isinstance(props, dict):
        return
    for kind in ("private", "shared"):
        values = props.get(kind)
        if isinstance(values, dict):
            props[kind] = {str(k): str(v)[:XPROP_VALUE_MAX] for k, v in values.items() if len(str(k)) <= XPROP_KEY_MAX}


def xprop_filters(query: Query, name: str) -> list[tuple[str, str]]:
    out = []
    for raw in query.get(name, []):
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise bad_request(f"Invalid value for {name}: {raw}", location=name)
        out.append((key, value))
    return out
