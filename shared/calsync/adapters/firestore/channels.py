"""``ports.ChannelStore`` on Firestore: push channels, notification bookkeeping, unknown channel ids.

- ``{env}_channels/{channel_id}``: ``ChannelRecord`` (single-field indexes on ``calendar_key`` and
  ``status``; the composite (status, expiration, channel_id) for the renew job's due channels). The
  highest message number is compare-and-set in a transaction, so a duplicated or reordered
  notification is recognised (https://developers.google.com/calendar/api/guides/push).
- ``{env}_unknown_channels/{slot}``: ``UnknownChannel``, channel ids that pushed to us but are not
  ours, written at most once per id per interval. Callers choose these ids, so the document is a slot
  (sha256 of the id modulo ``max_records``): the collection never holds more than ``max_records``
  documents, a colliding newer id displaces the older, and ``expire_at`` is the field Firestore's TTL
  policy deletes by (infra/terraform/modules/calsync/firestore.tf).

Channel ids come from Google's alphabet (``[A-Za-z0-9-_+/=]``), which allows ids no document can be
named by (``a/b``, ``__x__``): such an id is never one of ours (``services.channels.new_channel_id``),
so it is unknown without a read.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from calsync.adapters.firestore.base import FirestoreBase, classified
from calsync.model import ChannelRecord, UnknownChannel
from calsync.ports.queries import UnknownChannelSeen

_RESERVED_ID = re.compile(r"__.*__", re.DOTALL)


def _storable(channel_id: str) -> bool:
    """True when ``channel_id`` can name a Firestore document (no "/", not "." or "..", not ``__.*__``)."""
    if not channel_id or "/" in channel_id or channel_id in {".", ".."}:
        return False
    return not _RESERVED_ID.fullmatch(channel_id)


def unknown_channel_slot(channel_id: str, max_records: int) -> str:
    """The document an unknown channel id is recorded in: one of ``max_records`` slots."""
    digest = int.from_bytes(hashlib.sha256(channel_id.encode("utf-8")).digest()[:8], "big")
    return f"slot-{digest % max(1, max_records)}"


class FirestoreChannelStore(FirestoreBase):
    """Push channels in Firestore."""

    @classified
    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """The channel with this id, or None."""
        self._schema(self.push_client)
        if not _storable(channel_id):
            return None
        snap = self._col("channels").document(channel_id).get()
        return ChannelRecord.model_validate(snap.to_dict()) if snap.exists else None

    @classified
    def put_channel(self, record: ChannelRecord) -> None:
        """Create or replace a channel record."""
        self._schema(self.push_client)
        self._col("channels").document(record.channel_id).set(record.model_dump())

    @classified
    def active_channel(self, calendar_key: str) -> ChannelRecord | None:
        """The active channel of a calendar with the latest expiration, or None."""
        self._schema(self.push_client)
        query = self._col("channels").where(filter=FieldFilter("calendar_key", "==", calendar_key))
        query = query.where(filter=FieldFilter("status", "==", "active"))
        active = [ChannelRecord.model_validate(s.to_dict()) for s in query.stream()]
        if not active:
            return None
        return max(active, key=lambda c: (c.expiration is not None, c.expiration or c.created_at))

    @classified
    def list_channels_for_calendar(self, calendar_key: str) -> list[ChannelRecord]:
        """Every channel record of a calendar, any status."""
        self._schema(self.push_client)
        query = self._col("channels").where(filter=FieldFilter("calendar_key", "==", calendar_key))
        return [ChannelRecord.model_validate(s.to_dict()) for s in query.stream()]

    @classified
    def list_active_channels(self) -> list[ChannelRecord]:
        """Every channel whose status is ``active``."""
        self._schema(self.push_client)
        query = self._col("channels").where(filter=FieldFilter("status", "==", "active"))
        return [ChannelRecord.model_validate(s.to_dict()) for s in query.stream()]

    @classified
    def list_active_channels_expiring_before(
        self, cutoff: datetime, *, limit: int, after: ChannelRecord | None = None
    ) -> list[ChannelRecord]:
        """Active channels expiring before ``cutoff``, by (expiration, id), after ``after``.

        A cursor query on the (status, expiration, channel_id) index: the renew job reads only the
        channels due, not every channel.
        """
        self._schema(self.push_client)
        query = self._col("channels").where(filter=FieldFilter("status", "==", "active"))
        query = query.where(filter=FieldFilter("expiration", "<", cutoff))
        query = query.order_by("expiration").order_by("channel_id")
        if after is not None:
            query = query.start_after({"expiration": after.expiration, "channel_id": after.channel_id})
        return [ChannelRecord.model_validate(s.to_dict()) for s in query.limit(limit).stream()]

    @classified
    def record_notification(
        self, channel_id: str, message_number: int, at: datetime, *, enqueued_bucket: int | None = None
    ) -> bool:
        """Compare-and-set the highest message number in a transaction (False: not higher, a duplicate)."""
        self._schema(self.push_client)
        if not _storable(channel_id):
            return False
        ref = self._col("channels").document(channel_id)

        @firestore.transactional
        def record(transaction: Any) -> bool:
            snap = ref.get(transaction=transaction)
            if not snap.exists:
                return False
            data = snap.to_dict() or {}
            if message_number <= int(data.get("last_message_number") or 0):
                return False
            update: dict[str, Any] = {"last_message_number": message_number, "last_webhook_at": at}
            if enqueued_bucket is not None:
                update["last_enqueued_bucket"] = max(enqueued_bucket, int(data.get("last_enqueued_bucket") or 0))
            transaction.update(ref, update)
            return True

        result: bool = record(self.push_client.transaction())
        return result

    @classified
    def record_unknown_channel(self, note: UnknownChannelSeen) -> bool:
        """Note a channel id that is not ours in its slot, at most once per ``min_interval_s`` per id."""
        self._schema(self.push_client)
        ref = self._col("unknown_channels").document(unknown_channel_slot(note.channel_id, note.max_records))
        snap = ref.get()
        seen = UnknownChannel.model_validate(snap.to_dict()) if snap.exists else None
        if seen is not None and seen.channel_id == note.channel_id:
            if note.too_soon_after(seen):
                return False
            # Not transactional on purpose: a lost increment of this diagnostic count is harmless.
            ref.update(note.update_of(seen))
            return True
        record = note.first_record()
        ref.set(record.model_dump())
        return True

    @classified
    def list_unknown_channels(self) -> list[UnknownChannel]:
        """The unknown-channel records kept (one per slot at most)."""
        self._schema(self.push_client)
        return [UnknownChannel.model_validate(s.to_dict()) for s in self._col("unknown_channels").stream()]
