"""Google's wire shapes: the Calendar API v3 resources calsync reads and writes.

They mirror the resources with their camelCase names as aliases and keep unknown fields
(``extra="allow"``), so a read-modify-write never drops what Google sent. ``calsync.model`` re-exports
them with calsync's own records.
Event resource: https://developers.google.com/workspace/calendar/api/v3/reference/events
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from datetime import date as Date  # the field ``EventTime.date`` shadows ``date`` in annotations
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime (naive values are taken as UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class WireModel(BaseModel):
    """Base of Google's resources: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_api(self) -> dict[str, Any]:
        """The JSON body Google expects (aliases, no unset fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class EventTime(WireModel):
    """``start``/``end`` of an event: ``dateTime`` (+ optional ``timeZone``) or an all-day ``date``."""

    date_time: datetime | None = None
    date: Date | None = None
    time_zone: str | None = None

    def as_utc(self) -> datetime | None:
        """The instant as UTC; an all-day date is taken at midnight UTC."""
        if self.date_time is not None:
            return utc(self.date_time)
        if self.date is not None:
            return datetime.combine(self.date, time.min, tzinfo=UTC)
        return None


class Attendee(WireModel):
    """One attendee of an event."""

    email: str | None = None
    display_name: str | None = None
    response_status: str | None = None
    optional: bool | None = None
    organizer: bool | None = None
    self_: bool | None = Field(default=None, alias="self")


class ExtendedProperties(WireModel):
    """``extendedProperties``: private (this copy only) and shared string maps."""

    private: dict[str, str] | None = None
    shared: dict[str, str] | None = None


class GoogleEvent(WireModel):
    """A Calendar API event resource (the fields calsync reads; the rest is kept as extra)."""

    id: str
    status: str | None = None
    etag: str | None = None
    updated: datetime | None = None
    summary: str | None = None
    description: str | None = None
    start: EventTime | None = None
    end: EventTime | None = None
    attendees: list[Attendee] | None = None
    extended_properties: ExtendedProperties | None = None
    recurring_event_id: str | None = None
    # RRULE/RDATE/EXDATE lines of a series' master (absent from singleEvents listings, present on a get).
    recurrence: list[str] | None = None
    transparency: str | None = None
    event_type: str | None = None
    i_cal_uid: str | None = Field(default=None, alias="iCalUID")
    sequence: int | None = None
    hangout_link: str | None = None
    conference_data: dict[str, Any] | None = None

    @property
    def private_tags(self) -> dict[str, str]:
        """``extendedProperties.private`` (empty when absent)."""
        if self.extended_properties is None or self.extended_properties.private is None:
            return {}
        return self.extended_properties.private

    @property
    def cancelled(self) -> bool:
        """True for a deleted event (a tombstone)."""
        return self.status == "cancelled"


class EventsPage(BaseModel):
    """One page of events.list: ``next_sync_token`` appears only on the last page."""

    items: list[GoogleEvent] = Field(default_factory=list)
    next_page_token: str | None = None
    next_sync_token: str | None = None
    # The calendar's time zone (the listing's ``timeZone``): an all-day date is a day of this zone.
    time_zone: str | None = None


class WatchChannel(BaseModel):
    """The answer of events.watch."""

    id: str
    resource_id: str
    resource_uri: str | None = None
    token: str | None = None
    expiration: datetime | None = None
