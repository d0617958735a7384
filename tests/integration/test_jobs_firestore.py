"""The poll and renew jobs on Google's Firestore emulator: their queries read only the due documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from calsync.adapters.firestore_store import FirestoreStateStore
from calsync.bootstrap import jobs_config
from calsync.model import CalendarRecord, ChannelRecord
from calsync.services.maintenance import run_poll, run_renew
from calsync.testing import FrozenClock, ReadCountingStore, RecordingTaskQueue
from calsync.testing.settings import local_settings

N = 200
JOBS = jobs_config(
    local_settings(
        renew_url="http://renew.local/",
        renew_inline_max=0,
        poll_limit=5,
    )
)
CHANNEL = JOBS.channel


def test_poll_and_renew_read_only_what_is_due(firestore_client: Any) -> None:
    clock = FrozenClock()
    now = clock.now()
    firestore = FirestoreStateStore(firestore_client, environment="dev")
    for i in range(N):
        key = f"k{i:03d}"
        stale = i % 25 == 0  # 8 calendars last synced two hours ago
        synced = now - (timedelta(hours=2) if stale else timedelta(minutes=5))
        firestore.put_calendar(
            CalendarRecord(key=key, google_calendar_id=f"{key}@g", kind="room", last_synced_at=synced)
        )
        expiring = i % 100 == 7  # 2 channels expiring within the one-day margin
        expiration = now + (timedelta(hours=20) if expiring else timedelta(days=6))
        firestore.put_channel(
            ChannelRecord(
                channel_id=f"ch{i:03d}",
                calendar_key=key,
                resource_id="r",
                token_hash="h",
                created_at=now,
                expiration=expiration,
            )
        )
    firestore.update_calendar("k001", {"status": "webhook_expired"})
    store = ReadCountingStore(firestore)
    queue = RecordingTaskQueue()

    polled = run_poll(store=store, queue=queue, clock=clock, config=JOBS)
    due = {f"k{i:03d}" for i in range(0, N, 25)} | {"k001"}
    assert {t.payload["calendar_id"] for t in queue.pop_all()} == due
    assert (polled.due, polled.pages) == (9, 3)  # pages of 5: [5, 3] stale, [1] webhook_expired
    assert store.counts["documents"] == 9
    assert store.counts["billed"] == 9

    store.reset()
    renewed = run_renew(api=None, store=store, queue=queue, clock=clock, config=JOBS)  # type: ignore[arg-type]
    assert {t.payload["calendar_id"] for t in queue.pop_all()} == {"k007", "k107", "k001"}
    assert (renewed.due, renewed.enqueued) == (3, 3)
    assert store.counts["documents"] == 3  # 2 expiring channels, 1 webhook_expired calendar
