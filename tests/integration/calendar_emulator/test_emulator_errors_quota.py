"""Points 8 and 9: Google's error body everywhere; sliding-window quotas per user and per project."""

from __future__ import annotations

import json
import time

import pytest
import requests
from googleapiclient.errors import HttpError

from .helpers import calendar, control, stats

USER = "recepcao@clinic.example"


def test_error_body_shape_for_unknown_calendar_and_event(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    for request in (
        api.events().list(calendarId="c_unknown@group.calendar.google.com"),
        api.events().get(calendarId="primary", eventId="unknown1"),
        api.calendars().get(calendarId="someone-else@clinic.example"),
    ):
        with pytest.raises(HttpError) as err:
            request.execute()
        body = json.loads(err.value.content)
        assert body == {
            "error": {
                "errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}],
                "code": 404,
                "message": "Not Found",
            }
        }


def test_validation_errors_use_the_same_shape(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    with pytest.raises(HttpError) as err:
        api.events().list(
            calendarId="primary", timeMin="2030-01-02T00:00:00Z", timeMax="2030-01-01T00:00:00Z"
        ).execute()
    error = json.loads(err.value.content)["error"]
    assert error["code"] == 400
    assert error["errors"][0] == {
        "domain": "global",
        "reason": "timeRangeEmpty",
        "message": "The specified time range is empty.",
        "locationType": "parameter",
        "location": "timeMax",
    }


def test_user_quota_rejects_then_recovers(calendar_base: str) -> None:
    control(calendar_base, "quota", {"per_user_per_minute": 3, "window_s": 1, "retry_after_s": 7})
    api = calendar(calendar_base, user=USER)
    other = calendar(calendar_base, user="other@clinic.example")
    for _ in range(3):
        api.calendarList().list().execute()
    with pytest.raises(HttpError) as err:
        api.calendarList().list().execute()
    assert (err.value.resp.status, err.value.error_details[0]["reason"]) == (403, "userRateLimitExceeded")
    assert err.value.error_details[0]["domain"] == "usageLimits"
    assert err.value.resp["retry-after"] == "7"
    other.calendarList().list().execute()  # another user has its own budget
    # The control API and /token are not charged.
    for _ in range(5):
        stats(calendar_base)
    time.sleep(1.1)  # the sliding window moves on
    api.calendarList().list().execute()
    assert stats(calendar_base)["quota_rejections"] == 1


def test_project_quota_and_429_mix(calendar_base: str) -> None:
    control(calendar_base, "quota", {"per_project_per_minute": 2})
    calendar(calendar_base, user="a@clinic.example").calendarList().list().execute()
    calendar(calendar_base, user="b@clinic.example").calendarList().list().execute()
    with pytest.raises(HttpError) as err:
        calendar(calendar_base, user="c@clinic.example").calendarList().list().execute()
    assert (err.value.resp.status, err.value.error_details[0]["reason"]) == (403, "rateLimitExceeded")
    control(calendar_base, "quota", {"rate_429": 1.0})
    with pytest.raises(HttpError) as err:
        calendar(calendar_base, user="c@clinic.example").calendarList().list().execute()
    assert (err.value.resp.status, err.value.error_details[0]["reason"]) == (429, "rateLimitExceeded")


def test_defaults_are_googles(calendar_base: str) -> None:
    quota = requests.get(f"{calendar_base}/_emulator/quota", timeout=10).json()
    assert (quota["per_user_per_minute"], quota["per_project_per_minute"], quota["window_s"]) == (600, 10000, 60.0)


def test_patch_costs_three_units(calendar_base: str) -> None:
    api = calendar(calendar_base, user=USER)
    ev = (
        api.events()
        .insert(
            calendarId="primary", body={"summary": "x", "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}
        )
        .execute()
    )
    control(calendar_base, "quota", {"per_user_per_minute": 3})  # the insert used one unit
    with pytest.raises(HttpError) as err:
        api.events().patch(calendarId="primary", eventId=ev["id"], body={"summary": "y"}).execute()
    assert err.value.resp.status == 403
    api.events().get(calendarId="primary", eventId=ev["id"]).execute()
