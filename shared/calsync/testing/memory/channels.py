"""``ports.ChannelStore`` in memory: push channels, notification bookkeeping and unknown channel ids."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from calsync.model import ChannelRecord, UnknownChannel
from calsync.ports.queries import UnknownChannelSeen


def _expiry_order(channel: ChannelRecord) -> tuple[datetime, str]:
    assert channel.expiration is not None
    return (channel.expiration, channel.channel_id)


class InMemoryChannelStore:
    """Push channels in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.channels: dict[str, ChannelRecord] = {}
        self.unknown_channels: dict[str, UnknownChannel] = {}
        self._channel_guard = threading.Lock()

    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """The channel with this id, or None."""
        record = self.channels.get(channel_id)
        return record.model_copy(deep=True) if record else None

    def put_channel(self, record: ChannelRecord) -> None:
        """Create or replace a channel record."""
        self.channels[record.channel_id] = record.model_copy(deep=True)

    def active_channel(self, calendar_key: str) -> ChannelRecord | None:
        """The active channel of a calendar with the latest expiration (one without: the latest created)."""
        active = [c for c in self.channels.values() if c.calendar_key == calendar_key and c.status == "active"]
        if not active:
            return None
        best = max(active, key=lambda c: (c.expiration is not None, c.expiration or c.created_at))
        return best.model_copy(deep=True)

    def list_channels_for_calendar(self, calendar_key: str) -> list[ChannelRecord]:
        """Every channel of a calendar, any status."""
        return [c.model_copy(deep=True) for c in self.channels.values() if c.calendar_key == calendar_key]

    def list_active_channels(self) -> list[ChannelRecord]:
        """Every active channel."""
        return [c.model_copy(deep=True) for c in self.channels.values() if c.status == "active"]

    def list_active_channels_expiring_before(
        self, cutoff: datetime, *, limit: int, after: ChannelRecord | None = None
    ) -> list[ChannelRecord]:
        """Active channels expiring before ``cutoff``, by (expiration, id), after ``after``."""
        due = [
            c
            for c in self.channels.values()
            if c.status == "active" and c.expiration is not None and c.expiration < cutoff
        ]
        due.sort(key=_expiry_order)
        if after is not None:
            due = [c for c in due if _expiry_order(c) > _expiry_order(after)]
        return [c.model_copy(deep=True) for c in due[:limit]]

    def record_notification(
        self, channel_id: str, message_number: int, at: datetime, *, enqueued_bucket: int | None = None
    ) -> bool:
        """Store a higher message number (and bucket) atomically; False for a lower or equal one."""
        with self._channel_guard:
            record = self.channels.get(channel_id)
            if record is None or message_number <= record.last_message_number:
                return False
            update: dict[str, Any] = {"last_message_number": message_number, "last_webhook_at": at}
            if enqueued_bucket is not None:
                update["last_enqueued_bucket"] = max(enqueued_bucket, record.last_enqueued_bucket or 0)
            self.channels[channel_id] = record.model_copy(update=update)
            return True

    def record_unknown_channel(self, note: UnknownChannelSeen) -> bool:
        """Note an unknown channel id, at most once per ``min_interval_s``; beyond ``max_records`` the oldest go."""
        with self._channel_guard:
            seen = self.unknown_channels.get(note.channel_id)
            if seen is not None and note.too_soon_after(seen):
                return False
            record = note.first_record() if seen is None else seen.model_copy(update=note.update_of(seen))
            self.unknown_channels[note.channel_id] = record
            while len(self.unknown_channels) > note.max_records:
                others = (u for u in self.unknown_channels.values() if u.channel_id != note.channel_id)
                oldest = min(others, key=lambda u: u.last_seen_at)
                del self.unknown_channels[oldest.channel_id]
            return True

    def list_unknown_channels(self) -> list[UnknownChannel]:
        """The unknown-channel records kept."""
        return [u.model_copy() for u in self.unknown_channels.values()]
