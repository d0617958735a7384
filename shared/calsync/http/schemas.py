"""Request models of the admin API: bodies, queries, path parameters and the error envelope.

flask-openapi3 validates every request against these (a failure is a 400 with the envelope, see
``calsync.http.app``) and writes them into the OpenAPI 3.1 document. Ids become Firestore document
ids (alone or in ``{clinic}__{id}``), which must not contain "/", be "." or "..", match ``__.*__``
or exceed 1,500 bytes: refused here as 400, since deeper down the store would fail them as a
retryable 503. Times are bounded to 1900 to 2999 because the store widens query windows by the longest
event span, which overflows near ``datetime.min``/``max``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from calsync.ports.queries import ConflictQuery, MirrorQuery
from calsync.services import allocations as allocations_service
from calsync.services import calendars as calendars_service
from calsync.services import directory

FIRESTORE_ID_MAX_BYTES = 1500
_RESERVED_ID = re.compile(r"__.*__", re.DOTALL)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
ID_PATTERN = r"^[^/]+$"


def _storable_id(value: str) -> str:
    if value in (".", "..") or _RESERVED_ID.fullmatch(value) or len(value.encode()) > FIRESTORE_ID_MAX_BYTES:
        raise ValueError("not a valid identifier")
    return value


def _in_range(value: datetime) -> datetime:
    # A naive value is compared as UTC; use cases that need an offset refuse naive values themselves.
    if not EARLIEST <= (value if value.tzinfo else value.replace(tzinfo=UTC)) < LATEST:
        raise ValueError("out of range")
    return value


Id = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=ID_PATTERN, description="An identifier: no '/', not '__x__'."),
    AfterValidator(_storable_id),
]
GoogleId = Annotated[
    str,
    Field(min_length=1, max_length=1024, pattern=ID_PATTERN, description="A Google id: no '/', not '__x__'."),
    AfterValidator(_storable_id),
]
# Calendar keys and clinic ids also name tasks and appear in logs: a conservative alphabet.
SafeId = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$"), AfterValidator(_storable_id)
]
PlanId = Annotated[Id, Field(max_length=64)]
Instant = Annotated[datetime, Field(description="From 1900 to 2999."), AfterValidator(_in_range)]


class Strict(BaseModel):
    """Base of request bodies, queries and paths: unknown fields refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- path parameters ------------------------------------------------------------------------------


class CalendarPath(Strict):
    """``/calendars/{key}``."""

    key: Id


class ClinicPath(Strict):
    """``/clinics/{clinic_id}/...``."""

    clinic_id: Id


class EventPath(Strict):
    """``/events/{event_id}``."""

    event_id: Id


class ConflictPath(Strict):
    """``/conflicts/{conflict_id}/resolve``."""

    conflict_id: Id


class PlanPath(Strict):
    """``/publish/{plan_id}``."""

    plan_id: Id


class IfMatchHeader(BaseModel):
    """The ``If-Match`` header of event writes (an etag; other headers pass)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    if_match: str | None = Field(default=None, alias="If-Match")


# --- queries --------------------------------------------------------------------------------------


class Paging(Strict):
    """Paging of list routes."""

    page_size: int = Field(default=100, ge=1, le=calendars_service.MAX_PAGE_SIZE)
    page_token: GoogleId | None = None


class EventsQuery(Paging):
    """``GET /events``."""

    calendar_id: Id
    time_min: Instant | None = None
    time_max: Instant | None = None

    def spec(self) -> MirrorQuery:
        """The store's query (the wire's ``calendar_id`` is calsync's calendar key)."""
        return MirrorQuery(self.calendar_id, **self.model_dump(exclude={"calendar_id"}))


class ConflictsQuery(Paging):
    """``GET /conflicts``."""

    calendar_id: Id | None = None
    status: Literal["open", "resolved"] | None = None

    def spec(self) -> ConflictQuery:
        """The store's query (the wire's ``calendar_id`` is calsync's calendar key)."""
        return ConflictQuery(self.calendar_id, **self.model_dump(exclude={"calendar_id"}))


class EventQuery(Strict):
    """``calendar_id`` query of ``PATCH|DELETE /events/{event_id}``."""

    calendar_id: Id


# --- bodies ---------------------------------------------------------------------------------------


