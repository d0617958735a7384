"""A publish's planned actions: one write (or skip) on one calendar, its JSON form, the plan's digest.

``PlanAction`` is what the planner (``services.plan``) decides and what an apply task carries: the
chunk's actions are stored as ``action_dict`` when apply starts and read back with ``action_from``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from calsync import errors
from calsync.model import PlanActionKind
from calsync.results import PlanCalendar, PlanItem, Totals
from calsync.services.our_events import Desired

MAX_WINDOW_DAYS = 62


@dataclass(frozen=True)
class PlanAction:
    """One planned write (or skip) on one calendar, with its reason code.

    ``clinic_id`` is the clinic whose event the action touches: the plan's clinic for every write (its
    clinic tag), the event's owner for a skip (None when nothing says whose it is).
    """

    calendar_key: str
    event_id: str
    action: PlanActionKind
    reason: str
    allocation_id: str | None = None
    if_match: str | None = None
    desired: Desired | None = None
    clinic_id: str | None = None

    def item(self) -> PlanItem:
        """The plan answer's item (no event content beyond times)."""
        times = {} if self.desired is None else {"start": self.desired.start, "end": self.desired.end}
        return PlanItem(
            action=self.action, reason=self.reason, event_id=self.event_id, allocation_id=self.allocation_id, **times
        )


def action_dict(a: PlanAction) -> dict[str, Any]:
    """A JSON-safe form of an action (the payload of an apply task)."""
    out = asdict(a)
    if a.desired is not None:
        out["desired"] = {
            "summary": a.desired.summary,
            "start": a.desired.start.isoformat(),
            "end": a.desired.end.isoformat(),
            "attendees": list(a.desired.attendees),
        }
    return out


def action_from(data: Mapping[str, Any]) -> PlanAction:
    """The inverse of ``action_dict``."""
    desired = data.get("desired")
    return PlanAction(
        calendar_key=str(data["calendar_key"]),
        event_id=str(data["event_id"]),
        action=data["action"],
        reason=str(data["reason"]),
        allocation_id=data.get("allocation_id"),
        if_match=data.get("if_match"),
        desired=Desired(
            summary=str(desired["summary"]),
            start=datetime.fromisoformat(desired["start"]),
            end=datetime.fromisoformat(desired["end"]),
            attendees=tuple(desired["attendees"]),
        )
        if desired
        else None,
        clinic_id=data.get("clinic_id"),
    )


def fingerprint(actions: Iterable[PlanAction]) -> str:
    """A digest of the actions (what apply compares to detect a stale plan)."""
    digest = hashlib.sha256()
    for a in actions:
        row = [a.calendar_key, a.event_id, a.action, a.reason, a.if_match or ""]
        if a.desired is not None:
            d = a.desired
            row += [d.summary, d.start.isoformat(), d.end.isoformat(), ",".join(d.attendees)]
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()


def hash_token(token: str) -> str:
    """The stored form of a confirmation token."""
    return hashlib.sha256(token.encode()).hexdigest()


def summarize(actions: Sequence[PlanAction]) -> tuple[Totals, list[PlanCalendar]]:
    """Totals and the per-calendar sections of the plan answer."""
    totals = Totals(create=0, update=0, delete=0, skip=0)
    sections: dict[str, PlanCalendar] = {}
    for a in actions:
        setattr(totals, a.action, getattr(totals, a.action) + 1)
        section = sections.setdefault(
            a.calendar_key, PlanCalendar(calendar_id=a.calendar_key, create=0, update=0, delete=0, skip=0, items=[])
        )
        setattr(section, a.action, getattr(section, a.action) + 1)
        section.items.append(a.item())
        if a.action == "delete":
            by_clinic = section.deletes_by_clinic or {}
            owner_id = a.clinic_id or "unknown"
            section.deletes_by_clinic = by_clinic | {owner_id: by_clinic.get(owner_id, 0) + 1}
    return totals, [sections[k] for k in sorted(sections)]


def validate_window(time_min: datetime, time_max: datetime) -> None:
    """Refuse naive, empty or oversized plan windows."""
    if time_min.tzinfo is None or time_max.tzinfo is None:
        raise errors.InvalidRequest("from and to must carry a timezone offset")
    if time_max <= time_min:
        raise errors.InvalidRequest("to must be after from")
    if time_max - time_min > timedelta(days=MAX_WINDOW_DAYS):
        raise errors.InvalidRequest(f"a plan covers at most {MAX_WINDOW_DAYS} days")
