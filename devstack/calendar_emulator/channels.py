"""events.watch and channels.stop: channel validation and registration (delivery is ``push.py``'s).

Source: https://developers.google.com/workspace/calendar/api/guides/push.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from devstack.calendar_emulator.errors import ApiError
from devstack.calendar_emulator.model import DEFAULT_CHANNEL_TTL_S, Calendar, Caller, Channel


class Channels:
    """The channel side of ``Store``."""

    if TYPE_CHECKING:  # what the channel side uses of ``Store``
        channels: dict[str, Channel]

        def calendar(self, caller: Caller, calendar_id: str, need: str = "reader") -> Calendar: ...

    def resource_id(self, cal: Calendar) -> str:
        """Stable, version-independent id of a calendar's events collection."""
        return hashlib.sha1(cal.uid.encode()).hexdigest()[:27]  # noqa: S324 - an identifier, not security

    def watch(
        self,
        caller: Caller,
        calendar_id: str,
        body: dict[str, Any],
        base_url: str,
        now_ms: int,
    ) -> Channel:
        """events.watch: validate the channel request and register the channel."""
        cal = self.calendar(caller, calendar_id)
        channel_id = body.get("id")
        if not channel_id:
            raise ApiError(400, "required", "Required channel id.")
        if not isinstance(channel_id, str) or len(channel_id) > 64:
            raise ApiError(400, "invalid", "Channel id must be at most 64 characters.")
        if channel_id in self.channels:
            raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
        if body.get("type") not in ("web_hook", "webhook"):
            raise ApiError(400, "invalid", f"Invalid channel type: {body.get('type')}")
        address = body.get("address")
        if not address:
            raise ApiError(400, "required", "Required channel address.")
        if not _allowed_address(str(address)):
            raise ApiError(
                400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}", domain="global"
            )
        token = body.get("token")
        if token is not None and len(str(token)) > 256:
            raise ApiError(400, "invalid", "Channel token must be at most 256 characters.")
        ttl_raw = (body.get("params") or {}).get("ttl", DEFAULT_CHANNEL_TTL_S)
        try:
            ttl_s = int(ttl_raw)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "invalid", f"Invalid ttl value: {ttl_raw}") from exc
        if ttl_s <= 0:
            raise ApiError(400, "invalid", f"Invalid ttl value: {ttl_raw}")
        expiration = now_ms + ttl_s * 1000
        if body.get("expiration") is not None:
            expiration = min(expiration, int(body["expiration"]))  # the more restrictive value wins
        channel = Channel(
            id=channel_id,
            resource_id=self.resource_id(cal),
            resource_uri=f"{base_url}/calendar/v3/calendars/{cal.id}/events?alt=json",
            calendar_id=cal.id,
            calendar_uid=cal.uid,
            address=str(address),
            token=str(token) if token is not None else None,
            expiration_ms=expiration,
            owner=caller.email,
        )
        self.channels[channel_id] = channel
        return channel

    def stop_channel(self, body: dict[str, Any]) -> Channel:
        """channels.stop: 404 for unknown or already stopped channels."""
        channel_id, resource_id = body.get("id"), body.get("resourceId")
        if not channel_id or not resource_id:
            raise ApiError(400, "required", "Required parameter: id and resourceId.")
        channel = self.channels.get(str(channel_id))
        if channel is None or channel.stopped or channel.resource_id != resource_id:
            raise ApiError(404, "notFound", f"Channel '{channel_id}' not found for project 'demo-calsync'")
        channel.stopped = True
        return channel


def _allowed_address(address: str) -> bool:
    """HTTPS anywhere; plain HTTP only on loopback, so local receivers work without certificates."""
    lowered = address.lower()
    if lowered.startswith("https://"):
        return True
    for host in ("127.0.0.1", "localhost", "[::1]"):
        prefix = f"http://{host}"
        if lowered.startswith(prefix) and lowered[len(prefix) : len(prefix) + 1] in ("", ":", "/"):
            return True
    return False
