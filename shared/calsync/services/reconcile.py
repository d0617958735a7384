"""The reconciler: merge what Google says into the mirror, open and resolve conflicts, record our writes.

One place decides what the mirror and the conflicts become, whoever learned something about an event:
the sync (a page of ``events.list``), a publish chunk (our writes, and events re-read after a 412 or a
409), an ad-hoc event write, a forced one-event resync, or an admin settling a conflict.

- ``merge``: pure classification (``classify``) of Google's events against the mirror snapshots, then
  conflicts written before mirror documents, and mirror writes only for events whose etag/updated
  changed. Our events that moved, appeared or were deleted re-evaluate the personal events around
  them (``overlap_manual``).
- ``record_written`` / ``settle_written``: our own writes, recorded in one transaction that keeps any
  newer Google content a sync stored meanwhile; ``settle_written`` also resolves the event conflicts
  the write made obsolete and re-evaluates overlaps around the written events.

Google wins: a person's edit is never overwritten here; it becomes the mirror's content and, when it
diverges from what we published, a conflict with a suggested adjustment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from calsync.logs import get_logger
from calsync.model import CalendarRecord, Conflict, ConflictKind, GoogleEvent, MirrorEvent
from calsync.ports import Clock, ConflictStore, MirrorStore
from calsync.ports.queries import ConflictQuery
from calsync.services.classify import (
    EVENT_CONFLICT_KINDS,
    ConflictAction,
    EventDecision,
    busy,
    classify_event,
    conflict_id,
    diverging_kinds,
    mirror_diverging_kinds,
    overlap_conflict,
)

log = get_logger(__name__)

# Firestore `get_all` and the conflict lookup are chunked to keep each RPC small.
READ_CHUNK = 1000


class ReconcileStore(MirrorStore, ConflictStore, Protocol):
    """The store as the reconciler uses it: the mirror and the conflicts."""


@dataclass
class ReconcileCounts:
    """What a reconciler did (added into a sync's summary or a publish's log line)."""

    fetched: int = 0
    written: int = 0
    unchanged: int = 0
    ignored: int = 0
    conflicts_opened: int = 0
    conflicts_resolved: int = 0


def chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def record_written(
    store: ReconcileStore,
    written: Sequence[MirrorEvent],
    *,
    calendar_key: str,
    now: datetime,
    reason: str = "superseded_by_publish",
) -> dict[str, MirrorEvent]:
    """Record events calsync just wrote, then resolve event conflicts the write made obsolete.

    The record is one transaction (``store.record_published``) that keeps any newer Google content a
    sync stored meanwhile. A ``moved``/``deleted``/``attendees`` conflict whose kind no longer
    diverges between the stored Google content and the new snapshot is resolved: a sync opened it
    against our previous snapshot (it listed our write, or our deletion, before we recorded it), or an
    admin accepted the Google version that carries it (``reason``: the log's).
    """
    stored = store.record_published(written)
    settled_kinds = {
        event_id: [k for k in EVENT_CONFLICT_KINDS if k not in mirror_diverging_kinds(doc)]
        for event_id, doc in stored.items()
        if doc.published is not None
    }
    ids = [conflict_id(calendar_key, event_id, k) for event_id, kinds in settled_kinds.items() for k in kinds]
    if not ids:
        return stored
    settled = [
        c.model_copy(update={"status": "resolved", "resolved_at": now})
        for c in store.get_conflicts(ids).values()
        if c.status == "open"
    ]
    if settled:
        store.put_conflicts(settled)
        for conflict in settled:
            log.info(
                "conflict.resolved",
                calendar_key=calendar_key,
                conflict_id=conflict.id,
                conflict_kind=conflict.kind,
                reason=reason,
            )
    return stored


class Reconciler:
    """Reconciles one calendar's mirror and conflicts with what Google says and what we wrote.

    ``calendar_key`` is calsync's name of the calendar (mirror and conflict documents are keyed by
    it); ``google_calendar_id`` is Google's id of the same calendar.
    """

    @classmethod
    def of(
        cls,
        store: ReconcileStore,
        calendar: CalendarRecord,
        *,
        clock: Clock,
        env: str,
        time_zone: str = "UTC",
        counts: ReconcileCounts | None = None,
        checkpoint: Callable[[], None] | None = None,
    ) -> Reconciler:
        """The reconciler of a registered calendar."""
        return cls(
            store,
            calendar.key,
            google_calendar_id=calendar.google_calendar_id,
            clock=clock,
            env=env,
            time_zone=time_zone,
            counts=counts,
            checkpoint=checkpoint,
        )

    def __init__(
        self,
        store: ReconcileStore,
        calendar_key: str,
        *,
        google_calendar_id: str,
        clock: Clock,
        env: str,
        time_zone: str = "UTC",
        counts: ReconcileCounts | None = None,
        checkpoint: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.calendar_key = calendar_key
        self.google_calendar_id = google_calendar_id
        self.clock = clock
        self.env = env
        self.tz = ZoneInfo(time_zone)  # of the times written in conflict suggestions
        self.counts = counts if counts is not None else ReconcileCounts()
        # Called inside the overlap re-check loops, before any write of the merge: a sync's budget and
        # lease (it may raise to stop the merge; the sync lists the page again).
        self.checkpoint = checkpoint or (lambda: None)

    # --- our writes ------------------------------------------------------------------------------

    def record_written(self, written: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Record our writes (one transaction; newer Google content a sync stored is kept)."""
        return self.store.record_published(written)

    def settle_written(self, written: Sequence[MirrorEvent]) -> dict[str, MirrorEvent]:
        """Record our writes, resolve the event conflicts they made obsolete, re-evaluate overlaps."""
        stored = record_written(self.store, written, calendar_key=self.calendar_key, now=self.clock.now())
        self.record_overlaps(written)
        return stored

    # --- what Google says ------------------------------------------------------------------------

    def merge(self, items: Sequence[GoogleEvent], *, calendar_zone: str | None = None) -> None:
        """Classify Google's events against the mirror; write conflicts, then changed mirror documents.

        ``calendar_zone``: the calendar's time zone as Google lists it, whose days all-day dates are
        (default: the zone of suggestions).

        Conflicts are written first: a crash before the mirror write leaves the page unmerged, and the
        next run classifies it again (the conflict ids are deterministic, so nothing doubles).
        """
        if not items:
            return
        items = [*items, *self._series_tombstones(items)]
        now = self.clock.now()
        ids = list(dict.fromkeys(e.id for e in items))
        current = self.store.get_events(self.calendar_key, ids)
        decisions: dict[str, EventDecision] = {}
        for event in items:
            decision = classify_event(
                event,
                current.get(event.id),
                calendar_key=self.calendar_key,
                google_calendar_id=self.google_calendar_id,
                env=self.env,
                now=now,
                tz=self.tz,
                day_tz=ZoneInfo(calendar_zone) if calendar_zone else None,
            )
            decisions[event.id] = decision
        self.counts.fetched += len(items)
        writes: dict[str, MirrorEvent] = {}
        for decision in decisions.values():
            if decision.action == "ignore":
                self.counts.ignored += 1
                log.warning(
                    "sync.foreign_event_ignored",
                    calendar_key=self.calendar_key,
                    event_id=decision.event_id,
                    reason=decision.reasons[0],
                )
            elif decision.action == "unchanged":
                self.counts.unchanged += 1
            elif decision.mirror is not None:
                writes[decision.event_id] = decision.mirror
        if not writes:
            return
        opened, resolved = self._conflict_actions(decisions, writes, current)
        self._apply_conflicts(opened, resolved, now)
        self.store.merge_observed_events(list(writes.values()))
        self.counts.written += len(writes)
        self._recheck_opened(opened, {e.id: e for e in items}, current, now)

    def _series_tombstones(self, items: Sequence[GoogleEvent]) -> list[GoogleEvent]:
        """Tombstones for the mirrored instances of the series this page deletes.

        Google lists a deleted series as its master's tombstone only; the instances the mirror holds
        would stay live (and keep their overlap conflicts open). A tombstone without an etag is the
        full sync's own (its diff covers the instances too) and is not looked up.
        """
        masters = sorted({e.id for e in items if e.cancelled and e.etag is not None and not e.recurring_event_id})
        found: list[GoogleEvent] = []
        for master in masters:
            self.checkpoint()
            found += [
                GoogleEvent(id=m.external_id, status="cancelled")
                for m in self.store.series_instances(self.calendar_key, master)
            ]
        return found

    def _recheck_opened(
        self,
        opened: Sequence[ConflictAction],
        events: dict[str, GoogleEvent],
        read: dict[str, MirrorEvent],
        now: datetime,
    ) -> None:
        """Resolve conflicts just opened against a snapshot that a publish replaced meanwhile.

        The page was classified against the snapshots read at its start; an apply recording its write
        in between (its Google write already listed here) would leave a false conflict nobody closes.
        The apply resolves what it confirms after recording; this re-read covers the other order.
        """
        ids = sorted({a.event_id for a in opened if a.kind in EVENT_CONFLICT_KINDS})
        if not ids:
            return
        fresh = self.store.get_events(self.calendar_key, ids)
        stale: list[tuple[str, ConflictKind]] = []
        for event_id in ids:
            doc, before = fresh.get(event_id), read.get(event_id)
            if doc is None or doc.published is None or (before is not None and before.published == doc.published):
                continue
            still = diverging_kinds(events[event_id], doc.published)
            stale += [
                (event_id, a.kind)
                for a in opened
                if a.event_id == event_id and a.kind in EVENT_CONFLICT_KINDS and a.kind not in still
            ]
        if stale:
            log.info("sync.conflicts_superseded", calendar_key=self.calendar_key, count=len(stale))
            self._apply_conflicts([], stale, now)

    def _conflict_actions(
        self, decisions: dict[str, EventDecision], writes: dict[str, MirrorEvent], current: dict[str, MirrorEvent]
    ) -> tuple[list[ConflictAction], list[tuple[str, ConflictKind]]]:
        opened: list[ConflictAction] = []
        resolved: list[tuple[str, ConflictKind]] = []
        for event_id in writes:
            decision = decisions[event_id]
            opened.extend(decision.open)
            resolved.extend((event_id, kind) for kind in decision.resolve)
        manual = [m for m in writes.values() if m.origin == "manual"]
        system = {m.external_id: m for m in writes.values() if m.origin == "system"}
        live_manual = [m for m in manual if busy(m)]
        if live_manual:
            lo = min(m.start for m in live_manual if m.start is not None)
            hi = max(m.end for m in live_manual if m.end is not None)
            candidates = {s.external_id: s for s in self.store.system_events_overlapping(self.calendar_key, lo, hi)}
            candidates.update(system)  # this page's version wins over the stored one
            for m in live_manual:
                action = overlap_conflict(m, candidates.values(), self.tz)
                if action is not None:
                    opened.append(action)
                else:
                    resolved.append((m.external_id, "overlap_manual"))
        resolved.extend((m.external_id, "overlap_manual") for m in manual if m.status == "cancelled")
        # Our events that moved, were deleted or appeared (a full listing may return a personal event on
        # an earlier page than ours over it): the personal events around them are re-evaluated.
        shifted = [s for s in system.values() if self._shifted(s, current.get(s.external_id))]
        if shifted:
            around_open, around_resolved = self.overlaps_around(shifted, skip={m.external_id for m in manual})
            opened.extend(around_open)
            resolved.extend(around_resolved)
        return opened, resolved

    def _shifted(self, system: MirrorEvent, old: MirrorEvent | None) -> bool:
        if old is None:
            return True
        return (old.start, old.end, old.status) != (system.start, system.end, system.status)

    def overlaps_around(
        self, systems: Iterable[MirrorEvent], *, skip: frozenset[str] | set[str] = frozenset()
    ) -> tuple[list[ConflictAction], list[tuple[str, ConflictKind]]]:
        """Re-evaluate ``overlap_manual`` for the manual events around system events that changed.

        A system event created on top of a personal event (a publish) or moved onto one (a person)
        opens the conflict; one that moved away, or was deleted, resolves it unless the personal
        event still overlaps another of our events. ``skip``: manual events evaluated by the caller.
        """
        page = {s.external_id: s for s in systems}
        affected: dict[str, MirrorEvent] = {}
        live = [s for s in page.values() if s.status != "cancelled" and s.start is not None and s.end is not None]
        if live:
            lo = min(s.start for s in live if s.start is not None)
            hi = max(s.end for s in live if s.end is not None)
            # Only personal events are read (few): cheap enough for every page of a full listing too.
            for m in self.store.manual_events_overlapping(self.calendar_key, lo, hi):
                if any(overlap_conflict(m, [s]) is not None for s in live):
                    affected[m.external_id] = m
        allocations = {s.allocation_id for s in page.values() if s.allocation_id}
        named: list[str] = []
        token: str | None = None
        if allocations:
            token = None
            while True:
                self.checkpoint()
                conflicts, token = self.store.list_conflicts(
                    ConflictQuery(
                        self.calendar_key, status="open", kind="overlap_manual", page_size=500, page_token=token
                    )
                )
                named.extend(c.event_id for c in conflicts if c.allocation_id in allocations)
                if token is None:
                    break
        missing = sorted({e for e in named if e not in affected})
        for chunk in chunks(missing, READ_CHUNK):
            self.checkpoint()
            affected.update(self.store.get_events(self.calendar_key, chunk))
        opened: list[ConflictAction] = []
        resolved: list[tuple[str, ConflictKind]] = []
        for event_id, m in sorted(affected.items()):
            if event_id in skip:
                continue
            self.checkpoint()
            action: ConflictAction | None = None
            if m.origin == "manual" and m.status != "cancelled" and m.start is not None and m.end is not None:
                candidates = {
                    s.external_id: s for s in self.store.system_events_overlapping(self.calendar_key, m.start, m.end)
                }
                candidates.update(page)  # the changed versions win over the stored ones
                action = overlap_conflict(m, candidates.values(), self.tz)
            if action is not None:
                opened.append(action)
            else:
                resolved.append((event_id, "overlap_manual"))
        return opened, resolved

    def record_overlaps(self, systems: Sequence[MirrorEvent]) -> None:
        """Open/resolve overlap conflicts around our events written outside a sync (a publish).

        A sync sees those writes only as our own echo (unchanged), so the overlap check happens here.
        """
        opened, resolved = self.overlaps_around(systems)
        self._apply_conflicts(opened, resolved, self.clock.now())

    def _apply_conflicts(
        self, opened: list[ConflictAction], resolved: list[tuple[str, ConflictKind]], now: datetime
    ) -> None:
        open_ids = {conflict_id(self.calendar_key, a.event_id, a.kind): a for a in opened}
        resolve_ids = {conflict_id(self.calendar_key, e, k) for e, k in resolved} - set(open_ids)
        wanted = sorted(set(open_ids) | resolve_ids)
        existing: dict[str, Conflict] = {}
        for chunk in chunks(wanted, READ_CHUNK):
            existing.update(self.store.get_conflicts(chunk))
        changes: list[Conflict] = []
        for cid, action in open_ids.items():
            old = existing.get(cid)
            # The action carries the conflict's own fields (its id is made of calendar, event and kind).
            seen = asdict(action)
            if old is None or old.status != "open":
                self.counts.conflicts_opened += 1
                log.info(
                    "conflict.opened",
                    calendar_key=self.calendar_key,
                    conflict_id=cid,
                    conflict_kind=action.kind,
                    event_id=action.event_id,
                    allocation_id=action.allocation_id,
                )
                changes.append(Conflict(id=cid, calendar_key=self.calendar_key, status="open", detected_at=now, **seen))
            elif old.model_dump(include=set(seen)) != seen:
                changes.append(old.model_copy(update=seen))
        for cid in sorted(resolve_ids):
            old = existing.get(cid)
            if old is not None and old.status == "open":
                self.counts.conflicts_resolved += 1
                log.info("conflict.resolved", calendar_key=self.calendar_key, conflict_id=cid, conflict_kind=old.kind)
                changes.append(old.model_copy(update={"status": "resolved", "resolved_at": now}))
        if changes:
            self.store.put_conflicts(changes)
