"""``--default-user``: who unauthenticated requests act as (the local stack's delegated Workspace user)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from devstack import procs

EVENT = {
    "summary": "Consulta",
    "start": {"dateTime": "2030-01-07T10:00:00-03:00"},
    "end": {"dateTime": "2030-01-07T10:30:00-03:00"},
    "attendees": [{"email": "paciente@example.com"}],
}
MEET = {"createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}}


@pytest.fixture(scope="module")
def delegated_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs: Path = tmp_path_factory.mktemp("emulator-default-user")
    server = procs.start_calendar_emulator(procs.free_port(), logs, default_user="agenda@clinic.example")
    try:
        yield f"http://{procs.HOST}:{server.port}"
    finally:
        server.stop()


def client(base: str):  # type: ignore[no-untyped-def]
    return build(
        "calendar",
        "v3",
        static_discovery=True,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": f"{base}/calendar/v3/"},
    )


def test_unauthenticated_calls_act_as_the_default_user(delegated_base: str) -> None:
    api = client(delegated_base)
    created = (
        api.events()
        .insert(calendarId="primary", body={**EVENT, "conferenceData": MEET}, conferenceDataVersion=1)
        .execute()
    )
    assert created["creator"]["email"] == "agenda@clinic.example"
    assert created["attendees"][0]["email"] == "paciente@example.com"
    assert created["hangoutLink"].startswith("https://meet.google.com/")


def test_without_it_the_service_account_is_refused_attendees(calendar_base: str) -> None:
    with pytest.raises(HttpError) as err:
        client(calendar_base).events().insert(calendarId="primary", body=EVENT).execute()
    assert err.value.resp.status == 403
