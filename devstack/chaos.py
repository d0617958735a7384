"""Chaos convergence: ``python -m devstack.chaos --seeds N [--seed S]`` (``make chaos SEEDS=100``).

One stack (three emulators + the webhook and sync functions, ``chaos_stack.ChaosStack``) per run; per
seed, with every choice drawn from ``random.Random(seed)``:

1. wipe the Calendar emulator and Firestore; register a clinic (2 professionals, 1 room), provision
   their calendars (channels open, so push → webhook → Cloud Tasks → sync function runs for real),
   add a past personal event, a past tagged event, a tagged orphan and personal events; publish a
   small schedule (plan → apply → chunk tasks run in-process);
2. run a random interleaving of: injected 403/429/500/503 faults; sync-token expiry (410); push modes
   drop/duplicate/reorder; in-process syncs that crash mid-way (a ``ChaosCrash`` on the n-th page or
   store write); concurrent syncs of one calendar; allocation changes published with an apply that
   crashes after its batch reached Google and is retried; people editing in Google as themselves
   (``X-Emulator-User``): moving, deleting, re-inviting on our events, creating/editing/deleting
   personal ones;
3. quiesce (faults cleared, push normal, forced syncs until a whole round changes nothing) and check:
   1. every calendar's mirror equals Google's truth (ids, status, start/end, etag) in the sync window;
   2. no allocation has two live events on a calendar;
   3. no manual edit is lost: each event a person wrote last still carries that person's etag in
      Google, and the mirror has it;
   4. calsync modified no untagged or past event (its writes are recorded by ``RecordingApi``; the
      final etags of personal and past events are the ones their last writer — never calsync — got);
   5. every divergence (our event moved/deleted/re-invited/retitled in Google compared with what
      calsync last wrote or an admin accepted — the Google version the mirror showed them; a personal
      event overlapping one of ours) has exactly one open conflict, and no open conflict lacks a
      divergence;
   and, for the fields people own and the write-time guards (``FieldsChaos``: people editing titles,
   descriptions, locations and reminders of our events; ``accept_google`` followed by an allocation
   change; chunks delayed past an event's start):
   b. no event is changed by calsync after it started;
   c. every field people own (description, location, reminders) survives calsync's writes;
   e. no event stays skipped (a fresh plan's skips) without an open conflict on it.

A second clinic shares the control calendar, allocations are reassigned and clinics publish with
``clear_future`` on their own (``chaos_scope``), with two more invariants: (a) a clinic's publish
changes no event of another clinic (checked at each of those publishes); (d) after convergence each
live allocation has exactly one copy on each current target and none elsewhere.

People's calendars hold more than single timed events (``chaos_series``): weekly series (a few weeks
or endless), moved and cancelled instances, all-day days off and events shown as free; and a person
turns one of our events into a series, with invariant (f): that series keeps every instance, calsync
writes none of it, and it has exactly one open ``series_from_ours`` conflict.

One line per seed, then exactly ``N passed, M failed``; exit status 1 when any seed failed or the log
audit found something (``chaos_audit.audit_logs`` over the functions' logs and the in-process log
capture, against every summary, description, e-mail and token the run created). ``--seed S`` reruns
one seed and prints its ledger (what was done, in order).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from calsync import errors
from calsync.bootstrap import SystemClock
from calsync.model import Allocation, MirrorEvent, Professional, PublishedSnapshot, Room
from calsync.ports.queries import ConflictQuery, MirrorQuery
from calsync.services.allocations import upsert_allocations
from calsync.services.apply import ApplyCommand, Publishing
from calsync.services.classify import EVENT_CONFLICT_KINDS
from calsync.services.conflicts import resolve_conflict
from calsync.services.directory import replace_professionals, replace_rooms
from calsync.services.our_events import event_id, professional_key, room_key
from calsync.services.plan import PlanCommand, PublishConfig, make_plan
from calsync.services.provision import TIME_ZONE, provision_clinic
from calsync.services.sync import SyncCommand, sync_calendar
from devstack import chaos_scope, chaos_series, procs
from devstack.chaos_audit import Finding, audit_logs, capture_logs
from devstack.chaos_series import utc as _utc
from devstack.chaos_stack import ChaosCrash, ChaosStack, CrashingApi, CrashingStore, ListQueue, RecordingApi

ENV = "dev"
CLINIC = "c1"
SERVICE_ACCOUNT = "calsync-sa@demo-calsync.iam.gserviceaccount.com"
PAST_DAYS, FUTURE_DAYS = 45, 180
WORDS = (
    *("Ametista", "Berilo", "Cobalto", "Diamante", "Esmeralda", "Fluorita", "Granada", "Hematita", "Iolita"),
    *("Jade", "Kunzita", "Lapis", "Malaquita", "Nefrita", "Onix", "Peridoto", "Quartzo", "Rubi", "Safira"),
    *("Topazio", "Turmalina", "Zircao"),
)
NAMES = ("ana", "bruno", "carla", "diego", "elisa", "fabio", "gabi", "hugo", "iris", "joao")
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
QUIESCE_ROUNDS = 12
# How far ahead a "late chunk" allocation starts: its first publish must land before, its change after.
LATE_START_S = 8


def _moved(start: datetime | None, end: datetime | None, shift: timedelta) -> dict[str, Any]:
    if start is None or end is None:
        raise ValueError("a timed event was expected")
    return {"start": {"dateTime": (start + shift).isoformat()}, "end": {"dateTime": (end + shift).isoformat()}}


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    a_start, a_end, b_start, b_end = (
        _utc(a.get("start")),
        _utc(a.get("end")),
        _utc(b.get("start")),
        _utc(b.get("end")),
    )
    if a_start is None or a_end is None or b_start is None or b_end is None:
        return False
    return a_start < b_end and b_start < a_end


def _emails(event: dict[str, Any]) -> list[str]:
    return sorted({str(a.get("email", "")).lower() for a in event.get("attendees") or [] if a.get("email")})


def _tags(event: dict[str, Any]) -> dict[str, str]:
    return dict(((event.get("extendedProperties") or {}).get("private")) or {})


def _ours(event: dict[str, Any]) -> bool:
    tags = _tags(event)
    return tags.get("source") == "agendador" and tags.get("env") == ENV


@dataclass
class PersonWrite:
    """The last write a person (or the scenario's own set-up) made on one event."""

    actor: str
    action: str
    etag: str | None
    status: str


@dataclass
class Ledger:
    """Everything one seed did, for the checks, the audit and ``--seed`` reruns."""

    seed: int
    steps: list[str] = field(default_factory=list)
    summaries: set[str] = field(default_factory=set)
    descriptions: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)
    last_write: dict[tuple[str, str], PersonWrite] = field(default_factory=dict)
    manual: set[tuple[str, str]] = field(default_factory=set)
    past: set[tuple[str, str]] = field(default_factory=set)
    # chaos_series: people's own series (masters), and our events a person made a series of
    # ((gid, id) → the api.writes index then, and the instances it had with their etags).
    personal_series: set[tuple[str, str]] = field(default_factory=set)
    deleted_series: set[tuple[str, str]] = field(default_factory=set)
    series_of_ours: dict[tuple[str, str], tuple[int, dict[str, str | None]]] = field(default_factory=dict)

    def step(self, text: str) -> None:
        """Record one step."""
        self.steps.append(text)

    def forbidden(self) -> set[str]:
        """What must never reach a log line."""
        return self.summaries | self.descriptions | self.emails | self.tokens


