"""Helpers for the Calendar emulator's tests: real API clients, the control API and a push receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httplib2
import requests
from google.auth.credentials import AnonymousCredentials, Credentials
from googleapiclient.discovery import build
from googleapiclient.http import BatchHttpRequest

from devstack.procs import HOST


class HeaderHttp(httplib2.Http):  # type: ignore[misc]
    """An httplib2 transport that adds fixed headers (e.g. ``X-Emulator-User``) to every request."""

    def __init__(self, extra: dict[str, str]) -> None:
        super().__init__(timeout=30)
        self.extra = extra

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any) -> Any:
        """Send with the extra headers added."""
        headers = {**dict(headers or {}), **self.extra}
        return super().request(uri, method=method, body=body, headers=headers, **kw)


def calendar(
    base: str,
    *,
    user: str | None = None,
    credentials: Credentials | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """A real ``googleapiclient`` Calendar v3 service pointed at the emulator."""
    options = {"api_endpoint": f"{base}/calendar/v3/"}
    if user is not None or headers is not None:
        extra = {**({"X-Emulator-User": user} if user else {}), **(headers or {})}
        return build("calendar", "v3", static_discovery=True, http=HeaderHttp(extra), client_options=options)
    return build(
        "calendar",
        "v3",
        static_discovery=True,
        credentials=credentials or AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=options,
    )


def control(base: str, path: str, body: Any = None, method: str = "POST") -> Any:
    """Call ``/_emulator/<path>`` and return its JSON."""
    resp = requests.request(method, f"{base}/_emulator/{path}", json=body, timeout=10)
    resp.raise_for_status()
    return resp.json()


def stats(base: str) -> dict[str, Any]:
    """``GET /_emulator/stats``."""
    return dict(control(base, "stats", method="GET"))


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def timed_event(summary: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    """An event body with UTC ``dateTime`` bounds."""
    return {"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


@dataclass
class Received:
    """One notification as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class PushReceiver:
    """A tiny HTTP server on 127.0.0.1 recording POSTs; answers the queued statuses first, then 200."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The receiver's address (plain HTTP on loopback, which the emulator allows)."""
        assert self._server is not None
        return f"http://{HOST}:{self._server.server_address[1]}/hook"

    def start(self) -> PushReceiver:
        """Start serving in a daemon thread."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.attempts += 1
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status < 300:
                        receiver.received.append(Received(dict(self.headers.items()), body, self.path))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def states(self) -> list[str]:
        """``X-Goog-Resource-State`` of every accepted notification, in arrival order."""
        with self._lock:
            return [r.headers["X-Goog-Resource-State"] for r in self.received]


def new_batch(base: str, callback: Callable[..., None] | None = None) -> BatchHttpRequest:
    """A real ``BatchHttpRequest`` aimed at the emulator's batch endpoint."""
    return BatchHttpRequest(callback=callback, batch_uri=f"{base}/batch/calendar/v3")
