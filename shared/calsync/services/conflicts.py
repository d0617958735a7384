"""Settling a conflict: ``POST /conflicts/{id}/resolve {"action": "accept_google" | "republish"}``.

- ``accept_google`` keeps Google's version: the mirror's published snapshot becomes Google's current
  version as the mirror has it (so the same divergence is not reported again, and the event's other
  conflicts that version carries are resolved with it), the allocation is flagged for agendador to
  adjust, with those conflicts' suggestions, and the event's source of truth returns to the backend:
  only open conflicts block publishing, so the allocation's next change is published.
- ``republish`` restores our fields (a read-modify-write: people's fields kept) with ``If-Match`` on
  Google's current etag — the only way an
  event a person changed or deleted is overwritten or brought back (a deleted one by an update with
  status confirmed; its id cannot be inserted again). ``sendUpdates=none`` as for publishing.
Both are idempotent: resolving a resolved conflict answers it unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from calsync import errors
from calsync.copying import copy_into
from calsync.logs import get_logger
from calsync.model import Conflict, PublishedSnapshot, has_started
from calsync.ports import CalendarApi, Clock, PublishStore
from calsync.results import ConflictItem
from calsync.services.calendars import conflict_item
from calsync.services.classify import EVENT_CONFLICT_KINDS, conflict_id
from calsync.services.our_events import desired_for, invites_patients, merged_body, mirror_of_written
from calsync.services.plan import PUBLISHED_STATUSES, PublishConfig
from calsync.services.reconcile import Reconciler, record_written

log = get_logger(__name__)

ResolveAction = Literal["accept_google", "republish"]


def _conflict(store: PublishStore, conflict_id: str) -> Conflict:
    found = store.get_conflicts([conflict_id]).get(conflict_id)
    if found is None:
        raise errors.UnknownResource("unknown conflict", details={"conflict_id": conflict_id})
    return found


def resolve_conflict(
    conflict_id: str,
    action: ResolveAction,
    *,
    api: CalendarApi,
    store: PublishStore,
    clock: Clock,
    config: PublishConfig,
) -> ConflictItem:
    """Apply the admin's decision on an open conflict and mark it resolved."""
    conflict = _conflict(store, conflict_id)
    if conflict.status == "resolved":
        return conflict_item(conflict)
    now = clock.now()
    if action == "accept_google":
        _accept_google(conflict, store, now)
    else:
        _republish(conflict, api, store, clock, config)
    resolved = conflict.model_copy(update={"status": "resolved", "resolved_at": now})
    store.put_conflicts([resolved])
    log.info("conflict.settled", conflict_id=conflict.id, conflict_kind=conflict.kind, action=action)
    return conflict_item(resolved)


def _accept_google(conflict: Conflict, store: PublishStore, now: datetime) -> None:
    mirror = store.get_events(conflict.calendar_key, [conflict.event_id]).get(conflict.event_id)
    notes = [conflict.suggestion]
    if mirror is not None and mirror.origin == "system":
        snapshot = copy_into(PublishedSnapshot, mirror, attendees=list(mirror.attendees), published_at=now)
        ids = [conflict_id(conflict.calendar_key, conflict.event_id, kind) for kind in EVENT_CONFLICT_KINDS]
        others = [c.id for c in store.get_conflicts(ids).values() if c.status == "open" and c.id != conflict.id]
        # Google's version (as the mirror has it) becomes what calsync published; control returns to the
        # backend. The event's other conflicts that version carries (a title next to the accepted
        # attendees) diverge no more: they close with it, and agendador is told about them too.
        published = mirror.model_copy(update={"published": snapshot, "source_of_truth": "backend"})
        record_written(store, [published], calendar_key=conflict.calendar_key, now=now, reason="accepted_google")
        notes += [c.suggestion for c in store.get_conflicts(others).values() if c.status == "resolved"]
    if conflict.allocation_id:
        allocation = store.get_allocations([conflict.allocation_id]).get(conflict.allocation_id)
        if allocation is not None:
            note = "; ".join(notes)
            flagged = allocation.model_copy(update={"needs_adjustment": True, "adjustment_note": note})
            store.put_allocations([flagged])


def _republish(conflict: Conflict, api: CalendarApi, store: PublishStore, clock: Clock, config: PublishConfig) -> None:
    if conflict.kind in ("overlap_manual", "busy_elsewhere") or not conflict.allocation_id:
        raise errors.InvalidRequest("only a conflict on an allocation's event can be republished")
    allocation = store.get_allocations([conflict.allocation_id]).get(conflict.allocation_id)
    if allocation is None or allocation.status not in PUBLISHED_STATUSES:
        raise errors.InvalidRequest("the allocation is not reviewed or adjusted: nothing to republish")
    if has_started(allocation.start, clock.now()):
        raise errors.EventStarted("the allocation has started: it is never republished")
    record = store.get_calendar(conflict.calendar_key)
    if record is None:
        raise errors.UnknownResource("unknown calendar", details={"calendar_id": conflict.calendar_key})
    current = api.get_event(record.google_calendar_id, conflict.event_id)
    tags = current.private_tags
    if tags.get("env") not in (None, config.env):
        raise errors.PermissionDenied("the event belongs to another environment")
    if current.recurrence or current.recurring_event_id:
        # A person's series made of the event: an update would rewrite or collapse every instance.
        raise errors.InvalidRequest("the event is a recurring series a person made: it is never republished")
    desired = desired_for(allocation, record, invite=invites_patients(allocation.clinic_id, config.invite_patients))
    body = merged_body(current, config.env, allocation.id, conflict.event_id, desired, clinic_id=allocation.clinic_id)
    written = api.update_event(
        record.google_calendar_id, conflict.event_id, body, if_match=current.etag, send_updates="none"
    )
    mirror = mirror_of_written(
        written,
        record,
        env=config.env,
        allocation_id=allocation.id,
        clinic_id=allocation.clinic_id,
        desired=desired,
        now=clock.now(),
    )
    reconciler = Reconciler.of(store, record, clock=clock, env=config.env, time_zone=config.time_zone)
    reconciler.record_written([mirror])
