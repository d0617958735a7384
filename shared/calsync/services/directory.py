"""Clinic directory: the professionals and rooms whose calendars calsync provisions and publishes to.

``PUT /clinics/{clinic_id}/professionals|rooms`` replaces the clinic's list as a whole (agendador is
the source of truth); ids must be unique within a call.
"""

from __future__ import annotations

from collections.abc import Sequence

from calsync import errors
from calsync.model import Professional, Room
from calsync.ports import PublishStore
from calsync.results import DirectoryReplaced

MAX_DIRECTORY_ITEMS = 1000


def _unique(ids: Sequence[str]) -> None:
    seen: set[str] = set()
    dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if dupes:
        raise errors.InvalidRequest("duplicate ids", details={"ids": dupes[:20]})


def replace_professionals(clinic_id: str, items: Sequence[Professional], *, store: PublishStore) -> DirectoryReplaced:
    """Make ``items`` the clinic's professionals."""
    _unique([p.id for p in items])
    if any(p.clinic_id != clinic_id for p in items):
        raise errors.InvalidRequest("every professional must belong to the clinic of the path")
    store.replace_professionals(clinic_id, items)
    return DirectoryReplaced(count=len(items))


def replace_rooms(clinic_id: str, items: Sequence[Room], *, store: PublishStore) -> DirectoryReplaced:
    """Make ``items`` the clinic's rooms."""
    _unique([r.id for r in items])
    if any(r.clinic_id != clinic_id for r in items):
        raise errors.InvalidRequest("every room must belong to the clinic of the path")
    store.replace_rooms(clinic_id, items)
    return DirectoryReplaced(count=len(items))
