"""Allocations from agendador: validated bulk upsert (all or nothing).

``PUT /allocations`` takes up to ``MAX_ALLOCATIONS`` items. Each must have timezone-aware times with
``end > start`` and name a professional and a room known to its clinic's directory. One bad item
rejects the whole call (422, per-item errors) and nothing is written. An item whose ``revision`` is
older than the stored one is ignored (an out-of-order delivery must not undo a newer revision).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from calsync import errors
from calsync.logs import get_logger
from calsync.model import Allocation
from calsync.ports import Clock, PublishStore
from calsync.results import AllocationsUpserted

log = get_logger(__name__)

MAX_ALLOCATIONS = 5000


class AllocationsRejected(errors.InvalidRequest, code="invalid_allocations", http_status=422):
    """A bulk upsert with invalid items (HTTP 422): nothing was written."""


@dataclass
class ItemError:
    """Why one item of the call was refused."""

    index: int
    id: str | None
    errors: list[str] = field(default_factory=list)


def _item_errors(index: int, item: Allocation, directory: Mapping[str, tuple[set[str], set[str]]]) -> ItemError | None:
    problems: list[str] = []
    if item.start.tzinfo is None or item.end.tzinfo is None:
        problems.append("start and end must carry a timezone offset")
    elif item.end <= item.start:
        problems.append("end must be after start")
    professionals, rooms = directory.get(item.clinic_id, (set(), set()))
    if item.professional_id not in professionals:
        problems.append("unknown professional_id for this clinic")
    if item.room_id not in rooms:
        problems.append("unknown room_id for this clinic")
    return ItemError(index, item.id, problems) if problems else None


def upsert_allocations(items: Sequence[Allocation], *, store: PublishStore, clock: Clock) -> AllocationsUpserted:
    """Validate every item, then write the new or newer ones; ``AllocationsRejected`` writes nothing."""
    if len(items) > MAX_ALLOCATIONS:
        raise errors.InvalidRequest(f"at most {MAX_ALLOCATIONS} allocations per call", details={"count": len(items)})
    directory: dict[str, tuple[set[str], set[str]]] = {}
    for clinic_id in sorted({a.clinic_id for a in items}):
        directory[clinic_id] = (
            {p.id for p in store.list_professionals(clinic_id)},
            {r.id for r in store.list_rooms(clinic_id)},
        )
    problems = [e for i, a in enumerate(items) if (e := _item_errors(i, a, directory)) is not None]
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.id in seen:
            problems.append(ItemError(index, item.id, [f"duplicate id (also item {seen[item.id]})"]))
        seen.setdefault(item.id, index)
    if problems:
        details = [{"index": p.index, "id": p.id, "errors": p.errors} for p in sorted(problems, key=lambda p: p.index)]
        raise AllocationsRejected("allocations rejected; nothing was written", details={"errors": details})
    stored = store.get_allocations([a.id for a in items])
    now = clock.now()
    writes: list[Allocation] = []
    stale = unchanged = 0
    for item in items:
        old = stored.get(item.id)
        if old is not None and old.revision > item.revision:
            stale += 1
            continue
        fresh = item.model_copy(update={"updated_at": now})
        if old is not None:
            same = old.model_dump(exclude={"updated_at", "needs_adjustment", "adjustment_note"}) == fresh.model_dump(
                exclude={"updated_at", "needs_adjustment", "adjustment_note"}
            )
            if same:
                unchanged += 1
                continue
            if old.revision == item.revision:
                # Same revision, different content: keep agendador's latest word but note the flag stays.
                fresh = fresh.model_copy(update={"needs_adjustment": old.needs_adjustment})
        writes.append(fresh)
    store.put_allocations(writes)
    log.info("allocations.upserted", count=len(writes), unchanged=unchanged, skipped=stale)
    return AllocationsUpserted(upserted=len(writes), unchanged=unchanged, stale=stale)


def aware(value: datetime) -> bool:
    """True for a timezone-aware datetime."""
    return value.tzinfo is not None and value.utcoffset() is not None
