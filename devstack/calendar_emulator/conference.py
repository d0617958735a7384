"""conferenceData with ``conferenceDataVersion``: Google Meet links for people, refused for service accounts.

Source: ``conferenceData`` and ``conferenceDataVersion`` in
https://developers.google.com/workspace/calendar/api/v3/reference/events/insert.
"""

from __future__ import annotations

import copy
import secrets
import string
from typing import Any

from devstack.calendar_emulator.errors import ApiError
from devstack.calendar_emulator.model import Caller


def _meet_code() -> str:
    letters = string.ascii_lowercase
    return "-".join("".join(secrets.choice(letters) for _ in range(n)) for n in (3, 4, 3))


def apply(caller: Caller, resource: dict[str, Any], previous: dict[str, Any] | None, version: int) -> None:
    """Apply conferenceDataVersion: 0 ignores the body's conferenceData, 1 creates Meet links."""
    if version == 0:
        resource.pop("conferenceData", None)
        if previous and "conferenceData" in previous:
            resource["conferenceData"] = copy.deepcopy(previous["conferenceData"])
            if "hangoutLink" in previous:
                resource["hangoutLink"] = previous["hangoutLink"]
        return
    data = resource.get("conferenceData")
    if not isinstance(data, dict) or not isinstance(data.get("createRequest"), dict):
        return
    request = data["createRequest"]
    old = (previous or {}).get("conferenceData") or {}
    if old.get("createRequest", {}).get("requestId") == request.get("requestId") and old:
        resource["conferenceData"] = copy.deepcopy(old)  # same requestId: the request is ignored
        return
    solution = (request.get("conferenceSolutionKey") or {}).get("type")
    if caller.service_account or solution != "hangoutsMeet":
        raise ApiError(400, "invalid", "Invalid conference type value.")
    code = _meet_code()
    uri = f"https://meet.google.com/{code}"
    resource["conferenceData"] = {
        "createRequest": {
            "requestId": request.get("requestId"),
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
            "status": {"statusCode": "success"},
        },
        "entryPoints": [{"entryPointType": "video", "uri": uri, "label": f"meet.google.com/{code}"}],
        "conferenceSolution": {
            "key": {"type": "hangoutsMeet"},
            "name": "Google Meet",
            "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
        },
        "conferenceId": code,
    }
    resource["hangoutLink"] = uri
