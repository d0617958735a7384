"""The sync engine end to end on the real clients: GoogleCalendarApi → Calendar emulator, and
FirestoreStateStore → Google's Firestore emulator. Figures (list calls, mirror reads/writes) are
printed with ``-s`` and asserted where the issue fixes them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.oauth2.credentials import Credentials

from calsync import errors
from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.adapters.google_calendar import GoogleCalendarApi, RetryPolicy
from calsync.bootstrap import sync_config
from calsync.model import CalendarRecord, GoogleEvent, MirrorEvent, PublishedSnapshot
from calsync.ports import BatchOp, CalendarApi, ListEvents
from calsync.ports.queries import ConflictQuery, MirrorQuery
from calsync.services.sync import SyncCommand, SyncConfig, SyncSummary, sync_calendar
from calsync.testing import CountingStore, RecordingTaskQueue
from calsync.testing.settings import local_settings
from tests.integration.calendar_emulator.helpers import calendar

KEY = "room-1"
LIST = "GET /calendar/v3/calendars/{calendarId}/events"
CONFIG = sync_config(local_settings(lock_lease_s=60, display_time_zone="UTC"))


class ShiftClock:
    """The real clock plus an offset tests can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        """Now, shifted."""
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        """Move the offset forward."""
        self.offset += timedelta(seconds=seconds)


