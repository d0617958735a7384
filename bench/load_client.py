"""P3's load generator, run as a second process: POSTs at a fixed rate, prints the latencies as JSON.

``python -m bench.load_client --url URL --rate 50 --seconds 10 [--channels FILE]``. Open loop: request
``i`` is sent at ``t0 + i / rate`` by a small thread pool (so a slow answer does not delay the next
request); the number of requests is bounded (``rate * seconds``). With ``--channels`` (a JSON list of
``{"id", "token", "resource_id"}``) each request is a valid Google push notification, round-robin over
the channels with increasing message numbers, as Google sends them.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

WORKERS = 16
_local = threading.local()


def notification_headers(channels: list[dict[str, str]], i: int) -> dict[str, str]:
    """Headers of the ``i``-th notification: channel ``i mod n``, message numbers growing per channel."""
    if not channels:
        return {}
    channel = channels[i % len(channels)]
    return {
        "X-Goog-Channel-ID": channel["id"],
        "X-Goog-Channel-Token": channel["token"],
        "X-Goog-Resource-ID": channel["resource_id"],
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events",
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": str(2 + i // len(channels)),
        "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
    }


def _send(url: str, headers: dict[str, str]) -> tuple[float, int]:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    started = time.perf_counter()
    try:
        status = session.post(url, headers=headers, timeout=30).status_code
    except requests.RequestException:
        status = 0
    return (time.perf_counter() - started) * 1000, status


def run(url: str, rate: float, seconds: float, channels: list[dict[str, str]]) -> dict[str, Any]:
    """Send ``rate * seconds`` requests at a fixed rate; latencies (ms) and status counts."""
    total = int(rate * seconds)
    futures = []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        t0 = time.perf_counter()
        for i in range(total):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(_send, url, notification_headers(channels, i)))
        results = [f.result() for f in futures]
        elapsed = time.perf_counter() - t0
    statuses = Counter(str(status) for _, status in results)
    return {
        "latencies_ms": [latency for latency, _ in results],
        "statuses": dict(statuses),
        "achieved_rate": total / elapsed if elapsed else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--channels", type=Path)
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("the load client only targets 127.0.0.1")
    channels = json.loads(args.channels.read_text()) if args.channels else []
    json.dump(run(args.url, args.rate, args.seconds, channels), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
