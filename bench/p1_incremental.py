"""P1: incremental sync of 100 changes among N events (10,000): calsync vs the naive full-window poller.

Continues P2's world (both mirrors already filled). 100 events are edited through a batch of updates,
then calsync syncs with its stored sync token and the naive poller polls its window; the emulator
counts Calendar calls, the counting store counts mirror document reads and writes. gcal_sync's
incremental run is shown for reference (its token is the same kind as calsync's).
"""

from __future__ import annotations

from bench.harness import Row, Stopwatch, fmt, ratio
from bench.p2_full_sync import SyncWorld
from calsync.ports import BatchOp


def run(world: SyncWorld, changes: int = 100) -> list[Row]:
    """Edit ``changes`` events, then measure one calsync sync and one naive poll."""
    emulator = world.stack.emulator
    step = max(1, len(world.bodies) // changes)
    edited = world.bodies[::step][:changes]
    ops = [
        BatchOp(kind="update", calendar_id=world.gcal, event_id=b["id"], body={**b, "summary": "remarcada"})
        for b in edited
    ]
    results = world.api.execute_batch(ops)
    if not all(r.ok for r in results):
        raise RuntimeError("P1: the edits did not all apply")

    emulator.reset_stats()
    world.store.reset()
    with Stopwatch() as ours_time:
        summary = world.sync()
    ours = (emulator.calls(), world.store.counts["mirror_reads"], world.store.counts["mirror_writes"])
    if (summary.mode, summary.fetched, summary.written) != ("incremental", changes, changes):
        raise RuntimeError(f"P1: calsync's sync was not the expected incremental one: {summary.to_dict()}")

    emulator.reset_stats()
    world.store.reset()
    with Stopwatch() as naive_time:
        poll = world.naive.poll()
    naive = (emulator.calls(), world.store.counts["mirror_reads"], world.store.counts["mirror_writes"])
    if poll.written != changes:
        raise RuntimeError(f"P1: the naive poller wrote {poll.written} events, not {changes}")

    emulator.reset_stats()
    theirs = world.gcal_sync.run()
    gcal_calls = emulator.calls()

    n, c = fmt(len(world.bodies)), fmt(changes)
    label = f"{c} changes among {n} events"
    return [
        Row(
            "P1",
            f"{label}: Calendar API calls",
            fmt(ours[0]),
            fmt(naive[0]),
            ratio(ours[0], naive[0]),
            f"naive lists the window in 2500-event pages; gcal_sync incremental: {fmt(gcal_calls)} call(s)",
        ),
        Row(
            "P1",
            f"{label}: mirror document reads",
            fmt(ours[1]),
            fmt(naive[1]),
            ratio(ours[1], naive[1]),
            "calsync reads only the changed ids; naive reads the whole mirror to compare",
        ),
        Row(
            "P1",
            f"{label}: mirror document writes",
            fmt(ours[2]),
            fmt(naive[2]),
            ratio(ours[2], naive[2]),
            "naive compares etags before writing (a rewrite-all poller would write every event)",
        ),
        Row(
            "P1",
            f"{label}: wall time (s)",
            fmt(ours_time.elapsed),
            fmt(naive_time.elapsed),
            ratio(ours_time.elapsed, naive_time.elapsed),
            f"Firestore emulator; gcal_sync incremental (in memory): {fmt(theirs.seconds)} s",
        ),
    ]