class Sleeps:
    """Records backoff waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class Env:
    base: str
    api: GoogleCalendarApi
    seeder: GoogleCalendarApi
    store: CountingStore
    firestore: FirestoreStateStore
    queue: RecordingTaskQueue
    clock: ShiftClock
    sleeps: Sleeps
    cal: str

    def control(self, path: str, body: Any = None, method: str = "POST") -> Any:
        response = requests.request(method, f"{self.base}/_emulator/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def list_calls(self) -> int:
        return int(self.control("stats", method="GET")["requests"].get(LIST, 0))

    def reset_counts(self) -> None:
        self.control("stats/reset")
        self.store.reset()

    def sync(
        self,
        *,
        api: CalendarApi | None = None,
        config: SyncConfig = CONFIG,
        holder: str | None = None,
        reason: str = "poll",
    ) -> SyncSummary:
        return sync_calendar(
            SyncCommand(calendar_key=KEY, reason=reason),  # type: ignore[arg-type]
            api=api or self.api,
            store=self.store,
            queue=self.queue,
            clock=self.clock,
            config=config,  # type: ignore[arg-type]
            holder=holder,
        )

    def event(
        self,
        event_id: str,
        hours: float,
        *,
        allocation: str | None = None,
        env: str = "dev",
        attendees: list[str] | None = None,
    ) -> dict[str, Any]:
        start = self.clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=1, hours=hours)
        body: dict[str, Any] = {
            "id": event_id,
            "summary": f"consulta {event_id}",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        }
        if attendees:
            body["attendees"] = [{"email": a} for a in attendees]
        if allocation:
            body["extendedProperties"] = {
                "private": {"source": "agendador", "env": env, "allocation_id": allocation, "calsync_schema": "1"}
            }
        return body

    def seed(self, bodies: list[dict[str, Any]]) -> None:
        results = self.seeder.execute_batch([BatchOp(kind="insert", calendar_id=self.cal, body=b) for b in bodies])
        assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]

    def google_state(self) -> dict[str, str]:
        """id → etag of the live events Google lists in the window."""
        state: dict[str, str] = {}
        token = None
        now = self.clock.now()
        while True:
            page = self.seeder.list_events(
                ListEvents(
                    self.cal, page_token=token, time_min=now - timedelta(days=45), time_max=now + timedelta(days=180)
                )
            )
            state.update({e.id: e.etag or "" for e in page.items})
            token = page.next_page_token
            if token is None:
                return state

    def mirror_state(self) -> dict[str, str]:
        """id → etag of the live mirror events."""
        state: dict[str, str] = {}
        token = None
        while True:
            page, token = self.firestore.list_mirror_events(
                MirrorQuery(KEY, time_min=None, time_max=None, page_size=500, page_token=token)
            )
            state.update({e.external_id: e.etag or "" for e in page})
            if token is None:
                return state


@pytest.fixture
def env(calendar_base: str, firestore_client: Any) -> Env:
    requests.post(
        f"{calendar_base}/_emulator/quota",
        json={"per_user_per_minute": 1_000_000, "per_project_per_minute": 1_000_000},
        timeout=10,
    )
    sleeps = Sleeps()
    api = GoogleCalendarApi.for_emulator(calendar_base, retry=RetryPolicy(max_attempts=6, sleep=sleeps))
    seeder = GoogleCalendarApi.for_emulator(calendar_base, batch_size=1000, retry=RetryPolicy(sleep=sleeps))
    firestore = FirestoreStateStore(firestore_client, environment="dev")
    store = CountingStore(firestore)
    cal = seeder.insert_calendar("Sala 1", time_zone="UTC")
    firestore.put_calendar(CalendarRecord(key=KEY, google_calendar_id=cal, kind="room"))
    return Env(calendar_base, api, seeder, store, firestore, RecordingTaskQueue(), ShiftClock(), sleeps, cal)


def test_full_sync_of_10000_events_then_idle_then_100_changes(env: Env) -> None:
    started = time.monotonic()
    bodies = [env.event(f"ev{i:05d}", (i % 4000) * 0.05) for i in range(10_000)]
    # The emulator's seed endpoint inserts through the same store code as events.insert, in one request.
    assert len(env.control("seed", {"calendarId": env.cal, "events": bodies})["ids"]) == 10_000
    seeded = time.monotonic()
    env.reset_counts()
    full = env.sync()
    full_s = time.monotonic() - seeded
    figures = {"full": (env.list_calls(), dict(env.store.counts), round(full_s, 1))}
    assert (full.mode, full.fetched, full.written) == ("full", 10_000, 10_000)
    assert env.list_calls() == 4
    assert env.store.counts["mirror_writes"] == 10_000

    env.reset_counts()
    idle = env.sync()
    figures["idle"] = (env.list_calls(), dict(env.store.counts), 0)
    assert (idle.mode, idle.written) == ("incremental", 0)
    assert env.list_calls() == 1
    assert env.store.counts["mirror_writes"] == 0

    changed = [f"ev{i:05d}" for i in range(0, 10_000, 100)]
    ops = [
        BatchOp(kind="update", calendar_id=env.cal, event_id=i, body={**bodies[int(i[2:])], "summary": "moved"})
        for i in changed
    ]
    assert all(r.ok for r in env.seeder.execute_batch(ops))
    env.reset_counts()
    t0 = time.monotonic()
    delta = env.sync()
    figures["delta"] = (env.list_calls(), dict(env.store.counts), round(time.monotonic() - t0, 2))
    assert (delta.mode, delta.fetched, delta.written) == ("incremental", 100, 100)
    assert env.list_calls() == 1
    assert env.store.counts["mirror_writes"] == 100
    assert sorted(env.store.read_ids) == changed  # mirror reads only of the changed ids
    print(f"\n10k figures (list calls, store counts, seconds): {figures}; seed {seeded - started:.1f}s")


def test_expired_token_one_full_listing_and_deletions_reach_the_mirror(env: Env) -> None:
    env.seed([env.event(f"ev{i:05d}", i) for i in range(30)])
    env.sync()
    for event_id in ("ev00003", "ev00017", "ev00029"):
        env.seeder.delete_event(env.cal, event_id)
    env.control("sync-tokens/expire", {"calendarId": env.cal})
    env.reset_counts()
    summary = env.sync()
    print(f"\n410 figures: list calls {env.list_calls()}, summary {summary.to_dict()}")
    assert env.list_calls() == 2  # the refused incremental + exactly one full listing (one page)
    assert (summary.mode, summary.tombstoned) == ("full", 3)
    mirror = env.firestore.get_events(KEY, ["ev00003", "ev00017", "ev00029", "ev00004"])
    assert [mirror[i].status for i in ("ev00003", "ev00017", "ev00029", "ev00004")] == [
        "cancelled",
        "cancelled",
        "cancelled",
        "confirmed",
    ]
    assert env.mirror_state() == env.google_state()


@pytest.mark.parametrize(
    ("status", "reason"), [(503, "backendError"), (429, "rateLimitExceeded"), (403, "rateLimitExceeded")]
)
def test_transient_and_rate_faults_are_retried_with_backoff(env: Env, status: int, reason: str) -> None:
    env.seed([env.event(f"ev{i:05d}", i) for i in range(5)])
    env.control(
        "faults",
        {
            "method": "GET",
            "path": r"/calendars/.*/events$",
            "status": status,
            "reason": reason,
            "count": 2,
            "retry_after_s": 1 if status == 429 else None,
        },
    )
    summary = env.sync()
    assert (summary.status, summary.written) == ("ok", 5)
    assert len(env.sleeps.waits) == 2
    assert env.mirror_state() == env.google_state()


def test_forbidden_is_final_and_revoked_token_needs_reauth(env: Env) -> None:
    env.control(
        "faults", {"method": "GET", "path": r"/calendars/.*/events$", "status": 403, "reason": "forbidden", "count": 5}
    )
    env.reset_counts()
    summary = env.sync()
    assert summary.status == "error"
    assert env.list_calls() == 1  # not retried
    record = env.firestore.get_calendar(KEY)
    assert record is not None
    assert (record.status, record.error_message) == ("error", "forbidden (HTTP 403 forbidden)")
    env.control("faults", method="DELETE")

    refresh_token = "rt:owner@clinic.example:1"
    credentials = Credentials(
        token=None,
        refresh_token=refresh_token,
        client_id="c",
        client_secret="s",  # type: ignore[no-untyped-call]
        token_uri=f"{env.base}/token",
    )
    user_api = GoogleCalendarApi(
        credentials,
        api_endpoint=f"{env.base}/calendar/v3/",
        batch_uri=f"{env.base}/batch/calendar/v3",
        retry=RetryPolicy(sleep=env.sleeps),
    )
    env.control("revoke", {"refresh_token": refresh_token})
    waits_before = len(env.sleeps.waits)
    assert env.sync(api=user_api).status == "needs_reauth"
    assert env.firestore.get_calendar(KEY).status == "needs_reauth"  # type: ignore[union-attr]
    assert len(env.sleeps.waits) == waits_before  # no retry storm


class HookedApi:
    """The real adapter, with a hook run before each events.list (to interleave concurrent work)."""

    def __init__(self, inner: GoogleCalendarApi, hook: Any) -> None:
        self.inner, self.hook, self.calls = inner, hook, 0

    def list_events(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.hook(self.calls)
        return self.inner.list_events(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_two_concurrent_syncs_one_lists_other_marks_pending(env: Env) -> None:
    env.seed([env.event(f"ev{i:05d}", i) for i in range(5)])
    env.sync()
    second: list[SyncSummary] = []
    edited: list[GoogleEvent] = []

    def during_first_pass(call: int) -> None:
        if call == 1:
            thread = threading.Thread(target=lambda: second.append(env.sync(holder="second")))
            thread.start()
            thread.join()
            edited.append(
                env.seeder.update_event(env.cal, "ev00002", {**env.event("ev00002", 2), "summary": "edited meanwhile"})
            )

    env.reset_counts()
    first = env.sync(api=HookedApi(env.api, during_first_pass), holder="first")  # type: ignore[arg-type]
    assert second[0].mode == "skipped"
    assert first.pages == 2  # its pass, then one more for the pending trigger
    assert env.list_calls() == 2  # only the holder listed
    # The edit made meanwhile is mirrored (a person's event: its etag, never its title).
    assert env.firestore.get_events(KEY, ["ev00002"])["ev00002"].etag == edited[0].etag


def publish(env: Env, body: dict[str, Any]) -> None:
    """What the publisher does: insert, then remember the published snapshot in the mirror."""
    created = env.seeder.insert_event(env.cal, body)
    start = created.start.as_utc() if created.start else None
    end = created.end.as_utc() if created.end else None
    snapshot = PublishedSnapshot(
        etag=created.etag, start=start, end=end, attendees=sorted(a.email or "" for a in created.attendees or [])
    )
    env.firestore.put_events(
        [
            MirrorEvent(
                calendar_key=KEY,
                external_id=created.id,
                google_calendar_id=env.cal,
                start=start,
                end=end,
                origin="system",
                source_of_truth="backend",
                allocation_id=body["extendedProperties"]["private"]["allocation_id"],
                env="dev",
                published=snapshot,
            )
        ]
    )


def test_each_conflict_kind_once_across_three_syncs(env: Env) -> None:
    publish(env, env.event("evmove01", 0, allocation="a1"))
    publish(env, env.event("evdel001", 3, allocation="a2"))
    publish(env, env.event("evatt001", 6, allocation="a3"))
    publish(env, env.event("evover01", 9, allocation="a4"))
    env.seeder.insert_event(env.cal, env.event("prodev01", 12, allocation="p1", env="prod"))
    assert env.sync().conflicts_opened == 0  # our own writes: no conflict
    env.seeder.update_event(env.cal, "evmove01", env.event("evmove01", 1, allocation="a1"))
    env.seeder.delete_event(env.cal, "evdel001")
    # A person (not the service account, which needs domain-wide delegation for guests) adds a guest.
    env.seeder.insert_acl(env.cal, email="owner@clinic.example", role="owner")
    person = calendar(env.base, user="owner@clinic.example")
    person.events().update(
        calendarId=env.cal,
        eventId="evatt001",
        body=env.event("evatt001", 6, allocation="a3", attendees=["x@y.example"]),
    ).execute()
    env.seeder.insert_event(env.cal, env.event("manual01", 9.5))
    writes_before = env.control("stats", method="GET")["methods"]
    opened = [env.sync().conflicts_opened for _ in range(3)]
    assert opened == [4, 0, 0]
    conflicts, _ = env.firestore.list_conflicts(ConflictQuery(KEY, status="open", page_size=50, page_token=None))
    assert sorted(c.kind for c in conflicts) == [
        "attendees_changed",
        "deleted_in_google",
        "moved_in_google",
        "overlap_manual",
    ]
    moved = next(c for c in conflicts if c.kind == "moved_in_google")
    assert moved.suggestion.startswith("move allocation a1 to ")
    mirror = env.firestore.get_events(KEY, ["manual01", "prodev01", "evmove01"])
    assert mirror["manual01"].origin == "manual"
    assert "prodev01" not in mirror  # another environment's event: never touched
    assert mirror["evmove01"].source_of_truth == "google"
    methods = env.control("stats", method="GET")["methods"]
    for write in ("calendar.events.insert", "calendar.events.update", "calendar.events.delete"):
        assert methods.get(write, 0) == writes_before.get(write, 0)  # the sync never writes to Google
    env.seeder.update_event(env.cal, "evmove01", env.event("evmove01", 0, allocation="a1"))
    assert env.sync().conflicts_resolved == 1  # divergence gone → resolved


class Crash(BaseException):
    """The process dies (no cleanup runs)."""


def test_crash_between_pages_converges(env: Env) -> None:
    env.seed([env.event(f"ev{i:05d}", i) for i in range(10)])
    small = GoogleCalendarApi.for_emulator(env.base, page_size=3, retry=RetryPolicy(sleep=env.sleeps))

    def crash(call: int) -> None:
        if call == 3:
            raise Crash

    with pytest.raises(Crash):
        env.sync(api=HookedApi(small, crash))  # type: ignore[arg-type]
    assert len(env.mirror_state()) == 6  # two pages landed
    env.seeder.delete_event(env.cal, "ev00001")  # the world moves on meanwhile
    assert env.sync(api=small).mode == "skipped"  # the dead run's lease
    env.clock.advance(CONFIG.lock_lease_s + 1)
    env.sync(api=small)
    assert env.mirror_state() == env.google_state()
    env.firestore.delete_sync_cursor(KEY)
    assert env.sync(api=small).written == 0


def test_budget_continuation_task_resumes_and_converges(env: Env) -> None:
    env.seed([env.event(f"ev{i:05d}", i) for i in range(10)])
    small = GoogleCalendarApi.for_emulator(env.base, page_size=3, retry=RetryPolicy(sleep=env.sleeps))
    slow = HookedApi(small, lambda _: env.clock.advance(40))
    config = replace(CONFIG, run_budget_s=70)
    first = env.sync(api=slow, config=config)  # type: ignore[arg-type]
    assert first.continued
    tasks = env.queue.pop_all()
    assert [t.payload["reason"] for t in tasks] == ["continuation"]
    assert env.firestore.get_sync_cursor(KEY) is not None
    second = env.sync(api=small, config=config, reason="continuation")
    assert not second.continued
    assert env.firestore.get_sync_cursor(KEY) is None
    assert env.mirror_state() == env.google_state()
    assert env.firestore.get_calendar(KEY).sync_token is not None  # type: ignore[union-attr]


def test_a_holder_whose_lease_was_taken_over_writes_neither_mirror_nor_token(env: Env) -> None:
    """The stale run's next page is refused at its renewal: only what it merged while holding the lease landed."""
    env.seed([env.event(f"ev{i:05d}", i) for i in range(9)])
    small = GoogleCalendarApi.for_emulator(env.base, page_size=3, retry=RetryPolicy(sleep=env.sleeps))

    def stall_then_takeover(call: int) -> None:
        if call == 2:  # the second page takes longer than the lease; another run takes the calendar
            env.clock.advance(CONFIG.lock_lease_s + 1)
            assert env.firestore.acquire_lock(KEY, "newer", lease_s=CONFIG.lock_lease_s, now=env.clock.now())

    with pytest.raises(errors.LeaseLost):
        env.sync(api=HookedApi(small, stall_then_takeover), holder="older")  # type: ignore[arg-type]
    assert len(env.mirror_state()) == 3  # the first page only
    record = env.firestore.get_calendar(KEY)
    assert record is not None
    assert record.sync_token is None
    assert env.firestore.get_sync_cursor(KEY) is None
    assert not env.firestore.renew_lock(KEY, "older", lease_s=CONFIG.lock_lease_s, now=env.clock.now())
    env.sync(api=small, holder="newer")
    assert env.mirror_state() == env.google_state()