class RegisterBody(Strict):
    """``POST /calendars``."""

    key: SafeId
    google_calendar_id: str = Field(min_length=1, max_length=1024)
    kind: Literal["professional", "room", "control"]
    clinic_id: Id | None = None
    owner_id: Id | None = None


class SyncBody(Strict):
    """``POST /sync``: a calendar, or with ``event_id`` one event of it (read from Google, reprocessed)."""

    calendar_id: Id
    event_id: GoogleId | None = None


class ProfessionalIn(Strict):
    """One professional of ``PUT /clinics/{clinic_id}/professionals``."""

    id: Id
    name: str = Field(min_length=1, max_length=500)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class RoomIn(Strict):
    """One room of ``PUT /clinics/{clinic_id}/rooms``."""

    id: Id
    name: str = Field(min_length=1, max_length=500)


class ProfessionalsBody(Strict):
    """``PUT /clinics/{clinic_id}/professionals``: the whole list."""

    items: list[ProfessionalIn] = Field(max_length=directory.MAX_DIRECTORY_ITEMS)


class RoomsBody(Strict):
    """``PUT /clinics/{clinic_id}/rooms``: the whole list."""

    items: list[RoomIn] = Field(max_length=directory.MAX_DIRECTORY_ITEMS)


class ProvisionBody(Strict):
    """``POST /provision``."""

    clinic_id: SafeId


class AllocationIn(BaseModel):
    """One allocation of ``PUT /allocations`` (validated item by item: errors are per item)."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    clinic_id: Id
    professional_id: Id
    room_id: Id
    start: Instant
    end: Instant
    status: Literal["draft", "reviewed", "adjusted", "cancelled"]
    title: str = Field(default="", max_length=1000)
    attendees: list[str] = Field(default_factory=list, max_length=100)
    revision: int = Field(default=0, ge=0)


def _allocation_items_schema(schema: dict[str, Any]) -> None:
    """Document the items as ``AllocationIn`` (they are validated one by one, for per-item errors)."""
    schema["items"] = AllocationIn.model_json_schema()


class AllocationsBody(Strict):
    """``PUT /allocations``: up to 5,000 items, all or nothing."""

    items: list[dict[str, Any]] = Field(
        max_length=allocations_service.MAX_ALLOCATIONS, json_schema_extra=_allocation_items_schema
    )


class PlanBody(Strict):
    """``POST /publish/plan``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    clinic_id: Id
    time_min: Instant = Field(alias="from")
    time_max: Instant = Field(alias="to")
    clear_future: bool = False


class ApplyBody(Strict):
    """``POST /publish/apply``."""

    plan_id: PlanId
    confirm: str | None = Field(default=None, max_length=200)
    confirm_clear_future: str | None = Field(default=None, max_length=200)


class ApplyTaskBody(Strict):
    """``POST /publish/tasks/apply``: one chunk of a running plan (Cloud Tasks)."""

    plan_id: PlanId
    calendar_key: Id
    chunk: int = Field(ge=0)


class ProvisionTaskBody(Strict):
    """``POST /provision/tasks/calendar``: create one calendar of a clinic as a writer (Cloud Tasks)."""

    clinic_id: SafeId
    calendar_key: Id
    writer: str = Field(max_length=320)


class NewEventBody(Strict):
    """``POST /events``: an ad-hoc event (optionally with a Meet link)."""

    calendar_id: Id
    summary: str = Field(min_length=1, max_length=1000)
    start: Instant
    end: Instant
    attendees: list[str] = Field(default_factory=list, max_length=100)
    meet: bool = False
    request_id: str | None = Field(default=None, min_length=1, max_length=200)


class EventPatchBody(Strict):
    """``PATCH /events/{event_id}``: fields to change."""

    summary: str | None = Field(default=None, min_length=1, max_length=1000)
    start: Instant | None = None
    end: Instant | None = None
    attendees: list[str] | None = Field(default=None, max_length=100)


class ResolveBody(Strict):
    """``POST /conflicts/{conflict_id}/resolve``."""

    action: Literal["accept_google", "republish"]


class ErrorDetail(BaseModel):
    """The inside of the envelope: a stable ``code``, a message for people, structured ``details``."""

    code: str
    message: str
    details: dict[str, Any]


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail
