"""Point 7: batch — real BatchHttpRequest, order, Content-ID, per-part failures, part limit, part quota."""

from __future__ import annotations

from typing import Any

import requests
from googleapiclient.errors import HttpError

from .helpers import calendar, control, new_batch, stats, timed_event

USER = "recepcao@clinic.example"
EVENT = timed_event("Consulta", "2030-01-07T10:00:00Z", "2030-01-07T11:00:00Z")


def test_batch_answers_each_part_in_order(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    cal = api.calendars().insert(body={"summary": "Sala"}).execute()["id"]
    results: dict[str, tuple[Any, HttpError | None]] = {}

    def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
        results[request_id] = (response, exception)

    batch = new_batch(calendar_base, callback=collect)
    batch.add(api.events().insert(calendarId=cal, body={**EVENT, "id": "batch00001"}), request_id="a")
    batch.add(api.events().insert(calendarId=cal, body={**EVENT, "id": "batch00001"}), request_id="b")
    batch.add(api.events().get(calendarId=cal, eventId="batch00001"), request_id="c")
    batch.add(api.events().get(calendarId="nobody@clinic.example", eventId="x"), request_id="d")
    batch.execute()

    assert results["a"][0]["id"] == "batch00001"
    assert results["b"][1] is not None
    assert results["b"][1].resp.status == 409
    assert results["c"][0]["id"] == "batch00001"
    assert results["d"][1] is not None
    assert results["d"][1].resp.status == 404
    counted = stats(calendar_base)
    assert counted["batch"] == {"requests": 1, "parts": 4}
    assert counted["methods"]["calendar.events.insert"] == 2


def test_more_than_1000_parts_is_400(calendar_base: str) -> None:
    # google-api-python-client refuses to build such a batch itself, so this one is sent by hand.
    boundary = "xyz"
    part = (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <p+{{i}}>\r\n\r\n"
        "GET /calendar/v3/users/me/calendarList HTTP/1.1\r\n\r\n"
    )
    body = "".join(part.replace("{i}", str(i)) for i in range(1001)) + f"--{boundary}--\r\n"
    resp = requests.post(
        f"{calendar_base}/batch/calendar/v3",
        data=body,
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
        timeout=30,
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == 400


def test_raw_batch_echoes_content_ids(calendar_base: str) -> None:
    boundary = "b1"
    body = (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item1>\r\n\r\n"
        "GET /calendar/v3/users/me/calendarList HTTP/1.1\r\n\r\n"
        f"--{boundary}--\r\n"
    )
    resp = requests.post(
        f"{calendar_base}/batch/calendar/v3",
        data=body,
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}", "X-Emulator-User": USER},
        timeout=30,
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("multipart/mixed")
    assert "Content-ID: <response-item1>" in resp.text
    assert "HTTP/1.1 200 OK" in resp.text


def test_each_part_counts_against_quota(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    cal = api.calendars().insert(body={"summary": "Sala"}).execute()["id"]
    control(calendar_base, "quota", {"per_user_per_minute": 4})
    statuses: list[int] = []

    def collect(_rid: str, _response: Any, exception: HttpError | None) -> None:
        statuses.append(exception.resp.status if exception else 200)

    batch = new_batch(calendar_base, callback=collect)
    for i in range(6):
        batch.add(api.events().insert(calendarId=cal, body={**EVENT, "summary": f"e{i}"}))
    batch.execute()
    # The calendar insert used one unit already.
    assert statuses == [200, 200, 200, 403, 403, 403]
    assert stats(calendar_base)["quota_rejections"] == 3
