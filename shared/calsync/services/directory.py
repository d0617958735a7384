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


def _replace(clinic_id: str, items: Sequence[Professional] | Sequence[Room], what: str) -> DirectoryReplaced:
    """The answer for ``items``, checked first: unique ids, every one of ``clinic_id`` (else ``InvalidRequest``)."""
    _unique([item.id for item in items])
    if any(item.clinic_id != clinic_id for item in items):
        raise errors.InvalidRequest(f"every {what} must belong to the clinic of the path")
    return DirectoryReplaced(count=len(items))


def replace_professionals(clinic_id: str, items: Sequence[Professional], *, store: PublishStore) -> DirectoryReplaced:
    """Make ``items`` the clinic's professionals."""
    answer = _replace(clinic_id, items, "professional")
    store.replace_professionals(clinic_id, items)
    return answer


def replace_rooms(clinic_id: str, items: Sequence[Room], *, store: PublishStore) -> DirectoryReplaced:
    """Make ``items`` the clinic's rooms."""
    answer = _replace(clinic_id, items, "room")
    store.replace_rooms(clinic_id, items)
    return answer
