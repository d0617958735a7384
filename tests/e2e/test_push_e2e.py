"""The push path end to end over real HTTP: Calendar emulator → webhook function → Cloud Tasks emulator
→ sync function → Firestore emulator; and the renew function's renew/poll jobs.

The three functions run under functions-framework on 127.0.0.1 (started once for the module), with a
2 s debounce so the edit→mirror latency stays short. Each test gets a wiped Firestore and Calendar
emulator; the module uses its own Cloud Tasks queue so other tests' tasks never block it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore

from calsync.adapters.cloud_tasks import CloudTasksQueue
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.adapters.google_calendar import GoogleCalendarApi
from calsync.bootstrap import SystemClock
from calsync.job_results import RenewRun
from calsync.model import CalendarRecord, MirrorEvent, PublishedSnapshot
from calsync.ports.queries import ConflictQuery
from calsync.services.channels import ChannelConfig, hash_token, open_channel
from devstack import procs

# The clock the in-process services run on; the test reads "now" from it too.
CLOCK = SystemClock()

PROJECT = "demo-calsync"
REGION = "southamerica-east1"
KEY = "room-1"
DEBOUNCE_S = 2


@dataclass
class PushStack:
    """URLs and clients of the running functions and emulators."""

    calendar: str
    webhook: str
    sync: str
    renew: str
    queue_name: str
    tasks_host: str


@pytest.fixture(scope="module")
def push_stack(
    firestore_emulator: str, calendar_emulator_server: str, tasks_emulator: str, server_logs: Path
) -> Iterator[PushStack]:
    queue_name = f"push-e2e-{uuid.uuid4().hex[:8]}"
    queue = CloudTasksQueue.for_emulator(tasks_emulator, PROJECT, REGION)
    queue.ensure_queue(queue_name)
    queue.close()
    ports = {name: procs.free_port() for name in ("webhook", "sync", "renew")}
    urls = {name: f"http://{procs.HOST}:{port}/" for name, port in ports.items()}
    env = {
        "CALSYNC_ENVIRONMENT": "dev",
        "CALSYNC_GCP_PROJECT": PROJECT,
        "CALSYNC_REGION": REGION,
        "CALSYNC_CONTROL_CALENDAR_ID": "control@local",
        "CALSYNC_WEBHOOK_URL": urls["webhook"],
        "CALSYNC_SYNC_URL": urls["sync"],
        "CALSYNC_RENEW_URL": urls["renew"],
        "CALSYNC_SYNC_QUEUE": queue_name,
        "CALSYNC_RENEW_QUEUE": queue_name,
        "CALSYNC_TASKS_EMULATOR_HOST": tasks_emulator,
        "CALSYNC_CALENDAR_API_ENDPOINT": f"{calendar_emulator_server}/calendar/v3/",
        "CALSYNC_CALENDAR_BATCH_URI": f"{calendar_emulator_server}/batch/calendar/v3",
        "CALSYNC_TOKEN_URI": f"{calendar_emulator_server}/token",
        "CALSYNC_CALENDAR_CREDENTIALS": "anonymous",
        "CALSYNC_SECRETS_BACKEND": "env",
        "CALSYNC_ADMIN_TOKEN": "e2e-admin-token-not-a-secret",
        "CALSYNC_DEBOUNCE_S": str(DEBOUNCE_S),
        # Every channel counts as "near expiry", so one renew call exercises a replacement.
        "CALSYNC_RENEW_MARGIN_S": str(10 * 365 * 86400),
        # Renewal always fans out: the job enqueues per-calendar tasks that call the renew function back.
        "CALSYNC_RENEW_INLINE_MAX": "0",
        "CALSYNC_RETRY_MAX_TOTAL_S": "5",
        "FIRESTORE_EMULATOR_HOST": firestore_emulator,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PYTHONUNBUFFERED": "1",
    }
    servers = []
    try:
        for name, port in ports.items():
            servers.append(procs.start_function(name, port, server_logs, env))
        yield PushStack(
            calendar_emulator_server, urls["webhook"], urls["sync"], urls["renew"], queue_name, tasks_emulator
        )
    finally:
        for server in servers:
            server.stop()


@dataclass
class World:
    """One test's wiring: the calendar under test and in-process ports on the same emulators."""

    stack: PushStack
    store: FirestoreStateStore
    api: GoogleCalendarApi
    queue: CloudTasksQueue
    gcal: str
    event_id: str

    def config(self) -> ChannelConfig:
        return ChannelConfig(
            webhook_url=self.stack.webhook,
            channel_ttl_s=7 * 86400,
            renew_margin_s=86400,
            sync_queue=self.stack.queue_name,
            sync_url=self.stack.sync,
        )

    def open_channel(self) -> str:
        record = open_channel(KEY, api=self.api, store=self.store, queue=self.queue, clock=CLOCK, config=self.config())
        return record.channel_id

    def mirror(self) -> MirrorEvent | None:
        return self.store.get_events(KEY, [self.event_id]).get(self.event_id)

    def list_calls(self) -> int:
        stats = requests.get(f"{self.stack.calendar}/_emulator/stats", timeout=10).json()
        return int(stats["methods"].get("calendar.events.list", 0))

    def push_mode(self, mode: str, rate: float = 1.0) -> None:
        requests.post(f"{self.stack.calendar}/_emulator/push", json={"mode": mode, "rate": rate}, timeout=10)

    def person_moves_event(self, minutes: int) -> datetime:
        """A person drags the event in Google; returns its new start."""
        current = self.api.get_event(self.gcal, self.event_id)
        assert current.start is not None
        assert current.start.date_time is not None
        start = current.start.date_time + timedelta(minutes=minutes)
        body = current.to_api()
        body["start"] = {"dateTime": start.isoformat()}
        body["end"] = {"dateTime": (start + timedelta(hours=1)).isoformat()}
        self.api.update_event(self.gcal, self.event_id, body)
        return start.astimezone(UTC)