class TakeoverBeforeCommit:
    """The store, with another run taking the lease over just before the sync's token write."""

    def __init__(self, env: Env) -> None:
        self.env, self.reads = env, 0

    def get_calendar(self, key: str) -> CalendarRecord | None:
        self.reads += 1
        if self.reads == 2:  # the re-read right before the token is committed
            self.env.clock.advance(CONFIG.lock_lease_s + 1)
            assert self.env.firestore.acquire_lock(KEY, "newer", lease_s=60, now=self.env.clock.now())
        return self.env.firestore.get_calendar(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env.firestore, name)


def test_the_token_write_of_a_holder_that_lost_its_lease_is_refused(env: Env) -> None:
    env.seed([env.event(f"ev{i:05d}", i) for i in range(3)])
    env.sync()
    before = env.firestore.get_calendar(KEY)
    assert before is not None
    assert before.sync_token is not None
    env.seeder.update_event(env.cal, "ev00001", {**env.event("ev00001", 1), "summary": "edited"})
    with pytest.raises(errors.LeaseLost):
        sync_calendar(
            SyncCommand(calendar_key=KEY, reason="poll"),
            api=env.api,
            store=TakeoverBeforeCommit(env),  # type: ignore[arg-type]
            queue=env.queue,
            clock=env.clock,
            config=CONFIG,
            holder="older",
        )
    after = env.firestore.get_calendar(KEY)
    assert after is not None
    assert (after.sync_token, after.counters) == (before.sync_token, before.counters)  # nothing moved
    assert env.firestore.renew_lock(KEY, "newer", lease_s=60, now=env.clock.now())  # still the newer run's
    assert env.sync(holder="newer").mode == "incremental"
    moved = env.firestore.get_calendar(KEY)
    assert moved is not None
    assert moved.sync_token != before.sync_token
