"""The parameter objects of the store ports' wider calls: one frozen value instead of a long signature.

The port, its Firestore adapter and its in-memory fake each take the same object, so a new option is
added in one place; callers build them with the keywords the calls took (the first field stays
positional). ``pages`` walks every page of a paged query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from calsync.copying import copy_into
from calsync.model import SyncCursor, UnknownChannel


@dataclass(frozen=True)
class SyncCommit:
    """A fenced write of a calendar's sync state: applied only while ``holder``'s lease is live at ``now``.

    ``calendar_fields`` update the calendar record; then ``cursor`` replaces the sync cursor, or
    ``clear_cursor`` deletes it (neither: the cursor is left alone).
    """

    calendar_key: str
    holder: str
    _: KW_ONLY
    now: datetime
    calendar_fields: Mapping[str, Any] | None = None
    cursor: SyncCursor | None = None
    clear_cursor: bool = False


@dataclass(frozen=True)
class PageQuery:
    """A query answered one page at a time: at most ``page_size`` items after ``page_token``."""

    _: KW_ONLY
    page_size: int
    page_token: str | None = None


@dataclass(frozen=True)
class MirrorQuery(PageQuery):
    """A calendar's non-cancelled mirror events by start time, optionally within a window."""

    calendar_key: str
    _: KW_ONLY
    time_min: datetime | None = None
    time_max: datetime | None = None


@dataclass(frozen=True)
class ConflictQuery(PageQuery):
    """Conflicts by id, optionally of one calendar (None: all), status and kind."""

    calendar_key: str | None
    _: KW_ONLY
    status: str | None = None
    kind: str | None = None


Q = TypeVar("Q", bound=PageQuery)
T = TypeVar("T")


def pages(fetch: Callable[[Q], tuple[list[T], str | None]], query: Q) -> Iterator[list[T]]:
    """Every page of ``query`` from ``query.page_token`` on, fetched one at a time."""
    token = query.page_token
    while True:
        page, token = fetch(replace(query, page_token=token))
        yield page
        if token is None:
            return


@dataclass(frozen=True)
class UnknownChannelSeen:
    """A push from a channel id that is not ours, to note (rate-limited per id, capped in number)."""

    channel_id: str
    resource_id: str | None
    at: datetime
    _: KW_ONLY
    min_interval_s: float  # at most one write per id in this time
    expire_at: datetime  # the record is deleted after this
    max_records: int  # the store keeps at most this many, newer ids displacing older ones

    def too_soon_after(self, seen: UnknownChannel) -> bool:
        """Whether ``seen`` (this id's record) was written less than ``min_interval_s`` ago."""
        return (self.at - seen.last_seen_at).total_seconds() < self.min_interval_s

    def first_record(self) -> UnknownChannel:
        """The record of an id seen for the first time."""
        return copy_into(UnknownChannel, self, first_seen_at=self.at, last_seen_at=self.at)

    def update_of(self, seen: UnknownChannel) -> dict[str, Any]:
        """The fields that change on the record of an id seen before."""
        return {
            "last_seen_at": self.at,
            "count": seen.count + 1,
            "resource_id": self.resource_id or seen.resource_id,
            "expire_at": self.expire_at,
        }
