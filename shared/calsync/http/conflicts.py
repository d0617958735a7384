"""Admin routes on conflicts: list them, settle one (keep Google's version or republish ours)."""

from __future__ import annotations

from flask_openapi3.blueprint import APIBlueprint

from calsync.bootstrap import get_container
from calsync.http.auth import operation
from calsync.http.configs import publish_ports
from calsync.http.docs import blueprint_options
from calsync.http.schemas import ConflictPath, ConflictsQuery, ResolveBody
from calsync.results import ConflictItem, ConflictsPage
from calsync.services import calendars as calendars_service
from calsync.services import conflicts as conflicts_service

api = APIBlueprint("conflicts", __name__, **blueprint_options("conflicts"))


@api.get("/conflicts", responses={200: ConflictsPage}, summary="Conflicts")
@operation(audit=True)  # edits people made to their appointments: every read is audited
def list_conflicts(query: ConflictsQuery) -> tuple[ConflictsPage, int]:
    """Conflicts, optionally of one calendar and status."""
    return calendars_service.list_conflicts(query.spec(), store=get_container().store), 200


@api.post("/conflicts/<conflict_id>/resolve", responses={200: ConflictItem}, summary="Settle a conflict")
@operation(audit=True)
def resolve_conflict(path: ConflictPath, body: ResolveBody) -> tuple[ConflictItem, int]:
    """Settle a conflict: keep Google's version or republish ours (idempotent)."""
    c = get_container()
    settled = conflicts_service.resolve_conflict(path.conflict_id, body.action, **publish_ports(c))
    return settled, 200
