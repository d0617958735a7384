"""The P1 reference: a naive full-window poller, written honestly.

What a sync without Google's sync tokens does on every run: list the whole window (the same
``now - 45 days .. now + 180 days``, ``singleEvents``, the same 2500-event pages and field mask as
calsync, through the same adapter and its retries), read the whole mirror of the calendar, compare
each listed event with its stored copy by etag, write the ones that differ and tombstone the mirror
events that are no longer listed. It does compare before writing (``rewrite_all=False``, the honest
default); ``rewrite_all=True`` is the even simpler poller that rewrites every listed event.

It needs no conflict logic to make the point: the cost of a poll is proportional to the window, not
to the changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from calsync.model import GoogleEvent, MirrorEvent
from calsync.ports import CalendarApi, Clock, ListEvents, MirrorStore
from calsync.ports.queries import MirrorQuery

PAST_DAYS = 45
FUTURE_DAYS = 180
MIRROR_PAGE = 1000


@dataclass
class PollSummary:
    """What one poll did."""

    pages: int = 0
    listed: int = 0
    read: int = 0
    written: int = 0
    tombstoned: int = 0


def mirror_of(event: GoogleEvent, *, calendar_key: str, google_calendar_id: str, now: datetime) -> MirrorEvent:
    """Google's version of an event as a mirror document (no tags interpreted: the poller is naive)."""
    return MirrorEvent(
        calendar_key=calendar_key,
        external_id=event.id,
        google_calendar_id=google_calendar_id,
        etag=event.etag,
        updated=event.updated,
        status=event.status or "confirmed",
        start=event.start.as_utc() if event.start else None,
        end=event.end.as_utc() if event.end else None,
        summary=event.summary,
        last_synced_at=now,
    )


def changed(listed: GoogleEvent, stored: MirrorEvent | None) -> bool:
    """True when the mirror has no copy of the event or an older one (etag differs)."""
    return stored is None or stored.status == "cancelled" or stored.etag != listed.etag


class FullWindowPoller:
    """Polls one calendar by listing its whole window every time."""

    def __init__(
        self,
        *,
        api: CalendarApi,
        store: MirrorStore,
        clock: Clock,
        calendar_key: str,
        google_calendar_id: str,
        rewrite_all: bool = False,
    ) -> None:
        self.api = api
        self.store = store
        self.clock = clock
        self.calendar_key = calendar_key
        self.google_calendar_id = google_calendar_id
        self.rewrite_all = rewrite_all

    def list_window(self, summary: PollSummary) -> list[GoogleEvent]:
        """Every live event of the window, page after page."""
        now = self.clock.now()
        time_min, time_max = now - timedelta(days=PAST_DAYS), now + timedelta(days=FUTURE_DAYS)
        items: list[GoogleEvent] = []
        token: str | None = None
        while True:
            page = self.api.list_events(
                ListEvents(self.google_calendar_id, page_token=token, time_min=time_min, time_max=time_max)
            )
            summary.pages += 1
            items.extend(page.items)
            token = page.next_page_token
            if token is None:
                return items

    def read_mirror(self) -> dict[str, MirrorEvent]:
        """Every mirror document of the calendar, by event id."""
        stored: dict[str, MirrorEvent] = {}
        token: str | None = None
        while True:
            page, token = self.store.list_mirror_events(
                MirrorQuery(self.calendar_key, time_min=None, time_max=None, page_size=MIRROR_PAGE, page_token=token)
            )
            stored.update((m.external_id, m) for m in page)
            if token is None:
                return stored

    def poll(self) -> PollSummary:
        """One poll: list everything, compare with the whole mirror, write what differs."""
        summary = PollSummary()
        now = self.clock.now()
        listed = [e for e in self.list_window(summary) if not e.cancelled]
        summary.listed = len(listed)
        # Without a sync token the poller cannot know what changed: it reads the whole mirror once.
        stored = self.read_mirror()
        summary.read = len(stored)
        writes = [
            mirror_of(e, calendar_key=self.calendar_key, google_calendar_id=self.google_calendar_id, now=now)
            for e in listed
            if self.rewrite_all or changed(e, stored.get(e.id))
        ]
        listed_ids = {e.id for e in listed}
        gone = [
            m.model_copy(update={"status": "cancelled", "last_synced_at": now})
            for i, m in stored.items()
            if i not in listed_ids and m.status != "cancelled"
        ]
        if writes or gone:
            self.store.put_events(writes + gone)
        summary.written, summary.tombstoned = len(writes), len(gone)
        return summary
