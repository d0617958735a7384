"""Races between the sync and the publish apply on one mirror document (found by chaos).

1. The sync reads a page's mirror documents, classifies, then writes them. When the publish apply
   records its snapshot (``published``) between that read and that write, the sync must not put back
   what it read: it merge-writes what it observed and never the snapshot.
2. A sync that runs between the apply's Google write and its mirror write compares our own new
   version with the old snapshot and opens a conflict. The apply resolves event conflicts of events
   whose mirror holds exactly what it wrote; the sync re-reads snapshots after opening conflicts,
   which covers the opposite order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from calsync.model import MirrorEvent, PublishedSnapshot
from calsync.services.classify import conflict_id
from calsync.services.reconcile import record_written
from tests.unit.sync_helpers import GCAL, KEY, World, event_body, publish


class ApplyLandsAfterRead:
    """A state store whose first ``get_events`` is followed at once by another writer's write."""

    def __init__(self, inner: Any, after_read: Callable[[], None]) -> None:
        self.inner = inner
        self.after_read: Callable[[], None] | None = after_read

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_events(self, calendar_key: str, event_ids: Any) -> dict[str, MirrorEvent]:
        found: dict[str, MirrorEvent] = self.inner.get_events(calendar_key, event_ids)
        if self.after_read is not None:
            write, self.after_read = self.after_read, None
            write()
        return found


def test_snapshot_written_during_a_sync_survives_and_a_later_move_is_a_conflict() -> None:
    world = World()
    start = world.clock.now() + timedelta(days=1)
    created = world.api.insert_event(GCAL, event_body("s0s00001", start, allocation="a1"))  # apply's batch

    def apply_writes_mirror() -> None:
        snapshot = PublishedSnapshot(
            etag=created.etag, start=start, end=start + timedelta(hours=1), published_at=world.clock.now()
        )
        world.store.put_events(
            [
                MirrorEvent(
                    calendar_key=KEY,
                    external_id="s0s00001",
                    google_calendar_id=GCAL,
                    etag=created.etag,
                    start=start,
                    end=start + timedelta(hours=1),
                    origin="system",
                    source_of_truth="backend",
                    allocation_id="a1",
                    env="dev",
                    published=snapshot,
                )
            ]
        )

    inner = world.store
    world.store = ApplyLandsAfterRead(inner, apply_writes_mirror)  # type: ignore[assignment]
    world.sync()  # lists the event, reads the mirror (empty), the apply writes, the sync writes
    world.store = inner
    assert world.mirror()["s0s00001"].published is not None
    moved = event_body("s0s00001", start + timedelta(hours=2), allocation="a1")
    world.api.person_edit(GCAL, "s0s00001", start=moved["start"], end=moved["end"])
    world.sync()
    assert world.store.conflicts[conflict_id(KEY, "s0s00001", "moved_in_google")].status == "open"


def test_our_own_update_seen_before_the_apply_records_it_leaves_no_open_conflict() -> None:
    """Chaos seeds 9, 13, 21, 32: a crash after the batch (or just a fast push) opens a false conflict.

    The apply's batch moved the event in Google; before the apply writes its new snapshot, a sync sees
    the new version against the old snapshot and opens ``moved_in_google``. The apply then records
    the snapshot; the next sync finds the event unchanged, so the false conflict stays open forever.
    """
    world = World()
    start = world.clock.now() + timedelta(days=1)
    publish(world.api, world.store, event_body("s0s00001", start, allocation="a1"), world.clock)
    world.sync()
    moved = event_body("s0s00001", start + timedelta(hours=2), allocation="a1")
    updated = world.api.update_event(GCAL, "s0s00001", moved)  # the apply's batch reached Google ...
    world.sync()  # ... and a push-triggered sync runs before the apply writes the mirror
    current = world.mirror()["s0s00001"]
    snapshot = PublishedSnapshot(
        etag=updated.etag,
        start=start + timedelta(hours=2),
        end=start + timedelta(hours=3),
        published_at=world.clock.now(),
    )
    record_written(  # how ChunkRunner records its batch's writes
        world.store,
        [current.model_copy(update={"etag": updated.etag, "source_of_truth": "backend", "published": snapshot})],
        calendar_key=KEY,
        now=world.clock.now(),
    )
    world.sync()
    assert world.store.conflicts[conflict_id(KEY, "s0s00001", "moved_in_google")].status == "resolved"


def test_apply_recording_between_the_syncs_read_and_its_conflict_write_leaves_no_conflict() -> None:
    """The other order of race 2: the sync read the old snapshot, the apply records before the sync writes."""
    world = World()
    start = world.clock.now() + timedelta(days=1)
    publish(world.api, world.store, event_body("s0s00001", start, allocation="a1"), world.clock)
    world.sync()
    moved = event_body("s0s00001", start + timedelta(hours=2), allocation="a1")
    updated = world.api.update_event(GCAL, "s0s00001", moved)  # the apply's batch reached Google

    def apply_records() -> None:
        current = world.store.get_events(KEY, ["s0s00001"])["s0s00001"]
        snapshot = PublishedSnapshot(
            etag=updated.etag,
            start=start + timedelta(hours=2),
            end=start + timedelta(hours=3),
            published_at=world.clock.now(),
        )
        record_written(
            world.store,
            [current.model_copy(update={"etag": updated.etag, "published": snapshot})],
            calendar_key=KEY,
            now=world.clock.now(),
        )

    inner = world.store
    world.store = ApplyLandsAfterRead(inner, apply_records)  # type: ignore[assignment]
    world.sync()  # reads the old snapshot, the apply records, the sync classifies against what it read
    world.store = inner
    conflict = world.store.conflicts.get(conflict_id(KEY, "s0s00001", "moved_in_google"))
    assert conflict is None or conflict.status == "resolved"
    assert world.mirror()["s0s00001"].published is not None
    assert world.mirror()["s0s00001"].published.etag == updated.etag  # type: ignore[union-attr]


def test_our_own_deletion_seen_before_the_apply_records_it_leaves_no_open_conflict() -> None:
    """Chaos seeds 1, 22, 55: the apply's delete reached Google, a sync saw it, then the apply recorded it."""
    world = World()
    start = world.clock.now() + timedelta(days=1)
    publish(world.api, world.store, event_body("s0s00001", start, allocation="a1"), world.clock)
    world.sync()
    world.api.delete_event(GCAL, "s0s00001")  # the apply's batch deleted it (then the task crashed)
    world.sync()  # a push-triggered sync sees the deletion against the confirmed snapshot
    cid = conflict_id(KEY, "s0s00001", "deleted_in_google")
    assert world.store.conflicts[cid].status == "open"
    current = world.mirror()["s0s00001"]
    assert current.published is not None
    snapshot = current.published.model_copy(update={"status": "cancelled", "published_at": world.clock.now()})
    record_written(  # the retried task's delete meets 410 and records it as ChunkRunner._deleted does
        world.store,
        [current.model_copy(update={"status": "cancelled", "published": snapshot})],
        calendar_key=KEY,
        now=world.clock.now(),
    )
    assert world.store.conflicts[cid].status == "resolved"
    world.sync()
    assert world.store.conflicts[cid].status == "resolved"
