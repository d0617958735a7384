"""Drives gcal_sync (the library Home Assistant uses) against the Calendar emulator.

gcal_sync's ``AbstractAuth`` takes a ``host``: pointed at the emulator's ``/calendar/v3``, its
``CalendarEventSyncManager`` runs its own page loop (``sync.py::_run_sync``: list with its default
1000-event pages and its own field mask, keep the sync token after the last page) into its
``InMemoryCalendarStore``, as Home Assistant's integration does (HA persists the same dict to disk).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import requests
from gcal_sync.api import GoogleCalendarService, SyncEventsRequest
from gcal_sync.auth import AbstractAuth
from gcal_sync.store import InMemoryCalendarStore
from gcal_sync.sync import CalendarEventSyncManager


class EmulatorAuth(AbstractAuth):
    """An access token issued by the emulator's ``/token`` endpoint for a reader of the calendar."""

    def __init__(self, websession: aiohttp.ClientSession, host: str, token: str) -> None:
        super().__init__(websession, host=host)
        self._token = token

    async def async_get_access_token(self) -> str:
        """The bearer token."""
        return self._token


def access_token(base: str, user: str) -> str:
    """An emulator access token for ``user`` (refresh token ``rt:<email>`` maps to that person)."""
    answer = requests.post(
        f"{base}/token",
        data={"grant_type": "refresh_token", "refresh_token": f"rt:{user}", "client_id": "bench"},
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


@dataclass
class GcalSyncRun:
    """One ``CalendarEventSyncManager.run()``: wall time and the number of events in its store."""

    seconds: float
    events: int


class GcalSyncClient:
    """A gcal_sync sync manager for one calendar, kept across runs (full, then incremental)."""

    def __init__(self, base: str, calendar_id: str, *, user: str, time_min: datetime) -> None:
        self.base = base
        self.calendar_id = calendar_id
        self.token = access_token(base, user)
        self.time_min = time_min
        self.store = InMemoryCalendarStore()

    async def _run(self) -> GcalSyncRun:
        async with aiohttp.ClientSession() as session:
            auth = EmulatorAuth(session, f"{self.base}/calendar/v3", self.token)
            manager = CalendarEventSyncManager(
                GoogleCalendarService(auth),
                store=self.store,
                request_template=SyncEventsRequest(calendar_id=self.calendar_id, start_time=self.time_min),
            )
            started = time.monotonic()
            await manager.run()
            elapsed = time.monotonic() - started
        data: dict[str, Any] = await self.store.async_load() or {}
        items = data.get("event_sync", {}).get(self.calendar_id, {}).get("items", {})
        return GcalSyncRun(seconds=elapsed, events=len(items))

    def run(self) -> GcalSyncRun:
        """One sync run (full the first time, incremental with its stored token after)."""
        return asyncio.run(self._run())
