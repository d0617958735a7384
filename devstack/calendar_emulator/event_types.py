"""Event types and transparency: validation on writes and the ``eventTypes`` list filter.

Status events (out of office, focus time, working location) exist only on primary calendars and
cannot be all-day, except working location; their properties object is accepted only with the matching
type, and the type cannot change after creation. Sources:
https://developers.google.com/workspace/calendar/api/guides/calendar-status and the ``eventType`` /
``transparency`` fields of https://developers.google.com/workspace/calendar/api/v3/reference/events.
"""

from __future__ import annotations

from typing import Any

from devstack.calendar_emulator.errors import ApiError, bad_request

STATUS_TYPES = ("outOfOffice", "focusTime", "workingLocation")
EVENT_TYPES = ("default", "birthday", "fromGmail", *STATUS_TYPES)
PROPERTIES = {
    "outOfOfficeProperties": "outOfOffice",
    "focusTimeProperties": "focusTime",
    "workingLocationProperties": "workingLocation",
    "birthdayProperties": "birthday",
}
TRANSPARENCY = ("opaque", "transparent")


def validate(resource: dict[str, Any], previous: dict[str, Any] | None, *, primary: bool) -> None:
    """Check ``eventType``, its properties and ``transparency``; fill the type's defaults in place."""
    old_type = str((previous or {}).get("eventType", "default"))
    kind = str(resource.get("eventType") or (old_type if previous else "default"))
    if kind not in EVENT_TYPES:
        raise bad_request(f"Invalid event type: {kind}", location="eventType")
    if previous is not None and kind != old_type:
        raise bad_request("The event type cannot be changed.", reason="eventTypeRestriction")
    if previous is None and kind == "fromGmail":
        raise bad_request("Events from Gmail cannot be created.", reason="eventTypeRestriction")
    for field, owner in PROPERTIES.items():
        if field in resource and kind != owner:
            raise bad_request(f"{field} can only be set on events of type {owner}.")
    transparency = resource.get("transparency")
    if transparency is not None and transparency not in TRANSPARENCY:
        raise bad_request(f"Invalid transparency value: {transparency}", location="transparency")
    if kind in STATUS_TYPES:
        if not primary:
            raise ApiError(
                400, "eventTypeRestriction", f"Events of type {kind} can only be created on primary calendars."
            )
        if kind != "workingLocation" and (resource.get("start") or {}).get("date"):
            raise bad_request(f"Events of type {kind} cannot be all-day events.", reason="eventTypeRestriction")
        # The guide: out of office and focus time block time, working location does not.
        wanted = "transparent" if kind == "workingLocation" else "opaque"
        if transparency is not None and transparency != wanted:
            raise bad_request(f"Events of type {kind} must have transparency {wanted}.")
        if kind == "workingLocation":
            resource["transparency"] = "transparent"
    resource["eventType"] = kind


def wanted(query: dict[str, list[str]]) -> set[str] | None:
    """The ``eventTypes`` filter (a repeated parameter), or None for every type; 400 on unknown types."""
    values = query.get("eventTypes")
    if not values:
        return None
    unknown = [v for v in values if v not in EVENT_TYPES]
    if unknown:
        raise bad_request(f"Invalid value for eventTypes: {unknown[0]}", location="eventTypes")
    return set(values)
