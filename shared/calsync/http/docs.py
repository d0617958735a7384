"""OpenAPI pieces shared by the blueprints: the error responses and the operation ids."""

from __future__ import annotations

from typing import Any

from flask_openapi3.models.tag import Tag

ERROR_SCHEMA = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def error(description: str) -> dict[str, Any]:
    """An error response of the document (the envelope)."""
    return {"description": description, "content": ERROR_SCHEMA}


def common_errors(*, admin: bool = True) -> dict[str, Any]:
    """The errors every operation may answer (and 401/403 behind auth)."""
    out: dict[str, Any] = {
        "400": error("invalid request"),
        "404": error("not found"),
        "409": error("stale or conflicting"),
    }
    if admin:
        out |= {"401": error("missing or invalid credentials"), "403": error("not an admin")}
    return out


def operation_id(*, name: str = "", path: str = "", method: str = "") -> str:
    """The operation id is the view's name (``register_calendar``, ``post_plan``, ...)."""
    return name


def blueprint_options(tag: str, *, admin: bool = True) -> dict[str, Any]:
    """Keyword arguments of an ``APIBlueprint`` of the admin API."""
    return {
        "abp_tags": [Tag(name=tag)],
        "abp_security": BEARER if admin else [],
        "abp_responses": common_errors(admin=admin),
        "operation_id_callback": operation_id,
    }
