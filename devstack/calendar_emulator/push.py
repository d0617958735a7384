"""Push notifications: POST ``sync``/``exists`` messages to channel addresses, in the background.

Follows https://developers.google.com/workspace/calendar/api/guides/push: empty body, the
``X-Goog-*`` headers, ``User-Agent: APIs-Google``, message number 1 for ``sync`` and larger (not
consecutive) numbers afterwards; 500/502/503/504 are retried with exponential backoff, any other
non-2xx is a failure. Each channel has its own queue and worker task on the server's event loop, so a
delivery never blocks an API call and messages of one channel leave in order (unless a chaos mode says
otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from email.utils import formatdate

import httpx
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential

from devstack.calendar_emulator.governor import PushSpec, Stats
from devstack.calendar_emulator.store import Calendar, Channel, Store

RETRYABLE = frozenset({500, 502, 503, 504})
SUCCESS = frozenset({102, 200, 201, 202, 204})
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 2.0
ATTEMPTS = 5
DELIVERY_TIMEOUT_S = 5.0
INACTIVE = -1


@dataclass(frozen=True)
class Message:
    """One notification for one channel."""

    channel_id: str
    state: str
    number: int


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return int(time.time() * 1000)


class PushDispatcher:
    """Queues and delivers notifications; must be used from the server's event loop."""

    def __init__(self, store: Store, stats: Stats) -> None:
        self.store = store
        self.stats = stats
        self.spec = PushSpec()
        self._queues: dict[str, asyncio.Queue[Message]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self._held: dict[str, Message] = {}
        store.listeners.append(self.on_change)

    def active(self, channel: Channel) -> bool:
        """True while the channel is neither stopped nor expired."""
        return not channel.stopped and channel.expiration_ms > now_ms()

    def on_change(self, cal: Calendar) -> None:
        """A calendar changed: queue an ``exists`` message for each of its live channels."""
        for channel in self.store.channels.values():
            if channel.calendar_uid == cal.uid and self.active(channel):
                channel.message_number += random.randint(1, 3)  # increasing, not consecutive
                self.enqueue(Message(channel.id, "exists", channel.message_number))

    def sync(self, channel: Channel) -> None:
        """Queue the ``sync`` message (number 1) a new channel receives."""
        self.enqueue(Message(channel.id, "sync", 1))

    def enqueue(self, message: Message) -> None:
        """Queue ``message``, applying the chaos mode of ``POST /_emulator/push``."""
        mode, hit = self.spec.mode, random.random() < self.spec.rate
        if mode == "drop" and hit:
            self.stats.count("push_dropped")
            return
        if mode == "delay" and hit:
            asyncio.get_running_loop().call_later(self.spec.delay_ms / 1000, self._put, message)
            return
        if mode == "reorder":
            held = self._held.pop(message.channel_id, None)
            if held is not None:
                # The held message goes out right after this newer one: an adjacent swap.
                self._put(message)
                self._put(held)
                return
            if hit:
                self._held[message.channel_id] = message
                asyncio.get_running_loop().call_later(self.spec.delay_ms / 1000, self._release, message)
                return
        self._put(message)
        if mode == "duplicate" and hit:
            self.stats.count("push_duplicated")
            self._put(message)

    def _release(self, message: Message) -> None:
        """Send a held-back message nobody overtook within ``delay_ms``."""
        if self._held.get(message.channel_id) == message:
            del self._held[message.channel_id]
            self._put(message)

    def _put(self, message: Message) -> None:
        queue = self._queues.get(message.channel_id)
        if queue is None:
            queue = self._queues[message.channel_id] = asyncio.Queue()
            self._tasks[message.channel_id] = asyncio.get_running_loop().create_task(
                self._worker(queue), name=f"push-{message.channel_id}"
            )
        queue.put_nowait(message)

    async def _worker(self, queue: asyncio.Queue[Message]) -> None:
        while True:
            message = await queue.get()
            try:
                await self._deliver(message)
            except Exception:  # one bad delivery must not kill the channel's worker
                self.stats.count("push_failures")

    async def _deliver(self, message: Message) -> None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=BACKOFF_BASE_S, max=BACKOFF_MAX_S),
            retry=retry_if_result(lambda status: status in RETRYABLE),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else 0,
        )
        status: int = await retrying(self._attempt, message)
        if status == INACTIVE:
            self.stats.count("push_skipped_inactive")
        elif status in SUCCESS:
            self.stats.count("push_deliveries")
        else:
            self.stats.count("push_failures")

    async def _attempt(self, message: Message) -> int:
        channel = self.store.channels.get(message.channel_id)
        if channel is None or not self.active(channel):
            return INACTIVE  # expired or stopped channels stop delivering, retries included
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": message.state,
            "X-Goog-Message-Number": str(message.number),
            "User-Agent": "APIs-Google",
            "Content-Type": "application/json; charset=UTF-8",
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S, follow_redirects=False)
        try:
            response = await self._client.post(channel.address, headers=headers, content=b"")
        except httpx.HTTPError:
            status = 503  # unreachable receivers are retried like a 503
        else:
            status = response.status_code
        if status in RETRYABLE:
            self.stats.count("push_retries")
        return status

    async def reset(self) -> None:
        """Cancel every queued delivery (used by ``/_emulator/reset`` and shutdown)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queues.clear()
        self._held.clear()
        self.spec = PushSpec()

    async def close(self) -> None:
        """Stop workers and close the HTTP client."""
        await self.reset()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