def wait_for(condition: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def world(push_stack: PushStack, firestore_client: firestore.Client, calendar_base: str) -> Iterator[World]:
    store = FirestoreStateStore(firestore_client, environment="dev")
    api = GoogleCalendarApi.for_emulator(calendar_base)
    queue = CloudTasksQueue.for_emulator(push_stack.tasks_host, PROJECT, REGION)
    gcal = api.insert_calendar("Room 1", time_zone="America/Sao_Paulo")
    start = (CLOCK.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    body = {
        "summary": "allocation",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        "extendedProperties": {
            "private": {"source": "agendador", "env": "dev", "allocation_id": "alloc-1", "calsync_schema": "1"}
        },
    }
    event = api.insert_event(gcal, body)
    store.put_calendar(CalendarRecord(key=KEY, google_calendar_id=gcal, kind="room"))
    # What calsync published: the sync recognises this version as its own echo.
    store.put_events(
        [
            MirrorEvent(
                calendar_key=KEY,
                external_id=event.id,
                google_calendar_id=gcal,
                etag=event.etag,
                start=start,
                end=start + timedelta(hours=1),
                origin="system",
                source_of_truth="backend",
                allocation_id="alloc-1",
                env="dev",
                published=PublishedSnapshot(
                    etag=event.etag, start=start, end=start + timedelta(hours=1), published_at=CLOCK.now()
                ),
            )
        ]
    )
    yield World(push_stack, store, api, queue, gcal, event.id)
    queue.close()


def _initial_sync_done(world: World) -> None:
    wait_for(lambda: (c := world.store.get_calendar(KEY)) and c.sync_token, what="initial sync")


def test_person_edit_reaches_mirror_through_push_and_records_conflict(world: World) -> None:
    channel_id = world.open_channel()
    _initial_sync_done(world)
    # (The emulator's "sync" message may race the channel's persistence, as Google's may: not asserted.)

    before = world.list_calls()
    edited_at = time.monotonic()
    new_start = world.person_moves_event(90)
    wait_for(lambda: (m := world.mirror()) and m.start == new_start, what="mirror update")
    channel = world.store.get_channel(channel_id)
    assert channel is not None
    assert channel.last_webhook_at is not None  # the "exists" notification was recorded
    assert channel.last_enqueued_bucket is not None
    latency_s = time.monotonic() - edited_at
    print(f"\nedit→mirror latency: {latency_s:.2f} s (debounce bucket {DEBOUNCE_S} s)")

    mirror = world.mirror()
    assert mirror is not None
    assert mirror.source_of_truth == "google"
    conflicts, _ = world.store.list_conflicts(ConflictQuery(KEY, status="open", page_size=10, page_token=None))
    assert [(c.kind, c.event_id) for c in conflicts] == [("moved_in_google", world.event_id)]
    time.sleep(DEBOUNCE_S + 1)
    assert world.list_calls() - before == 1  # one push → one task → one incremental listing


def test_duplicate_pushes_give_one_sync_per_bucket(world: World) -> None:
    world.open_channel()
    _initial_sync_done(world)
    world.push_mode("duplicate")
    before = world.list_calls()
    new_start = world.person_moves_event(30)
    wait_for(lambda: (m := world.mirror()) and m.start == new_start, what="mirror update")
    time.sleep(DEBOUNCE_S + 1)
    stats = requests.get(f"{world.stack.calendar}/_emulator/stats", timeout=10).json()
    assert stats["push"]["duplicated"] >= 1
    assert world.list_calls() - before == 1


def test_dropped_push_is_picked_up_by_the_next_poll(world: World) -> None:
    world.open_channel()
    _initial_sync_done(world)
    world.push_mode("drop")
    new_start = world.person_moves_event(45)
    time.sleep(DEBOUNCE_S + 1)
    assert world.mirror().start != new_start  # type: ignore[union-attr]  # nothing arrived
    # An hour passes without a good sync: the poll's staleness rule selects the calendar.
    world.store.update_calendar(KEY, {"last_synced_at": CLOCK.now() - timedelta(hours=2)})
    answer = requests.post(world.stack.renew, json={"job": "poll"}, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["enqueued"] == 1
    wait_for(lambda: (m := world.mirror()) and m.start == new_start, what="poll sync")


def test_bad_token_unknown_and_replaced_channels(world: World) -> None:
    channel_id = world.open_channel()
    _initial_sync_done(world)
    channel = world.store.get_channel(channel_id)
    assert channel is not None
    headers = {
        "X-Goog-Channel-ID": channel_id,
        "X-Goog-Channel-Token": "not-the-nonce",
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "999",
    }
    before = world.list_calls()
    started = time.monotonic()
    assert requests.post(world.stack.webhook, headers=headers, timeout=10).status_code == 403
    print(f"\nwebhook 403 answered in {(time.monotonic() - started) * 1000:.0f} ms")
    unknown = {**headers, "X-Goog-Channel-ID": "ffff" * 8}
    assert requests.post(world.stack.webhook, headers=unknown, timeout=10).status_code == 403
    # A channel renewal replaced (its nonce known here): Google's late notifications get 200, no work.
    world.store.put_channel(channel.model_copy(update={"status": "replaced", "token_hash": hash_token("known")}))
    late = {**headers, "X-Goog-Channel-Token": "known"}
    assert requests.post(world.stack.webhook, headers=late, timeout=10).status_code == 200
    time.sleep(DEBOUNCE_S + 1)
    assert world.list_calls() == before  # nothing was synced
    assert world.store.get_channel(channel_id).last_message_number == channel.last_message_number  # type: ignore[union-attr]


def test_renewal_replaces_channel_and_failed_watch_is_polled(world: World) -> None:
    old_id = world.open_channel()
    _initial_sync_done(world)
    answer = requests.post(world.stack.renew, json={"job": "renew"}, timeout=60)
    assert answer.status_code == 200, answer.text
    renewal = RenewRun.model_validate(answer.json())
    assert (renewal.due, renewal.fanned_out, renewal.enqueued) == (1, True, 1)
    old = wait_for(lambda: (c := world.store.get_channel(old_id)) and c.status == "replaced" and c, what="renewal")
    [new] = world.store.list_active_channels()
    assert old.replaced_by == new.channel_id
    google = {
        c["id"]: c for c in requests.get(f"{world.stack.calendar}/_emulator/channels", timeout=10).json()["channels"]
    }
    assert google[new.channel_id]["active"]
    assert not google[old_id]["active"]

    # The replacement is live: a person's edit still arrives by push.
    new_start = world.person_moves_event(15)
    wait_for(lambda: (m := world.mirror()) and m.start == new_start, what="push on the new channel")

    # An injected watch failure: webhook_expired, the old channel kept; the next poll syncs the calendar.
    fault = {"method": "POST", "path": "/events/watch", "status": 403, "reason": "forbidden", "count": 5}
    requests.post(f"{world.stack.calendar}/_emulator/faults", json=fault, timeout=10).raise_for_status()
    # Same task name as the first run (per calendar and hour): Cloud Tasks would refuse it as already
    # queued; the emulator does not deduplicate names, so here it runs again, as a later run would.
    answer = requests.post(world.stack.renew, json={"job": "renew"}, timeout=60)
    assert answer.json()["due"] == 1
    calendar = wait_for(
        lambda: (c := world.store.get_calendar(KEY)) and c.status == "webhook_expired" and c, what="failed watch"
    )
    assert calendar.error_message == "forbidden (HTTP 403 forbidden)"
    assert [c.channel_id for c in world.store.list_active_channels()] == [new.channel_id]
    requests.delete(f"{world.stack.calendar}/_emulator/faults", timeout=10)
    world.push_mode("drop")
    moved = world.person_moves_event(15)
    answer = requests.post(world.stack.renew, json={"job": "poll"}, timeout=30)
    assert answer.json()["enqueued"] == 1
    wait_for(lambda: (m := world.mirror()) and m.start == moved, what="poll sync of webhook_expired calendar")
