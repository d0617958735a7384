"""Admin routes of a clinic's directory and schedule: professionals, rooms, provisioning, allocations."""

from __future__ import annotations

from typing import Any

from flask_openapi3.blueprint import APIBlueprint
from pydantic import ValidationError

from calsync.bootstrap import get_container
from calsync.http.auth import operation
from calsync.http.configs import (
    availability_config,
    io_ports,
    provisioning,
    publish_config,
    publish_store,
)
from calsync.http.docs import blueprint_options, error
from calsync.http.schemas import AllocationIn, AllocationsBody, ClinicPath, ProfessionalsBody, ProvisionBody, RoomsBody
from calsync.model import Allocation, Professional, Room
from calsync.results import AllocationsUpserted, AvailabilityChecked, DirectoryReplaced, Provisioned
from calsync.services import allocations as allocations_service
from calsync.services import availability, directory, provision

api = APIBlueprint("directory", __name__, **blueprint_options("directory"))


@api.put(
    "/clinics/<clinic_id>/professionals",
    responses={200: DirectoryReplaced},
    summary="Replace a clinic's professionals",
)
@operation(audit=True)
def put_professionals(path: ClinicPath, body: ProfessionalsBody) -> tuple[DirectoryReplaced, int]:
    """Replace a clinic's professionals."""
    items = [Professional(clinic_id=path.clinic_id, **p.model_dump()) for p in body.items]
    done = directory.replace_professionals(path.clinic_id, items, store=publish_store(get_container()))
    return done, 200


@api.put("/clinics/<clinic_id>/rooms", responses={200: DirectoryReplaced}, summary="Replace a clinic's rooms")
@operation(audit=True)
def put_rooms(path: ClinicPath, body: RoomsBody) -> tuple[DirectoryReplaced, int]:
    """Replace a clinic's rooms."""
    items = [Room(clinic_id=path.clinic_id, **r.model_dump()) for r in body.items]
    done = directory.replace_rooms(path.clinic_id, items, store=publish_store(get_container()))
    return done, 200


@api.post(
    "/clinics/<clinic_id>/availability",
    responses={200: AvailabilityChecked},
    summary="Check the professionals' own calendars (free/busy) against published allocations",
)
@operation(audit=True)
def post_availability(path: ClinicPath) -> tuple[AvailabilityChecked, int]:
    """Read each professional's free/busy; open or resolve ``busy_elsewhere`` conflicts."""
    c = get_container()
    api = c.api_for_clinic(path.clinic_id)
    return availability.check_clinic(path.clinic_id, **io_ports(c, api), config=availability_config(c.settings)), 200


@api.post("/provision", responses={200: Provisioned}, summary="Create, share and watch a clinic's calendars (paced)")
@operation(audit=True)
def post_provision(body: ProvisionBody) -> tuple[Provisioned, int]:
    """Schedule the clinic's missing calendars on their writers' budgets (a task each); their status."""
    c = get_container()
    done = provision.start_provision(
        body.clinic_id, provisioning(c), publish_config(c.settings), clinic_api=c.api_for_clinic(body.clinic_id)
    )
    return done, 200


@api.get("/provision/<clinic_id>", responses={200: Provisioned}, summary="Progress of a clinic's provisioning")
@operation()
def get_provision(path: ClinicPath) -> tuple[Provisioned, int]:
    """How many of the clinic's calendars exist and are watched; writers locked."""
    c = get_container()
    return provision.provision_status(path.clinic_id, store=publish_store(c), clock=c.clock), 200


@api.put(
    "/allocations",
    responses={200: AllocationsUpserted, 422: error("rejected items; nothing written")},
    summary="Bulk upsert of allocations (all or nothing)",
)
@operation(audit=True)
def put_allocations(body: AllocationsBody) -> tuple[AllocationsUpserted, int]:
    """Bulk upsert of allocations: 422 with per-item errors and nothing written."""
    parsed: list[Allocation] = []
    problems: list[dict[str, Any]] = []
    for index, raw in enumerate(body.items):
        try:
            item = AllocationIn.model_validate(raw)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "item" for e in exc.errors()})
            problems.append({"index": index, "id": raw.get("id"), "errors": [f"invalid {f}" for f in fields]})
            continue
        parsed.append(Allocation(**item.model_dump()))
    if problems:
        raise allocations_service.AllocationsRejected(
            "allocations rejected; nothing was written", details={"errors": problems}
        )
    c = get_container()
    done = allocations_service.upsert_allocations(parsed, store=publish_store(c), clock=c.clock)
    return done, 200