@dataclass
class SeedResult:
    """The outcome of one seed."""

    seed: int
    failures: list[str]
    ledger: Ledger
    elapsed_s: float
    stats: dict[str, int]

    @property
    def ok(self) -> bool:
        """True when every invariant held."""
        return not self.failures


class PersonError(RuntimeError):
    """A person's edit kept failing (the emulator refused it)."""


class FieldsChaos:
    """People's fields, ``accept_google`` and late chunks: the operations and invariants (b), (c), (e).

    Mixed into ``SeedRun``; kept apart so other operation families merge cleanly.
    """

    rng: random.Random
    ledger: Ledger
    api: Any
    store: Any
    clock: Any
    calendars: dict[str, str]
    actors: dict[str, str]
    allocations: dict[str, Allocation]

    def fields_init(self) -> None:
        """The state this family keeps per seed."""
        self.people_fields: dict[tuple[str, str], dict[str, Any]] = {}
        self.accepted: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        # Our events whose start passed while a chunk waited: (gid, eid) → writes recorded before the start.
        self.started: dict[tuple[str, str], int] = {}
        # Started events a person then moved to the future: (gid, eid, first write, last write) they covered.
        self.restarted: list[tuple[str, str, int, int]] = []

    def step_people_fields(self) -> None:
        """A person edits the title, description, location or reminders of one of our events."""
        ours = self.published_live()  # type: ignore[attr-defined]
        if not ours:
            return
        gid, eid = self.rng.choice(ours)
        actor = self.actors[gid]
        what = self.rng.choice(["title", "description", "location", "reminders"])
        body: dict[str, Any]
        if what == "title":
            body = {"summary": self.summary("Retitulado")}  # type: ignore[attr-defined]
        elif what == "description":
            body = {"description": f"obs {self.rng.choice(WORDS)} {self.rng.randint(10000, 99999)}"}
            self.ledger.descriptions.add(body["description"])
        elif what == "location":
            body = {"location": f"Sala {self.rng.choice(WORDS)} {self.rng.randint(10, 99)}"}
            self.ledger.descriptions.add(body["location"])
        else:
            minutes = self.rng.choice([5, 15, 60])
            body = {"reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": minutes}]}}
        self.person(actor, "PATCH", gid, eid, body)  # type: ignore[attr-defined]
        if what == "title" or (gid, eid) in self.ledger.last_write:
            # A title is calsync's field (a conflict: Google wins); a person's last write stays theirs.
            self.remember(gid, eid, actor, what)  # type: ignore[attr-defined]
        if what != "title":
            self.people_fields.setdefault((gid, eid), {}).update(body)
        self.ledger.step(f"{actor} {what} of our {eid[:8]} on {self.key_of(gid)}")  # type: ignore[attr-defined]
        allocation = self.allocations.get(_tags(self.person(None, "GET", gid, eid)).get("allocation_id", ""))  # type: ignore[attr-defined]
        if what != "title" and allocation is not None and allocation.status != "cancelled" and self.rng.random() < 0.5:
            # agendador then moves that allocation: calsync rewrites the event the person just annotated.
            shift = timedelta(minutes=self.rng.choice([-30, 30, 60]))
            update = {
                "revision": allocation.revision + 1,
                "start": allocation.start + shift,
                "end": allocation.end + shift,
            }
            moved = allocation.model_copy(update=update)
            self.allocations[moved.id] = moved
            upsert_allocations([moved], store=self.store, clock=self.clock)
            self.ledger.step(f"allocation move {moved.id} (after the person's {what})")
            self.publish(crash=self.rng.random() < 0.3)  # type: ignore[attr-defined]

    def step_accept_google(self) -> None:
        """An admin accepts a person's edit; agendador then changes that allocation and it is published."""
        page, _ = self.store.list_conflicts(ConflictQuery(None, status="open", page_size=500, page_token=None))
        candidates = sorted(
            (c for c in page if c.kind in EVENT_CONFLICT_KINDS and c.allocation_id in self.allocations),
            key=lambda c: c.id,
        )
        if not candidates:
            return
        conflict = self.rng.choice(candidates)
        config = self.publish_config()  # type: ignore[attr-defined]
        resolve_conflict(conflict.id, "accept_google", api=self.api, store=self.store, clock=self.clock, config=config)
        gid = self.calendars[conflict.calendar_key]
        # What the admin accepts is the Google version the mirror holds then (read by the accept itself,
        # so a sync storing a newer one meanwhile is no race here): a later edit no sync has brought in
        # yet is a divergence of its own, which gets its conflict when a sync sees it.
        doc = self.store.get_events(conflict.calendar_key, [conflict.event_id]).get(conflict.event_id)
        accepted_etag = None
        if doc is not None and doc.published is not None:
            self.accepted[(gid, conflict.event_id)] = (len(self.api.writes), self.body_of(doc.published))
            accepted_etag = doc.published.etag
        person = self.ledger.last_write.get((gid, conflict.event_id))
        if person is not None and person.etag == accepted_etag:
            # The person's edit is the version accepted: control returns to the backend. A later one (a
            # delete right after the move the admin saw) is still theirs, and still wins.
            del self.ledger.last_write[(gid, conflict.event_id)]
        old = self.allocations[conflict.allocation_id or ""]
        shift = timedelta(minutes=self.rng.choice([-60, 30, 90]))
        moved = old.model_copy(
            update={"revision": old.revision + 1, "start": old.start + shift, "end": old.end + shift}
        )
        self.allocations[moved.id] = moved
        upsert_allocations([moved], store=self.store, clock=self.clock)
        self.ledger.step(f"accept_google {conflict.kind} on {conflict.event_id[:8]}, then move {moved.id}")
        self.publish(crash=False)  # type: ignore[attr-defined]

    def step_late_chunk(self) -> None:
        """A change is planned for an allocation about to start; its chunks run after the start."""
        start = self.clock.now().replace(microsecond=0) + timedelta(seconds=LATE_START_S)
        index = len(self.allocations)
        allocation = Allocation(
            id=f"a{self.ledger.seed}-{index}",
            clinic_id=CLINIC,
            professional_id=self.rng.choice(["p1", "p2"]),
            room_id="r1",
            start=start,
            end=start + timedelta(hours=1),
            status="reviewed",
            title=self.summary("Consulta"),  # type: ignore[attr-defined]
        )
        self.allocations[allocation.id] = allocation
        upsert_allocations([allocation], store=self.store, clock=self.clock)
        self.publish(crash=False)  # type: ignore[attr-defined]
        what = self.rng.choice(["move", "cancel"])
        update: dict[str, Any] = {"revision": allocation.revision + 1}
        if what == "move":
            update |= {"start": start + timedelta(minutes=30), "end": start + timedelta(minutes=90)}
        else:
            update["status"] = "cancelled"
        changed = allocation.model_copy(update=update)
        self.allocations[changed.id] = changed
        upsert_allocations([changed], store=self.store, clock=self.clock)

        def wait_for_start() -> None:
            while self.clock.now() <= start:
                time.sleep(0.2)
            for key in (professional_key(CLINIC, allocation.professional_id), room_key(CLINIC, "r1"), "control"):
                gid, eid = self.calendars[key], event_id(ENV, allocation.id, key)
                try:
                    event = self.person(None, "GET", gid, eid)  # type: ignore[attr-defined]
                except PersonError:
                    continue  # never created (its first publish ran late too): nothing started
                began = _utc(event.get("start"))
                if event.get("status") != "cancelled" and began is not None and began <= self.clock.now():
                    self.started[(gid, eid)] = len(self.api.writes)

        self.ledger.step(f"late chunk: {what} {changed.id}, chunks run after its start")
        self.publish(crash=False, before_chunks=wait_for_start)  # type: ignore[attr-defined]

    @staticmethod
    def body_of(snapshot: PublishedSnapshot) -> dict[str, Any]:
        """An accepted version as an event body (the fields the checks compare)."""
        return {
            "status": snapshot.status,
            "start": {"dateTime": snapshot.start.isoformat()} if snapshot.start else None,
            "end": {"dateTime": snapshot.end.isoformat()} if snapshot.end else None,
            "summary": snapshot.summary,
            "attendees": [{"email": e} for e in snapshot.attendees],
        }

    def published_after_accepts(self, published: dict[tuple[str, str], dict[str, Any] | None]) -> None:
        """What calsync last published, where an accepted Google version counts until calsync writes again."""
        for key, (index, body) in self.accepted.items():
            later = [w for w in self.api.writes[index:] if (w.calendar_id, w.event_id) == key and w.ok]
            if not later:
                published[key] = None if body.get("status") == "cancelled" else body

    @staticmethod
    def retitled(current: dict[str, Any], body: dict[str, Any]) -> bool:
        """True when Google's title is not the one calsync last published."""
        return (current.get("summary") or "") != (body.get("summary") or "")

    def check_fields(self, truth: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
        """Invariants (b), (c) and (e)."""
        failures: list[str] = []
        by_gid = {gid: key for key, gid in self.calendars.items()}
        # b. nothing calsync wrote after an event started
        spans = [(gid, eid, index, len(self.api.writes)) for (gid, eid), index in self.started.items()]
        for gid, eid, index, until in sorted(spans + self.restarted):
            for w in self.api.writes[index:until]:
                if (w.calendar_id, w.event_id) == (gid, eid) and w.ok:
                    failures.append(f"invB {by_gid[gid]}: calsync {w.kind} on {eid[:10]} after it started")
        # c. the fields people own survive
        for (gid, eid), fields in sorted(self.people_fields.items()):
            event = truth[by_gid[gid]].get(eid) or self.person(None, "GET", gid, eid)  # type: ignore[attr-defined]
            for name, value in sorted(fields.items()):
                if event.get(name) != value:
                    failures.append(f"invC {by_gid[gid]}: {name} a person set on {eid[:10]} was lost")
        # e. every skip of a fresh plan has an open conflict on its event
        open_events: set[tuple[str, str]] = set()
        token: str | None = None
        while True:
            page, token = self.store.list_conflicts(ConflictQuery(None, status="open", page_size=500, page_token=token))
            kinds = (*EVENT_CONFLICT_KINDS, "series_from_ours")
            open_events.update((c.calendar_key, c.event_id) for c in page if c.kind in kinds)
            if token is None:
                break
        now = self.clock.now()
        command = PlanCommand(CLINIC, now - timedelta(days=2), now + timedelta(days=8))
        plan = make_plan(command, store=self.store, clock=self.clock, config=self.publish_config())  # type: ignore[attr-defined]
        for section in plan.calendars:
            for item in section.items:
                key = (section.calendar_id, item.event_id)
                if item.reason == "series_from_ours":  # an instance: the conflict is on its series
                    key = (section.calendar_id, item.event_id.rsplit("_", 1)[0])
                if item.action == "skip" and item.reason != "past_event" and key not in open_events:
                    failures.append(f"invE {key[0]}: {key[1][:10]} skipped ({item.reason}) without an open conflict")
        return failures


class SeedRun(FieldsChaos):
    """One seed: set-up, chaos steps, quiescence, checks."""

    def __init__(self, stack: ChaosStack, seed: int, store: Any) -> None:
        self.stack = stack
        self.seed = seed
        self.rng = random.Random(seed)
        self.ledger = Ledger(seed)
        # Small pages and batches, a short lease and fast channel renewal: every path runs in a seed.
        settings = stack.settings(
            lock_lease_s=30, batch_size=3, channel_ttl_s=86400, renew_margin_s=3600, display_time_zone="UTC"
        )
        self.app = stack.container(
            settings,
            store=store,
            calendar_api=RecordingApi(stack.api(page_size=2)),
            clock=SystemClock(),
        )
        self.store = store
        self.clock = self.app.clock
        self.api: Any = self.app.calendar_api  # Any: a structural stand-in for CalendarApi
        self.tasks: Any = self.app.queue  # the Cloud Tasks emulator, from the settings
        self.publish_queue = ListQueue()
        self.now = self.clock.now()
        self.base = (self.now + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
        self.calendars: dict[str, str] = {}  # key → google id
        self.actors: dict[str, str] = {}  # google id → person who may edit it
        self.allocations: dict[str, Allocation] = {}
        self.control_id = ""
        self.sync_config = self.app.sync_config
        self.counts: Counter[str] = Counter()
        self.timings = self.ledger.timings
        self.scope_failures: list[str] = []  # invariant a, checked at each publish of chaos_scope
        self.fields_init()

    # --- helpers -------------------------------------------------------------------------------------

    def word(self) -> str:
        """A random gem name."""
        return self.rng.choice(WORDS)

    def summary(self, prefix: str) -> str:
        """A distinctive event summary, remembered as forbidden in logs."""
        text = f"{prefix} {self.word()} {self.rng.randint(1000, 9999)}"
        self.ledger.summaries.add(text)
        return text

    def email(self, local: str) -> str:
        """A distinctive e-mail address, remembered as forbidden in logs."""
        address = f"{local}.{self.seed}.{self.rng.randint(100, 999)}@clinic.example"
        self.ledger.emails.add(address)
        return address

    def events_url(self, calendar_id: str, event_id: str | None = None) -> str:
        """The REST address of a calendar's events (or one event)."""
        url = f"{self.stack.calendar}/calendar/v3/calendars/{quote(calendar_id, safe='')}/events"
        return url if event_id is None else f"{url}/{quote(event_id, safe='')}"

    def person(
        self, actor: str | None, method: str, calendar_id: str, event_id: str | None = None, body: Any = None
    ) -> dict[str, Any]:
        """A call to the Calendar API as ``actor`` (None: the service account), retried like a person would."""
        headers = {"X-Emulator-User": actor} if actor else {}
        for _ in range(30):
            answer = requests.request(
                method, self.events_url(calendar_id, event_id), json=body, headers=headers, timeout=10
            )
            if answer.status_code in (429, 500, 502, 503) or (
                answer.status_code == 403 and self._reason(answer) in RATE_REASONS
            ):
                time.sleep(0.05)  # an injected fault hit the person too: they try again
                continue
            if answer.status_code >= 400:
                raise PersonError(f"{method} {event_id or ''} as {actor}: {answer.status_code} {self._reason(answer)}")
            return dict(answer.json()) if answer.content else {}
        raise PersonError(f"{method} as {actor}: still failing after 30 tries")

    @staticmethod
    def _reason(answer: requests.Response) -> str:
        try:
            return str(answer.json()["error"]["errors"][0]["reason"])
        except (ValueError, KeyError, IndexError, TypeError):
            return ""

    def remember(self, calendar_id: str, event_id: str, actor: str, action: str) -> dict[str, Any]:
        """Record a person's write: the event's etag and status right after it."""
        event = self.person(actor, "GET", calendar_id, event_id)
        self.ledger.last_write[(calendar_id, event_id)] = PersonWrite(
            actor, action, event.get("etag"), str(event.get("status", "confirmed"))
        )
        self.counts["person_edits"] += 1
        began = _utc(event.get("start"))
        index = self.started.get((calendar_id, event_id))
        if index is not None and event.get("status") != "cancelled" and began is not None and began > self.clock.now():
            # A person moved a started event to the future: Google's version has not started any more, so
            # calsync may write it again (the writes while it had started stay checked).
            self.restarted.append((calendar_id, event_id, index, len(self.api.writes)))
            del self.started[(calendar_id, event_id)]
        return event

    def sync(self, key: str, *, api: Any = None, store: Any = None, reason: str = "admin") -> Any:
        """One in-process sync invocation of ``key``."""
        return sync_calendar(
            SyncCommand(calendar_key=key, reason=reason),  # type: ignore[arg-type]
            api=api or self.api,
            store=store or self.store,
            queue=ListQueue(),
            clock=self.clock,
            config=self.sync_config,
        )

    def publish_config(self) -> PublishConfig:
        """Publish settings: small batches, so a schedule spans several chunk tasks."""
        return replace(
            self.app.publish_config, control_calendar_id=self.control_id, publish_url="http://127.0.0.1:9/unused"
        )

    # --- set-up ----------------------------------------------------------------------------------

    def setup(self) -> None:
        """Fresh emulators, a provisioned clinic, fixed personal/past events and a first publish."""
        self.stack.reset()
        self.stack.control("quota", {"per_user_per_minute": 1_000_000, "per_project_per_minute": 10_000_000})
        self.control_id = self.api.insert_calendar("calsync control (chaos)", time_zone=TIME_ZONE)
        profs = [
            Professional(clinic_id=CLINIC, id=f"p{i}", name=f"Prof {i}", email=self.email(self.rng.choice(NAMES)))
            for i in (1, 2)
        ]
        replace_professionals(CLINIC, profs, store=self.store)
        replace_rooms(CLINIC, [Room(clinic_id=CLINIC, id="r1", name="Sala 1")], store=self.store)
        provision_clinic(CLINIC, chaos_scope.provisioning(self), control_calendar_id=self.control_id)
        for record in self.store.list_calendars():
            self.calendars[record.key] = record.google_calendar_id
        for p in profs:
            self.actors[self.calendars[professional_key(CLINIC, p.id)]] = p.email
        reception = self.email("recepcao")
        room_gid = self.calendars[room_key(CLINIC, "r1")]
        self.api.insert_acl(room_gid, email=reception, role="writer")
        self.actors[room_gid] = reception
        self.ledger.step(f"provisioned {sorted(self.calendars)}")

        prof_gid = self.calendars[professional_key(CLINIC, "p1")]
        past = self.now - timedelta(days=1)
        # A past personal event and a past event calsync published long ago: never to be touched.
        event = self.create_manual(prof_gid, start=past, note="past personal")
        self.ledger.past.add((prof_gid, event["id"]))
        tagged = self.person(None, "POST", prof_gid, body=self.tagged_body(f"past-{self.seed}", past))
        self.ledger.past.add((prof_gid, tagged["id"]))
        seeded = PersonWrite("setup", "past tagged", tagged["etag"], "confirmed")
        self.ledger.last_write[(prof_gid, tagged["id"])] = seeded
        # A future tagged event without an allocation: a clear_future publish may delete it (it is ours).
        self.person(None, "POST", prof_gid, body=self.tagged_body(f"orphan-{self.seed}", self.base + timedelta(days=2)))
        for gid in self.actors:
            self.create_manual(gid, start=self.base + timedelta(days=self.rng.randint(0, 3), hours=-3), note="personal")

        for i in range(self.rng.randint(3, 5)):
            self.new_allocation(i)
        upsert_allocations(list(self.allocations.values()), store=self.store, clock=self.clock)
        self.publish(crash=False)
        chaos_scope.setup_second_clinic(self)

    def tagged_body(self, allocation_id: str, start: datetime) -> dict[str, Any]:
        """An event carrying our tags (as an earlier publish would have written it)."""
        return {
            "summary": self.summary("Atendimento"),
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
            "extendedProperties": {
                "private": {"source": "agendador", "env": ENV, "allocation_id": allocation_id, "calsync_schema": "1"}
            },
        }

    def new_allocation(self, index: int) -> Allocation:
        """A reviewed one-hour allocation in the next days."""
        start = self.base + timedelta(days=self.rng.randint(0, 4), hours=self.rng.randint(-3, 5))
        allocation = Allocation(
            id=f"a{self.seed}-{index}",
            clinic_id=CLINIC,
            professional_id=self.rng.choice(["p1", "p2"]),
            room_id="r1",
            start=start,
            end=start + timedelta(hours=1),
            status="reviewed",
            title=self.summary("Consulta"),
        )
        self.allocations[allocation.id] = allocation
        return allocation

    def create_manual(self, calendar_id: str, *, start: datetime, note: str) -> dict[str, Any]:
        """A person adds a personal event to a calendar they may edit."""
        actor = self.actors[calendar_id]
        description = f"nota {self.word()} {self.rng.randint(10000, 99999)}"
        self.ledger.descriptions.add(description)
        body: dict[str, Any] = {
            "summary": self.summary("Pessoal"),
            "description": description,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=self.rng.choice([30, 60, 90]))).isoformat()},
        }
        if self.rng.random() < 0.5:
            body["attendees"] = [{"email": self.email("convidado")}]
        event = self.person(actor, "POST", calendar_id, body=body)
        self.ledger.manual.add((calendar_id, event["id"]))
        self.remember(calendar_id, event["id"], actor, f"create manual ({note})")
        where = f"{self.key_of(calendar_id)} at {start:%m-%d %H:%M}"
        self.ledger.step(f"{actor} created manual {event['id'][:8]} on {where}")
        return event

    def key_of(self, calendar_id: str) -> str:
        """The calendar key of a Google calendar id."""
        return next((k for k, v in self.calendars.items() if v == calendar_id), calendar_id)

    # --- publish ---------------------------------------------------------------------------------

    def publish(
        self,
        *,
        crash: bool,
        before_chunks: Callable[[], None] | None = None,
        clinic: str = CLINIC,
        clear: bool | None = None,
    ) -> None:
        """Plan and apply a publish; with ``crash``, the apply dies after a batch reached Google, then retries.

        ``before_chunks`` runs between the apply and its chunk tasks (tasks that wait in the queue).
        """
        config = self.publish_config()
        clear = self.rng.random() < 0.3 if clear is None else clear
        command = PlanCommand(clinic, self.now - timedelta(days=2), self.now + timedelta(days=8), clear_future=clear)
        api: Any = CrashingApi(self.api, "execute_batch", self.rng.randint(1, 3)) if crash else self.api
        for _ in range(8):
            answer = make_plan(command, store=self.store, clock=self.clock, config=config)
            self.ledger.tokens.add(answer.confirm_token)
            if answer.confirm_clear_future_token:
                self.ledger.tokens.add(answer.confirm_clear_future_token)
            apply = ApplyCommand(answer.plan_id, answer.confirm_token, answer.confirm_clear_future_token)
            try:
                Publishing(self.store, self.api, self.publish_queue, self.clock, config).start_apply(apply)
            except errors.StaleState:
                time.sleep(0.1)  # a sync changed the mirror between plan and apply: plan again
                continue
            except errors.CalendarApiError:
                time.sleep(0.1)
                continue
            break
        else:
            raise RuntimeError("publish: no plan could be applied in 8 tries")
        self.ledger.step(f"publish {clinic} (clear_future={clear}, crash={crash}): {answer.totals.model_dump()}")
        if before_chunks is not None:
            before_chunks()
        # The chunks' own re-enqueues are dropped: the loop below retries what failed.
        chunks = Publishing(self.store, api, ListQueue(), self.clock, config)
        pending = self.publish_queue.pop_all()
        for _ in range(40):
            if not pending:
                break
            retry = []
            for task in pending:
                payload = task.payload
                try:
                    chunks.run_chunk(payload["plan_id"], payload["calendar_key"], payload["chunk"])
                except (ChaosCrash, errors.CalsyncError) as exc:
                    # Cloud Tasks would retry the task: so do we (every step is idempotent).
                    chunk = f"{payload['calendar_key']}#{payload['chunk']}"
                    self.ledger.step(f"  chunk {chunk} failed: {type(exc).__name__}")
                    retry.append(task)
            pending = retry + self.publish_queue.pop_all()
            if retry:
                time.sleep(0.05)
        if pending:
            raise RuntimeError("publish: chunks still failing after 40 rounds")

    # --- chaos steps -----------------------------------------------------------------------------

    def step_fault(self) -> None:
        """Queue an injected Calendar API fault."""
        status, reason = self.rng.choice(
            [(403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (429, None), (500, None), (503, None)]
        )
        method, path = self.rng.choice(
            [
                ("GET", r"^/calendar/v3/calendars/[^/]+/events$"),
                ("*", r"^/calendar/v3/calendars/[^/]+/events/[^/]+$"),
                ("POST", r"^/calendar/v3/calendars/[^/]+/events$"),
                ("*", r"^/calendar/v3/"),
            ]
        )
        count = self.rng.randint(1, 3)
        fault = {"method": method, "path": path, "status": status, "reason": reason, "count": count}
        self.stack.control("faults", fault)
        self.ledger.step(f"fault {status} {reason or ''} x{count} on {method} {path}")

    def step_expire(self) -> None:
        """Expire sync tokens (the next incremental sync gets 410)."""
        key = self.rng.choice([*sorted(self.calendars), "*"])
        body = {} if key == "*" else {"calendarId": self.calendars[key]}
        self.stack.control("sync-tokens/expire", body)
        self.ledger.step(f"sync tokens expired: {key}")

    def step_push(self) -> None:
        """Change how push notifications misbehave."""
        mode = self.rng.choice(["drop", "duplicate", "reorder", "normal"])
        rate = self.rng.choice([0.5, 1.0])
        self.stack.control("push", {"mode": mode, "rate": rate, "delay_ms": 300})
        self.ledger.step(f"push {mode} rate={rate}")

    def step_sync(self) -> None:
        """An in-process sync, often dying mid-way."""
        key = self.rng.choice(sorted(self.calendars))
        how = self.rng.choice(["plain", "list", "put_events", "put_conflicts", "update_calendar"])
        api: Any = self.api
        store: Any = self.store
        if how == "list":
            api = CrashingApi(self.api, "list_events", self.rng.randint(1, 3))
        elif how != "plain":
            store = CrashingStore(self.store, how, self.rng.randint(1, 2))
        try:
            summary = self.sync(key, api=api, store=store)
            outcome = f"{summary.mode} written={summary.written}"
        except (ChaosCrash, errors.CalsyncError) as exc:
            outcome = type(exc).__name__
        self.ledger.step(f"sync {key} ({how}): {outcome}")

    def step_concurrent(self) -> None:
        """Three syncs of one calendar at once."""
        key = self.rng.choice(sorted(self.calendars))
        outcomes: list[str] = []

        def one() -> None:
            try:
                outcomes.append(self.sync(key).mode)
            except errors.CalsyncError as exc:
                cause = exc.__cause__
                outcomes.append(f"{type(exc).__name__}({type(cause).__name__}: {str(cause)[:160]})")

        threads = [threading.Thread(target=one) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.ledger.step(f"concurrent syncs {key}: {sorted(outcomes)}")

    def step_allocations(self) -> None:
        """agendador changes the schedule, then an admin publishes (the apply may crash and be retried)."""
        live = [a for a in self.allocations.values() if a.status != "cancelled"]
        what = self.rng.choice(["new", "move", "cancel", "retitle"]) if live else "new"
        if what == "new":
            changed = self.new_allocation(len(self.allocations))
        else:
            old = self.rng.choice(sorted(live, key=lambda a: a.id))
            update: dict[str, Any] = {"revision": old.revision + 1}
            if what == "move":
                shift = timedelta(minutes=self.rng.choice([-90, -30, 30, 60, 120]))
                update |= {"start": old.start + shift, "end": old.end + shift}
            elif what == "cancel":
                update["status"] = "cancelled"
            else:
                update["title"] = self.summary("Consulta")
            changed = old.model_copy(update=update)
            self.allocations[changed.id] = changed
        upsert_allocations([changed], store=self.store, clock=self.clock)
        self.ledger.step(f"allocation {what} {changed.id}")
        self.publish(crash=self.rng.random() < 0.6, clinic=changed.clinic_id)

    def published_live(self) -> list[tuple[str, str]]:
        """Our live events on calendars people edit (from what calsync wrote), not deleted by a person."""
        state: dict[tuple[str, str], bool] = {}
        for w in self.api.writes:
            if w.ok:
                state[(w.calendar_id, w.event_id)] = w.kind != "delete"
        return sorted(
            k
            for k, live in state.items()
            if live
            and k[0] in self.actors
            and k not in self.ledger.series_of_ours  # a person's series now: left to them
            and (k not in self.ledger.last_write or self.ledger.last_write[k].status != "cancelled")
        )

    def step_person(self) -> None:
        """A person edits their calendar in Google."""
        ours = self.published_live()
        manual = sorted(
            k
            for k in self.ledger.manual
            if k not in self.ledger.past and self.ledger.last_write[k].status != "cancelled"
        )
        choices = ["create_manual"]
        if ours:
            choices += ["move", "move", "delete", "attendees"]
        if manual:
            choices += ["edit_manual", "delete_manual"]
        what = self.rng.choice(choices)
        if what == "create_manual":
            gid = self.rng.choice(sorted(self.actors))
            if ours and self.rng.random() < 0.5:
                # Right on top of one of our events: an overlap conflict.
                target = self.rng.choice(ours)
                event = self.person(None, "GET", target[0], target[1])
                start = _utc(event.get("start")) or self.base
                gid = target[0]
                self.create_manual(gid, start=start + timedelta(minutes=30), note="overlapping")
            else:
                self.create_manual(gid, start=self.base + timedelta(days=self.rng.randint(0, 4), hours=-4), note="free")
            return
        if what in ("move", "delete", "attendees"):
            gid, eid = self.rng.choice(ours)
            actor = self.actors[gid]
            if what == "attendees" and not self.key_of(gid).startswith(f"{CLINIC}-prof-"):
                what = "move"
            event = self.person(actor, "GET", gid, eid)
            if what == "move":
                shift = timedelta(minutes=self.rng.choice([-120, -60, 45, 90, 180]))
                self.person(actor, "PATCH", gid, eid, _moved(_utc(event.get("start")), _utc(event.get("end")), shift))
            elif what == "delete":
                self.person(actor, "DELETE", gid, eid)
            else:
                attendees = [*(event.get("attendees") or []), {"email": self.email("paciente")}]
                self.person(actor, "PATCH", gid, eid, {"attendees": attendees})
            self.remember(gid, eid, actor, what)
            self.ledger.step(f"{actor} {what} our {eid[:8]} on {self.key_of(gid)}")
            return
        gid, eid = self.rng.choice(manual)
        actor = self.actors[gid]
        if what == "delete_manual":
            self.person(actor, "DELETE", gid, eid)
        else:
            event = self.person(actor, "GET", gid, eid)
            body: dict[str, Any] = {"summary": self.summary("Pessoal")}
            if self.rng.random() < 0.5:
                shift = timedelta(minutes=self.rng.choice([-60, 30, 120]))
                body |= _moved(_utc(event.get("start")), _utc(event.get("end")), shift)
            self.person(actor, "PATCH", gid, eid, body)
        self.remember(gid, eid, actor, what)
        self.ledger.step(f"{actor} {what} {eid[:8]} on {self.key_of(gid)}")

    def step_pause(self) -> None:
        """Let push deliveries and the functions' syncs run."""
        pause = self.rng.choice([0.1, 0.3, 0.8])
        time.sleep(pause)
        self.ledger.step(f"pause {pause}s")

    def chaos(self) -> None:
        """The random interleaving."""
        steps: list[tuple[Callable[[], None], int]] = [
            (self.step_fault, 2),
            (self.step_expire, 1),
            (self.step_push, 1),
            (self.step_sync, 2),
            (self.step_concurrent, 1),
            (self.step_allocations, 2),
            (self.step_person, 5),
            (self.step_pause, 1),
            (self.step_people_fields, 2),
            (self.step_accept_google, 1),
            (self.step_late_chunk, 1),
            (lambda: chaos_scope.step_reassign(self), 2),
            (lambda: chaos_scope.step_clinic_publish(self), 1),
            (lambda: chaos_series.step_real_calendars(self), 3),
        ]
        functions = [f for f, _ in steps]
        weights = [w for _, w in steps]
        for _ in range(self.rng.randint(10, 16)):
            began = time.monotonic()
            self.rng.choices(functions, weights)[0]()
            took = time.monotonic() - began
            if took > 1.0:
                self.ledger.step(f"  (took {took:.1f}s)")

    # --- quiescence and checks -------------------------------------------------------------------

    def quiesce(self) -> list[str]:
        """Stop the chaos and sync every calendar until a whole round changes nothing."""
        self.stack.control("faults", method="DELETE")
        self.stack.control("push", {"mode": "normal", "rate": 1.0})
        time.sleep(1.5)  # let queued webhook tasks (1 s debounce) run
        for _ in range(QUIESCE_ROUNDS):
            stable = True
            for key in sorted(self.calendars):
                try:
                    summary = self.sync(key, reason="poll")
                except errors.CalsyncError:
                    stable = False
                    continue
                changed = summary.written or summary.conflicts_opened or summary.conflicts_resolved
                if summary.mode == "skipped" or changed:
                    stable = False
            if stable:
                return []
            time.sleep(0.3)
        return [f"did not quiesce within {QUIESCE_ROUNDS} rounds"]

    def truth(self, calendar_id: str) -> dict[str, dict[str, Any]]:
        """Google's events of the sync window, cancelled ones included (as the service account)."""
        params = {
            "showDeleted": "true",
            "singleEvents": "true",
            "maxResults": "2500",
            "timeMin": (self.now - timedelta(days=PAST_DAYS - 1)).isoformat(),
            "timeMax": (self.now + timedelta(days=FUTURE_DAYS - 1)).isoformat(),
        }
        answer = requests.get(self.events_url(calendar_id), params=params, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        assert "nextPageToken" not in body
        return {e["id"]: e for e in body.get("items", [])}

    def mirror_live(self, key: str) -> dict[str, MirrorEvent]:
        """The mirror's live events of the window."""
        out: dict[str, MirrorEvent] = {}
        token: str | None = None
        while True:
            page, token = self.store.list_mirror_events(
                MirrorQuery(
                    key,
                    time_min=self.now - timedelta(days=PAST_DAYS - 1),
                    time_max=self.now + timedelta(days=FUTURE_DAYS - 1),
                    page_size=500,
                    page_token=token,
                )
            )
            out.update((m.external_id, m) for m in page)
            if token is None:
                return out

    def check(self) -> list[str]:
        """The five invariants; one message per violation."""
        failures: list[str] = []
        truth = {key: self.truth(gid) for key, gid in self.calendars.items()}
        expected: set[tuple[str, str, str]] = set()
        for key, gid in sorted(self.calendars.items()):
            google = truth[key]
            mirror = self.store.get_events(key, sorted(google))
            live = {i: e for i, e in google.items() if e.get("status") != "cancelled"}
            # 1. mirror == truth
            for eid, event in live.items():
                m = mirror.get(eid)
                if m is None:
                    failures.append(f"inv1 {key}: live event {eid[:10]} missing from the mirror")
                    continue
                when = (_utc(event.get("start")), _utc(event.get("end")))
                want = (event.get("status", "confirmed"), event.get("etag"), *when)
                got = (m.status, m.etag, m.start, m.end)
                if want != got:
                    failures.append(f"inv1 {key}: {eid[:10]} mirror {got} != google {want}")
            for eid in self.mirror_live(key):
                # A series made of ours is listed as its instances: its master stays as we published it.
                if eid not in live and (gid, eid) not in self.ledger.series_of_ours:
                    failures.append(f"inv1 {key}: mirror has live {eid[:10]}, Google does not")
            for eid, event in google.items():
                if event.get("status") == "cancelled" and eid in mirror and mirror[eid].status != "cancelled":
                    failures.append(f"inv1 {key}: {eid[:10]} deleted in Google, live in the mirror")
            # 2. no duplicates per allocation
            per_allocation = Counter(
                _tags(e).get("allocation_id") for e in live.values() if _ours(e) and not e.get("recurringEventId")
            )
            for allocation_id, count in per_allocation.items():
                if count > 1:
                    failures.append(f"inv2 {key}: allocation {allocation_id} has {count} live events")
            # 4b. untagged events all come from people (calsync never creates one)
            for eid, event in google.items():
                if not _tags(event) and not chaos_series.person_created(self, gid, event):
                    failures.append(f"inv4 {key}: untagged event {eid[:10]} that no person created")
            # 5 (overlaps): a live personal event overlapping one of our live events
            ours = [e for e in live.values() if _ours(e)]
            for eid, event in live.items():
                if _tags(event) or not chaos_series.blocks_time(event):
                    continue
                if any(_overlap(event, o) for o in ours):
                    expected.add((key, eid, "overlap_manual"))

        detail: dict[tuple[str, str], str] = {}
        for w in self.api.writes:
            key = {gid: key for key, gid in self.calendars.items()}.get(w.calendar_id, w.calendar_id)
            at = f"{_utc((w.body or {}).get('start'))}" if w.body else "-"
            line = f"{w.kind} ok={w.ok} {w.error_code or ''} start={at} if_match={w.if_match}"
            detail[(key, w.event_id)] = detail.get((key, w.event_id), "") + f" | {line}"
        # 3. manual edits not lost (and 4c: past/personal events keep their last writer's etag)
        by_gid = {gid: key for key, gid in self.calendars.items()}
        for (gid, eid), write in sorted(self.ledger.last_write.items()):
            key = by_gid[gid]
            event = truth[key].get(eid) or self.person(None, "GET", gid, eid)
            m = self.store.get_events(key, [eid]).get(eid)
            if write.status == "cancelled":
                if event.get("status") != "cancelled":
                    failures.append(f"inv3 {key}: {write.actor} deleted {eid[:10]}, Google has it live again")
                if m is not None and m.status != "cancelled":
                    failures.append(f"inv3 {key}: {write.actor} deleted {eid[:10]}, the mirror has it live")
                continue
            if event.get("etag") != write.etag:
                inv = "inv4" if (gid, eid) in self.ledger.manual or (gid, eid) in self.ledger.past else "inv3"
                what = f"{write.action} by {write.actor} on {eid[:10]}"
                now = f"google etag={event.get('etag')} start={_utc(event.get('start'))} status={event.get('status')}"
                history = detail.get((key, eid), "")
                failures.append(
                    f"inv3/{inv} {key}: {what} was overwritten in Google (person etag={write.etag}; {now}{history})"
                )
            elif m is None or m.etag != write.etag:
                failures.append(f"inv3 {key}: {write.action} by {write.actor} on {eid[:10]} is not in the mirror")

        # 4a. calsync's own writes never touched a personal or past event
        protected = self.ledger.manual | self.ledger.past
        for w in self.api.writes:
            if w.ok and (w.calendar_id, w.event_id) in protected:
                failures.append(f"inv4 {by_gid.get(w.calendar_id)}: calsync {w.kind} on protected {w.event_id[:10]}")

        # 5. divergences from what calsync last wrote ↔ open conflicts
        published: dict[tuple[str, str], dict[str, Any] | None] = {}
        for w in self.api.writes:
            if w.kind == "delete" and (w.ok or w.error_code == "resource_gone"):
                published[(w.calendar_id, w.event_id)] = None
            elif w.ok and w.body is not None:
                published[(w.calendar_id, w.event_id)] = w.body
        self.published_after_accepts(published)
        for gid, eid in self.ledger.series_of_ours:
            expected.add((by_gid[gid], eid, chaos_series.SERIES_KIND))
        for (gid, eid), body in published.items():
            if body is None:
                continue
            key = by_gid[gid]
            current = truth[key].get(eid)
            if current is None:
                continue
            if current.get("status") == "cancelled":
                expected.add((key, eid, "deleted_in_google"))
                continue
            if (_utc(current.get("start")), _utc(current.get("end"))) != (
                _utc(body.get("start")),
                _utc(body.get("end")),
            ):
                expected.add((key, eid, "moved_in_google"))
            if _emails(current) != _emails(body):
                expected.add((key, eid, "attendees_changed"))
            if self.retitled(current, body):
                expected.add((key, eid, "title_changed"))
        actual: Counter[tuple[str, str, str]] = Counter()
        token: str | None = None
        while True:
            page, token = self.store.list_conflicts(ConflictQuery(None, status="open", page_size=500, page_token=token))
            actual.update((c.calendar_key, c.event_id, c.kind) for c in page)
            if token is None:
                break
        for item in sorted(expected):
            if actual[item] == 0:
                final = truth[item[0]].get(item[1], {})
                seen = f"google start={_utc(final.get('start'))} etag={final.get('etag')}"
                writes = detail.get((item[0], item[1]), "")
                failures.append(f"inv5 {item[0]}: {item[2]} on {item[1][:10]} has no open conflict ({seen}{writes})")
            elif actual[item] > 1:
                failures.append(f"inv5 {item[0]}: {item[2]} on {item[1][:10]} has {actual[item]} open conflicts")
        for item in sorted(set(actual) - expected):
            failures.append(f"inv5 {item[0]}: open {item[2]} conflict on {item[1][:10]} without a divergence")
        self.counts["open_conflicts"] = sum(actual.values())
        self.counts["divergences"] = len(expected)
        self.counts["calsync_writes"] = sum(1 for w in self.api.writes if w.ok)
        series = chaos_series.check_series(self, truth)
        return failures + self.check_fields(truth) + self.scope_failures + chaos_scope.check_copies(self) + series

    def collect_tokens(self) -> None:
        """Every token this seed saw: sync/page tokens, stored sync tokens, channel tokens."""
        self.ledger.tokens |= self.api.tokens
        for record in self.store.list_calendars():
            if record.sync_token:
                self.ledger.tokens.add(record.sync_token)
        for channel in self.stack.control("channels", method="GET").get("channels", []):
            if channel.get("token"):
                self.ledger.tokens.add(str(channel["token"]))

    def run(self) -> SeedResult:
        """Set up, chaos, quiesce, check."""
        started = time.monotonic()
        failures: list[str] = []
        try:
            for phase in (self.setup, self.chaos, self.quiesce, self.check):
                began = time.monotonic()
                failures += phase() or []
                self.timings[phase.__name__] = round(time.monotonic() - began, 1)
        except Exception as exc:  # a crash of the driver (or of calsync outside the injected ones) fails the seed
            failures.append(f"error: {type(exc).__name__}: {exc}")
        finally:
            try:
                self.stack.control("faults", method="DELETE")
                self.collect_tokens()
            except Exception as exc:  # the seed already failed if the stack is gone
                failures.append(f"cleanup error: {type(exc).__name__}")
            self.tasks.close()
        return SeedResult(self.seed, failures, self.ledger, time.monotonic() - started, dict(self.counts))


def run_seeds(
    stack: ChaosStack, seeds: list[int], *, capture: Path, say: Callable[[str], None] = print
) -> tuple[list[SeedResult], list[Finding]]:
    """Run ``seeds`` on ``stack`` (in-process logs into ``capture``), then audit every captured log."""
    results: list[SeedResult] = []
    store = stack.store()
    forbidden: set[str] = {"chaos-admin-token-not-a-secret"}
    with capture_logs(capture, quiet_console=True):
        for seed in seeds:
            result = SeedRun(stack, seed, store).run()
            results.append(result)
            forbidden |= result.ledger.forbidden()
            counts = " ".join(f"{k}={v}" for k, v in sorted(result.stats.items()))
            timings = " ".join(f"{k}={v}s" for k, v in result.ledger.timings.items())
            if result.ok:
                say(f"seed {seed}: ok ({len(result.ledger.steps)} steps, {counts}, {result.elapsed_s:.1f}s: {timings})")
            else:
                ledger_file = capture.parent / f"ledger-seed-{seed}.txt"
                ledger_file.write_text("\n".join([*result.ledger.steps, *(f"! {f}" for f in result.failures)]) + "\n")
                say(f"seed {seed}: FAILED ({len(result.failures)}): {result.failures[0]}")
                for failure in result.failures[1:6]:
                    say(f"    {failure}")
    findings = audit_logs([capture, *stack.function_logs()], forbidden)
    return results, findings


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="run seeds 0..N-1")
    parser.add_argument("--seed", type=int, default=None, help="run this one seed and print its ledger")
    parser.add_argument("--log-dir", type=Path, default=None, help="where the stack's logs go (default: a temp dir)")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(range(args.seeds))
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="calsync-chaos-"))
    print(f"chaos: {len(seeds)} seed(s); logs in {log_dir}", flush=True)
    procs.exit_on_sigterm()  # a stopped run still stops its stack
    stack = ChaosStack.start(log_dir)
    try:
        results, findings = run_seeds(stack, seeds, capture=log_dir / "in-process.log")
    finally:
        stack.stop()
    if args.seed is not None:
        ledger = results[0].ledger
        print(f"ledger of seed {args.seed}:")
        for number, text in enumerate(ledger.steps, start=1):
            print(f"  {number:3d}. {text}")
        for failure in results[0].failures:
            print(f"  ! {failure}")
    print(f"log audit: {len(findings)} finding(s) in {log_dir}")
    for finding in findings[:20]:
        print(f"  {finding}")
    failed = sum(1 for r in results if not r.ok)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or findings else 0


if __name__ == "__main__":
    sys.exit(main())
