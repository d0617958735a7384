"""P3: webhook acknowledgement latency at a fixed rate, vs a bare functions-framework function.

The webhook function runs under functions-framework on the stack (Firestore emulator, Cloud Tasks
emulator) with the production debounce (30 s). 50 channels are registered; a second process
(``bench.load_client``) sends valid notifications round-robin over them (each channel sees one
message a second, growing message numbers), so every request does the real work: channel lookup,
token hash check, one Firestore transaction, and one Cloud Tasks enqueue per channel and debounce
bucket. The enqueued syncs target the bare function, so no sync runs during the measurement. The
reference is the bare function (answers 200, nothing else) under the same load. Both get a short
unmeasured warm-up on other channels first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.cloud import firestore

from bench.harness import PROJECT, REGION, BenchStack, Row, fmt, percentile
from calsync.adapters.cloud_tasks import CloudTasksQueue
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.model import ChannelRecord
from calsync.services.channels import hash_token

CHANNELS = 50
WARMUP_CHANNELS = 5
QUEUE = "bench-p3-sync"


def register_channels(store: FirestoreStateStore, prefix: str, count: int) -> list[dict[str, str]]:
    """``count`` live channels in Firestore; what the load client needs to send valid notifications."""
    now = datetime.now(UTC)
    specs = []
    for i in range(count):
        token = f"bench-nonce-{prefix}-{i}"
        spec = {"id": f"{prefix}{i:04d}".ljust(32, "0"), "token": token, "resource_id": f"res-{prefix}-{i}"}
        store.put_channel(
            ChannelRecord(
                channel_id=spec["id"],
                calendar_key=f"room-{prefix}-{i}",
                resource_id=spec["resource_id"],
                resource_uri="https://www.googleapis.com/calendar/v3/calendars/x/events",
                expiration=now + timedelta(days=7),
                token_hash=hash_token(token),
                created_at=now,
            )
        )
        specs.append(spec)
    return specs


def load(url: str, rate: float, seconds: float, channels: list[dict[str, str]]) -> dict[str, Any]:
    """Run the load client in a second process against ``url``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump(channels, spec)
    try:
        argv = [sys.executable, "-m", "bench.load_client", "--url", url, "--rate", str(rate)]
        argv += ["--seconds", str(seconds), "--channels", spec.name]
        done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds * 10 + 60)
    finally:
        Path(spec.name).unlink(missing_ok=True)
    return dict(json.loads(done.stdout))


def run(stack: BenchStack, *, rate: float, seconds: float) -> list[Row]:
    """Measure both functions at ``rate`` requests/s for ``seconds``."""
    stack.reset()
    queue = CloudTasksQueue.for_emulator(stack.tasks_host, PROJECT, REGION)
    queue.ensure_queue(QUEUE)
    queue.close()
    bare_server, bare_url = stack.start_bare_function()
    env = stack.function_env(webhook_url="http://127.0.0.1:1/", sync_url=bare_url, sync_queue=QUEUE, debounce_s="30")
    webhook_server, webhook_url = stack.start_function("webhook", env)
    try:
        store = FirestoreStateStore(firestore.Client(project=PROJECT), environment="dev")
        warm = register_channels(store, "w", WARMUP_CHANNELS)
        channels = register_channels(store, "b", CHANNELS)
        load(webhook_url, 10, 1, warm)
        load(bare_url, 10, 1, [])
        ours = load(webhook_url, rate, seconds, channels)
        theirs = load(bare_url, rate, seconds, [])
    finally:
        stack.stop_server(webhook_server)
        stack.stop_server(bare_server)
    if set(ours["statuses"]) != {"200"}:
        raise RuntimeError(f"P3: the webhook answered {ours['statuses']}")
    label = f"webhook ack at {fmt(rate)} req/s for {fmt(seconds)} s ({fmt(len(ours['latencies_ms']))} requests)"
    rows = []
    for q in (50, 99):
        a, b = percentile(ours["latencies_ms"], q), percentile(theirs["latencies_ms"], q)
        rows.append(
            Row(
                "P3",
                f"{label}: p{q} (ms)",
                fmt(a),
                fmt(b),
                f"{a / b:.3g}x bare",
                "reference: bare functions-framework function; second process, open loop, 127.0.0.1"
                if q == 50
                else f"achieved {ours['achieved_rate']:.1f} req/s; statuses {ours['statuses']}",
            )
        )
    return rows
