"""``make demo``: calsync's main job end to end on a fresh local stack, with a report and checks.

1. Start a private stack (temporary state dir, free ports; a developer's stack is never touched).
2. Load the dataset (``devstack.demo_data``: 2 clinics, 20 professionals, 8 rooms, a week of
   allocations in America/Sao_Paulo) through the admin API: ``PUT /clinics/{id}/professionals|rooms``,
   ``PUT /allocations``.
3. ``POST /provision`` per clinic: calendars created, shared with their professional, watched; wait
   until every calendar had its initial sync. One professional (the *person*) already keeps a personal
   event in their calendar.
4. ``POST /publish/plan`` then ``POST /publish/apply`` with the confirm token, per clinic; poll
   ``GET /publish/{plan_id}`` until both are done (publish wall time).
5. Act as the person in Google through the Calendar emulator (``X-Emulator-User``): move one of our
   events, delete one, add a personal event overlapping a shift, edit the personal event. After each
   edit, poll the mirror (``GET /events``) until it shows the change: push → webhook → Cloud Tasks →
   sync, timed (edit → mirror latency).
6. Verify convergence (retried until it holds or a timeout): every edit is in the mirror; exactly the
   expected conflicts are open, once each (``moved_in_google``, ``deleted_in_google``,
   ``overlap_manual``); the edited personal event has no conflict and was never touched by calsync;
   no allocation has two events on a calendar; every published allocation is on its three calendars;
   every calendar's mirror equals Google; the captured logs hold no event content, e-mail or token.
7. Print the report (rich tables) and stop the stack (always, in a ``finally``). Exit 0 only when
   every check holds; otherwise say which failed and keep the logs.

Speed settings: the webhook debounce is 2 s here (production default 30 s) so the latency figures
show the pipeline, not the debounce bucket; the scheduler's poll job keeps its 10 min interval, so
every change the demo sees came through push.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from rich.console import Console
from rich.table import Table

from devstack import demo_data, procs, stack

HTTP_TIMEOUT_S = 60.0
DEMO_DEBOUNCE_S = "2"
QUOTA_PER_USER_PER_MIN = 600  # the emulator's default, as Google's
PUBLISH_PHASE = "publish (plan + apply)"
POLL_S = 0.1
INITIAL_SYNC_TIMEOUT_S = 240.0  # provisioning is paced under the local usage limits
PUBLISH_TIMEOUT_S = 300.0
EDIT_TIMEOUT_S = 60.0
CONVERGE_TIMEOUT_S = 60.0
PAGE = 500
REPORT_WIDTH = 180
GOOGLE_PAGE = 2500
TAG_SOURCE = "source"
TAG_ALLOCATION = "allocation_id"
PERSONAL_SUMMARY = "Dentista (pessoal)"
PERSONAL_DESCRIPTION = "Levar radiografias e carteirinha do convênio"
PERSONAL_EDITED_SUMMARY = "Dentista (pessoal) - remarcado"
OVERLAP_SUMMARY = "Reunião da escola do filho"
OVERLAP_DESCRIPTION = "Conversa com a coordenadora pedagógica"


class DemoError(RuntimeError):
    """A step of the demo could not go on (the message says which request answered what)."""


def endpoints_table(endpoints: stack.Endpoints, processes: list[stack.ProcessRecord]) -> Table:
    """The running stack as a table: service, pid, where it answers."""
    table = Table(title="calsync local stack")
    table.add_column("service")
    table.add_column("pid", justify="right")
    table.add_column("address")
    for record in processes:
        table.add_row(record.name, str(record.pid), record.address)
    table.caption = (
        f"Calendar API {endpoints.calendar_api} · project {endpoints.project} · "
        f"logs {endpoints.logs} · admin token in endpoints.json"
    )
    return table


# --- HTTP clients ----------------------------------------------------------------------------------


class Clients:
    """The admin API (bearer token) and the Calendar emulator, counting the demo's own Google calls.

    The emulator's stats count every API call, including the people's edits and the demo's checks;
    the demo counts its own per method so the report can show calsync's calls alone.
    """

    def __init__(self, endpoints: stack.Endpoints) -> None:
        """Clients of the stack described by ``endpoints``."""
        self.endpoints = endpoints
        self.session = requests.Session()
        self.admin_headers = {"Authorization": f"Bearer {endpoints.admin_token}"}
        self.own_calls: Counter[str] = Counter()

    def admin(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> Any:
        """One admin API call; ``DemoError`` unless the status is expected."""
        url = f"{self.endpoints.functions['publish']}{path}"
        answer = self.session.request(method, url, headers=self.admin_headers, timeout=HTTP_TIMEOUT_S, **kwargs)
        if answer.status_code not in expect:
            raise DemoError(f"{method} /{path} answered {answer.status_code}: {answer.text[:300]}")
        return answer.json() if answer.content else {}

    def pages(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every item of a paged admin list route."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = {**params, "page_size": str(PAGE)} | ({"page_token": token} if token else {})
            body = self.admin("GET", path, expect=(200,), params=query)
            items += body["items"]
            token = body.get("next_page_token")
            if not token:
                return items

    def google(
        self, method_id: str, method: str, path: str, *, user: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """One Calendar API call on the emulator, as ``user`` (a person) or as the service account."""
        self.own_calls[method_id] += 1
        headers = {"X-Emulator-User": user} if user else {}
        url = f"{self.endpoints.calendar_api}{path}"
        answer = self.session.request(method, url, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs)
        if answer.status_code >= 300:
            raise DemoError(f"Calendar {method_id} answered {answer.status_code}: {answer.text[:300]}")
        return answer.json() if answer.content else {}

    def google_events(self, google_calendar_id: str, writer: str | None = None) -> list[dict[str, Any]]:
        """Every live event of a Google calendar (as its writer, which owns it)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        path = f"calendars/{quote(google_calendar_id, safe='')}/events"
        while True:
            params = {"maxResults": str(GOOGLE_PAGE)} | ({"pageToken": token} if token else {})
            body = self.google("calendar.events.list", "GET", path, user=writer, params=params)
            items += body.get("items", [])
            token = body.get("nextPageToken")
            if not token:
                return items

    def stats(self) -> dict[str, Any]:
        """The emulator's counters (the control API is not counted)."""
        answer = self.session.get(f"{self.endpoints.calendar_control}stats", timeout=HTTP_TIMEOUT_S)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body


# --- Results ---------------------------------------------------------------------------------------


@dataclass
class Check:
    """One convergence check: what must hold, whether it did, and the evidence."""

    name: str
    ok: bool
    detail: str


@dataclass
class Edit:
    """A person's change in Google and how long the mirror took to show it."""

    name: str
    event_id: str
    made_at: float = 0.0  # monotonic time Google answered the edit
    latency_s: float | None = None
    etag: str | None = None


@dataclass
class Phase:
    """A step's wall time and the Calendar calls made during it (calsync's, without the demo's own)."""

    name: str
    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    pushes: int = 0


@dataclass
class DemoResult:
    """Everything the report shows; ``ok`` only when every check holds."""

    dataset: demo_data.Dataset
    phases: list[Phase] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    mirror_counts: dict[str, int] = field(default_factory=dict)
    google_counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    publish_s: float | None = None
    error: str | None = None
    log_dir: Path | None = None

    @property
    def ok(self) -> bool:
        """True when the demo ran to the end and every check held."""
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)


# --- The demo --------------------------------------------------------------------------------------


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _google_when(event: dict[str, Any], key: str) -> datetime | None:
    when = event.get(key) or {}
    return _parse(when["dateTime"]) if when.get("dateTime") else None


def _wait(what: str, condition: Callable[[], bool], timeout_s: float) -> float:
    """Poll ``condition`` until true; the seconds it took, or ``DemoError`` after ``timeout_s``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise DemoError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(POLL_S)
    return time.monotonic() - started


class Demo:
    """The steps of the demo against a started stack, filling a ``DemoResult``."""

    def __init__(self, clients: Clients, dataset: demo_data.Dataset, console: Console) -> None:
        """Drive the stack behind ``clients`` with ``dataset``; print progress on ``console``."""
        self.api = clients
        self.data = dataset
        self.console = console
        self.result = DemoResult(dataset=dataset)
        self.clinic = dataset.clinics[0]
        self.person = self.clinic.person
        self.person_key = f"{self.clinic.id}-prof-{self.person.id}"
        self.google_ids: dict[str, str] = {}
        self.writers: dict[str, str | None] = {}
        self.edits: dict[str, Edit] = {}
        self.busy_elsewhere: set[str] = set()
        self._stats = clients.stats()
        self._own = Counter(clients.own_calls)
        # The person's published allocations an hour or more ahead, fixed once: [0] is moved, [1]
        # deleted, [2] overlapped by a new personal event.
        self.future = self._person_future(dataset.now + timedelta(hours=1))
        self.overlapped = self.future[2]

    def say(self, text: str) -> None:
        """One progress line."""
        self.console.print(f"[bold cyan]>[/bold cyan] {text}")

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """Time a step and attribute the Calendar calls made meanwhile (minus the demo's own) to it."""
        record = Phase(name)
        started = time.monotonic()
        try:
            yield record
        finally:
            record.seconds = time.monotonic() - started
            stats = self.api.stats()
            methods = Counter(stats.get("methods", {})) - Counter(self._stats.get("methods", {}))
            own = self.api.own_calls - self._own
            record.calls = methods - own
            record.batches = int(stats.get("batch", {}).get("requests", 0)) - int(
                self._stats.get("batch", {}).get("requests", 0)
            )
            record.pushes = int(stats.get("push", {}).get("deliveries", 0)) - int(
                self._stats.get("push", {}).get("deliveries", 0)
            )
            self._stats, self._own = stats, Counter(self.api.own_calls)
            self.result.phases.append(record)

    # -- steps --

    def load(self) -> None:
        """Directory and allocations through the admin API."""
        with self.phase("load dataset"):
            for clinic in self.data.clinics:
                professionals = [{"id": p.id, "name": p.name, "email": p.email} for p in clinic.professionals]
                rooms = [{"id": r.id, "name": r.name} for r in clinic.rooms]
                self.api.admin("PUT", f"clinics/{clinic.id}/professionals", json={"items": professionals})
                self.api.admin("PUT", f"clinics/{clinic.id}/rooms", json={"items": rooms})
            items = [a.body() for a in self.data.allocations]
            answer = self.api.admin("PUT", "allocations", json={"items": items})
        counts = ", ".join(f"{n} {s}" for s, n in self.data.status_counts().items())
        self.say(
            f"Loaded {len(self.data.clinics)} clinics, "
            f"{sum(len(c.professionals) for c in self.data.clinics)} professionals, "
            f"{sum(len(c.rooms) for c in self.data.clinics)} rooms, {answer.get('upserted')} allocations "
            f"({counts}; {len(self.data.started(self.data.now))} published ones already started)."
        )

    def provision(self) -> None:
        """Calendars per clinic, shared and watched; then wait for every initial sync."""
        with self.phase("provision + initial sync"):
            created = 0
            for clinic in self.data.clinics:
                answer = self.api.admin("POST", "provision", json={"clinic_id": clinic.id})
                created += int(answer["total"])
            self.say(
                f"Provisioning {created} calendars as paced tasks on the writers' budgets "
                "(each created, shared with its professional and watched by its writer)."
            )

            def all_synced() -> bool:
                rows = self.api.admin("GET", "health", expect=(200,))["calendars"]
                self.google_ids = {row["key"]: row["google_calendar_id"] for row in rows}
                self.writers = {row["key"]: row.get("writer") for row in rows}
                targets = [row for row in rows if row["kind"] != "control"]
                return len(targets) == created and all(row["last_synced_at"] for row in targets)

            waited = _wait("the initial sync of every calendar", all_synced, INITIAL_SYNC_TIMEOUT_S)
        self.say(f"Every calendar had its initial sync ({waited:.1f}s after provisioning).")

    def personal_event(self) -> None:
        """The person's own event, made in Google before the publish: evening, overlapping nothing."""
        day = self.future[0].start.astimezone(demo_data.TZ).date()
        start = datetime.combine(day, day_time(19, 30), tzinfo=demo_data.TZ)
        body = {
            "summary": PERSONAL_SUMMARY,
            "description": PERSONAL_DESCRIPTION,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        }
        event = self.api.google(
            "calendar.events.insert", "POST", self._events_path(self.person_key), user=self.person.email, json=body
        )
        self.edits["personal"] = Edit("person edits their personal event", str(event["id"]))
        _wait(
            "the personal event in the mirror",
            lambda: event["id"] in {e["id"] for e in self.api.pages("events", calendar_id=self.person_key)},
            EDIT_TIMEOUT_S,
        )
        self.say(f"{self.person.name} keeps a personal event in their calendar (mirrored as manual).")

    def publish(self) -> None:
        """Plan and apply each clinic's week, then wait until every plan is done."""
        with self.phase(PUBLISH_PHASE):
            started = time.monotonic()
            window = {"from": self.data.window_start.isoformat(), "to": self.data.window_end.isoformat()}
            for clinic in self.data.clinics:
                plan = self.api.admin("POST", "publish/plan", json={"clinic_id": clinic.id, **window})
                self.result.plans[clinic.id] = plan
                totals = plan["totals"]
                self.say(
                    f"Plan {clinic.id}: {totals['create']} create, {totals['update']} update, "
                    f"{totals['delete']} delete, {totals['skip']} skip "
                    f"(~{plan['quota']['requests']:g} requests, ~{plan['quota']['minutes']:g} min paced)."
                )
                confirm = {"plan_id": plan["plan_id"], "confirm": plan["confirm_token"]}
                self.api.admin("POST", "publish/apply", json=confirm)

            def all_done() -> bool:
                for clinic_id, plan in self.result.plans.items():
                    progress = self.api.admin("GET", f"publish/{plan['plan_id']}", expect=(200,))
                    self.result.progress[clinic_id] = progress
                    if progress["status"] == "failed":
                        raise DemoError(f"the publish of {clinic_id} failed: {progress['errors'][:5]}")
                return all(p["status"] == "done" for p in self.result.progress.values())

            _wait("the publish to finish", all_done, PUBLISH_TIMEOUT_S)
            self.result.publish_s = time.monotonic() - started
        done = sum(p["done"] for p in self.result.progress.values())
        self.say(f"Published {done} writes in {self.result.publish_s:.1f}s.")

    def people_edit(self) -> None:
        """The person's four edits in Google, each timed until the mirror shows it."""
        with self.phase("people's edits -> push -> sync"):
            moved, deleted, overlapped = self.future[0], self.future[1], self.future[2]
            mirror = {e["allocation_id"]: e for e in self.api.pages("events", calendar_id=self.person_key)}
            path = self._events_path(self.person_key)
            user = self.person.email

            # 1. Move an appointment to the afternoon of the same day.
            event_id = mirror[moved.id]["id"]
            new_start = moved.start.replace(hour=16, minute=0)
            new_end = new_start + (moved.end - moved.start)
            body: dict[str, Any] = {
                "start": {"dateTime": new_start.isoformat()},
                "end": {"dateTime": new_end.isoformat()},
            }
            edit = self._edit("move", f"person moves allocation {moved.id}", event_id)
            self.api.google("calendar.events.patch", "PATCH", f"{path}/{event_id}", user=user, json=body)
            edit.made_at = time.monotonic()
            self._until_mirrored(edit, lambda e: e is not None and _parse(e["start"]) == new_start)

            # 2. Delete another one.
            event_id = mirror[deleted.id]["id"]
            edit = self._edit("delete", f"person deletes allocation {deleted.id}", event_id)
            self.api.google("calendar.events.delete", "DELETE", f"{path}/{event_id}", user=user)
            edit.made_at = time.monotonic()
            self._until_mirrored(edit, lambda e: e is None)

            # 3. A personal event overlapping a third appointment.
            start = overlapped.start + timedelta(minutes=10)
            body = {
                "summary": OVERLAP_SUMMARY,
                "description": OVERLAP_DESCRIPTION,
                "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
            }
            made = self.api.google("calendar.events.insert", "POST", path, user=user, json=body)
            edit = self._edit("overlap", "person adds a personal event over a shift", str(made["id"]))
            edit.made_at = time.monotonic()
            self._until_mirrored(edit, lambda e: e is not None and e["origin"] == "manual")

            # 4. Edit the personal event made before the publish (later, new title; still no overlap).
            personal = self.edits["personal"]
            mirrored = next(
                e for e in self.api.pages("events", calendar_id=self.person_key) if e["id"] == personal.event_id
            )
            later = _parse(mirrored["start"]) + timedelta(minutes=30)
            body = {
                "summary": PERSONAL_EDITED_SUMMARY,
                "start": {"dateTime": later.isoformat()},
                "end": {"dateTime": (later + timedelta(hours=1)).isoformat()},
            }
            answer = self.api.google(
                "calendar.events.patch", "PATCH", f"{path}/{personal.event_id}", user=user, json=body
            )
            personal.made_at = time.monotonic()
            personal.etag = str(answer["etag"])
            self._until_mirrored(personal, lambda e: e is not None and _parse(e["start"]) == later)
        for edit in self.result.edits:
            self.say(f"{edit.name}: in the mirror after {edit.latency_s:.2f}s.")

    def own_calendars(self) -> None:
        """Another professional marks time on their own primary calendar; calsync reads its free/busy.

        A weekly lunch block (a series), an all-day day off and an out-of-office, each over one of
        their published allocations; they share free/busy with calsync's acting user, as a clinic asks
        its professionals to. ``POST /clinics/{id}/availability`` then raises one ``busy_elsewhere``
        conflict per colliding allocation, with a suggestion.
        """
        with self.phase("own calendars -> free/busy -> busy_elsewhere"):
            other, (weekly, dayoff, away) = self.clinic.own_calendar_targets(self.data.now + timedelta(hours=1))
            lunch = (weekly.start - timedelta(days=7, minutes=15), weekly.start - timedelta(days=7, minutes=-30))
            day = dayoff.start.astimezone(UTC).date()  # all-day in the primary calendar's zone (UTC here)
            busy = [(lunch[0] + timedelta(days=7 * k), lunch[1] + timedelta(days=7 * k)) for k in range(4)]
            busy += [
                (datetime.combine(day, day_time(), UTC), datetime.combine(day, day_time(), UTC) + timedelta(days=1)),
                (away.start - timedelta(hours=1), away.end + timedelta(hours=1)),
            ]
            zone = "America/Sao_Paulo"
            bodies: list[dict[str, Any]] = [
                {
                    "summary": "Almoço",
                    "start": {"dateTime": lunch[0].isoformat(), "timeZone": zone},
                    "end": {"dateTime": lunch[1].isoformat(), "timeZone": zone},
                    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
                },
                {
                    "summary": "Folga",
                    "start": {"date": day.isoformat()},
                    "end": {"date": busy[4][1].date().isoformat()},
                },
                {
                    "summary": "Congresso",
                    "eventType": "outOfOffice",
                    "outOfOfficeProperties": {"autoDeclineMode": "declineNone"},
                    "start": {"dateTime": busy[5][0].isoformat()},
                    "end": {"dateTime": busy[5][1].isoformat()},
                },
            ]
            for body in bodies:
                self.api.google(
                    "calendar.events.insert", "POST", "calendars/primary/events", user=other.email, json=body
                )
            share = {"role": "freeBusyReader", "scope": {"type": "user", "value": stack.CALENDAR_USER}}
            self.api.google("calendar.acl.insert", "POST", "calendars/primary/acl", user=other.email, json=share)
            checked = self.api.admin("POST", f"clinics/{self.clinic.id}/availability")
        at = _parse(str(checked["checked_at"]))
        self.busy_elsewhere = {
            a.id
            for a in self.clinic.allocations
            if a.professional_id == other.id
            and a.status in ("reviewed", "adjusted")
            and at < a.start < at + timedelta(days=14)
            and any(start < a.end and a.start < end for start, end in busy)
        }
        self.say(
            f"{other.id}'s own calendar (a weekly block, a day off, an out-of-office): {checked['collisions']} "
            f"allocations collide with busy time there; {checked['conflicts_opened']} busy_elsewhere conflicts."
        )

    def _edit(self, key: str, name: str, event_id: str) -> Edit:
        edit = Edit(name, event_id)
        self.edits[key] = edit
        return edit

    def _until_mirrored(self, edit: Edit, shows: Callable[[dict[str, Any] | None], bool]) -> None:
        """Poll the person's mirror until ``shows`` holds for the edited event; record the latency.

        The latency runs from Google's answer to the edit (``made_at``) to the first mirror read that
        shows it, so it covers push delivery, the webhook, the debounce, Cloud Tasks and the sync.
        """

        def mirrored() -> bool:
            items = self.api.pages("events", calendar_id=self.person_key)
            return shows(next((e for e in items if e["id"] == edit.event_id), None))

        _wait(f"the mirror to show: {edit.name}", mirrored, EDIT_TIMEOUT_S)
        edit.latency_s = time.monotonic() - edit.made_at
        self.result.edits.append(edit)

    # -- checks --

    def verify(self, log_dir: Path) -> None:
        """Every convergence check, retried together until all hold or the timeout passes."""
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while True:
            checks = self._checks(log_dir)
            if all(c.ok for c in checks) or time.monotonic() > deadline:
                self.result.checks = checks
                return
            time.sleep(1.0)

    def _checks(self, log_dir: Path) -> list[Check]:
        result = self.result
        checks: list[Check] = []
        result.health = self.api.admin("GET", "health", expect=(200,))
        result.conflicts = self.api.pages("conflicts")
        now = _parse(str(result.health["checked_at"]))  # the system's instant, not a second clock

        bad = {k: p["status"] for k, p in result.progress.items() if p["status"] != "done" or p["errors"]}
        checks.append(Check("publish done, no errors", not bad, str(bad) if bad else "both plans done"))

        rows = result.health["calendars"]  # the control calendar included: publishes write it too
        unwatched = [r["key"] for r in rows if not r["channel_expires_at"] or _parse(r["channel_expires_at"]) <= now]
        checks.append(
            Check("every calendar watched", not unwatched, f"{len(rows) - len(unwatched)}/{len(rows)} channels open")
        )

        edits = [self.edits[k] for k in ("move", "delete", "overlap", "personal")]
        late = [e.name for e in edits if e.latency_s is None]
        checks.append(Check("every edit in the mirror", not late, ", ".join(late) or "4/4 mirrored"))

        expected = {
            ("moved_in_google", self.edits["move"].event_id),
            ("deleted_in_google", self.edits["delete"].event_id),
            ("overlap_manual", self.edits["overlap"].event_id),
        }
        every_open = [c for c in result.conflicts if c["status"] == "open"]
        open_ = [c for c in every_open if c["kind"] != "busy_elsewhere"]
        busy = Counter(c["allocation_id"] for c in every_open if c["kind"] == "busy_elsewhere")
        checks.append(
            Check(
                "busy elsewhere: one conflict per colliding allocation",
                set(busy) == self.busy_elsewhere and set(busy.values()) == {1},
                f"{len(busy)} conflicts, expected {len(self.busy_elsewhere)} (weekly block, day off, out of office)",
            )
        )
        seen = Counter((c["kind"], c["event_id"]) for c in open_ if c["calendar_id"] == self.person_key)
        missing = [kind for kind, eid in sorted(expected) if seen[(kind, eid)] != 1]
        extra = [f"{c['kind']} on {c['calendar_id']}" for c in open_ if (c["kind"], c["event_id"]) not in expected]
        checks.append(
            Check(
                "expected conflicts, once each",
                not missing and not extra and len(open_) == len(expected),
                "; ".join(
                    filter(None, [f"missing/dup: {missing}" if missing else "", f"extra: {extra}" if extra else ""])
                )
                or "moved_in_google, deleted_in_google, overlap_manual: 1 each",
            )
        )
        overlap = next((c for c in open_ if c["kind"] == "overlap_manual"), None)
        right_one = overlap is not None and overlap["allocation_id"] == self.overlapped.id
        checks.append(
            Check(
                "overlap names the shift",
                right_one,
                f"allocation {overlap['allocation_id'] if overlap else None} (expected {self.overlapped.id})",
            )
        )

        personal = self.edits["personal"]
        touched = [c["kind"] for c in result.conflicts if c["event_id"] == personal.event_id]
        current = self.api.google(
            "calendar.events.get",
            "GET",
            f"{self._events_path(self.person_key)}/{personal.event_id}",
            user=self.person.email,
        )
        tags = (current.get("extendedProperties") or {}).get("private") or {}
        untouched = current.get("etag") == personal.etag and TAG_SOURCE not in tags
        checks.append(
            Check(
                "personal edit: no conflict, never touched",
                not touched and untouched,
                f"conflicts {touched or 'none'}; etag {'unchanged since the edit' if untouched else 'CHANGED'}",
            )
        )

        published = {
            a.id: a
            for clinic in self.data.clinics
            for a in self.data.upcoming(self.planned_at(clinic.id))
            if a.clinic_id == clinic.id
        }
        duplicates: list[str] = []
        missing_events: list[str] = []
        diverged: list[str] = []
        result.google_counts, result.mirror_counts = {}, {}
        for key, google_id in sorted(self.google_ids.items()):
            events = self.api.google_events(google_id, self.writers.get(key))
            result.google_counts[key] = len(events)
            by_allocation = Counter(
                ((e.get("extendedProperties") or {}).get("private") or {}).get(TAG_ALLOCATION) for e in events
            )
            duplicates += [f"{key}:{a}" for a, n in by_allocation.items() if a and n > 1]
            expected_here = {a.id for a in published.values() if key in self._targets(a)}
            if key == self.person_key:
                expected_here.discard(self.edits_deleted_allocation)
            missing_events += [f"{key}:{a}" for a in sorted(expected_here - set(by_allocation))]
            mirror = self.api.pages("events", calendar_id=key)
            result.mirror_counts[key] = len(mirror)
            truth = {(e["id"], _google_when(e, "start"), _google_when(e, "end")) for e in events}
            mirrored = {
                (e["id"], _parse(e["start"]) if e["start"] else None, _parse(e["end"]) if e["end"] else None)
                for e in mirror
            }
            if truth != mirrored:
                diverged.append(f"{key} (google {len(truth)}, mirror {len(mirrored)}, differ {len(truth ^ mirrored)})")
        checks.append(
            Check("no duplicate event per allocation", not duplicates, ", ".join(duplicates[:5]) or "0 duplicates")
        )
        checks.append(
            Check(
                "every published allocation on its 3 calendars",
                not missing_events,
                ", ".join(missing_events[:5]) or f"{len(published)} allocations x 3 calendars",
            )
        )
        checks.append(
            Check(
                "mirror equals Google, every calendar",
                not diverged,
                ", ".join(diverged[:5]) or f"{len(self.google_ids)} calendars identical",
            )
        )
        checks.append(self._keyless())
        checks.append(self._usage_limits())
        checks.append(self._log_audit(log_dir))
        return checks

    def _usage_limits(self) -> Check:
        """No write of any writer was refused by the emulator's usage limits, and the writers shared the work."""
        rejected = int(self.api.stats().get("usage_limit_rejections", 0))
        owned = Counter(w for w in self.writers.values() if w)
        shares = ", ".join(f"{w}: {n} calendars" for w, n in sorted(owned.items()))
        return Check("no usage-limit rejection", rejected == 0, f"{rejected} rejected; {shares or 'no writer'}")

    def _keyless(self) -> Check:
        """The functions acted as the Workspace user through keyless delegation (IAM-signed assertions)."""
        grants = self.api.stats().get("token_grants", {})
        signed, refused, unverified = (grants.get(k, 0) for k in ("jwt_signed", "refused", "jwt"))
        return Check(
            "keyless delegation",
            signed > 0 and refused == 0 and unverified == 0,
            f"{signed} tokens from IAM-signed assertions, {unverified} unverified, {refused} refused",
        )

    @property
    def edits_deleted_allocation(self) -> str:
        """The allocation whose event the person deleted."""
        return self.future[1].id

    def _targets(self, allocation: demo_data.Allocation) -> tuple[str, str, str]:
        clinic = allocation.clinic_id
        return (f"{clinic}-prof-{allocation.professional_id}", f"{clinic}-room-{allocation.room_id}", "control")

    def planned_at(self, clinic_id: str) -> datetime:
        """The instant the clinic's plan decided what is past (the publish function's own clock)."""
        return _parse(str(self.result.plans[clinic_id]["planned_at"]))

    def _person_future(self, after: datetime) -> list[demo_data.Allocation]:
        """The person's published allocations starting after ``after``, in time order."""
        mine = [
            a
            for a in self.clinic.allocations
            if a.professional_id == self.person.id and a.status in ("reviewed", "adjusted") and a.start > after
        ]
        if len(mine) < 3:
            raise DemoError(f"the dataset gives {self.person.id} fewer than 3 future allocations to edit")
        return sorted(mine, key=lambda a: a.start)

    def _events_path(self, key: str) -> str:
        return f"calendars/{quote(self.google_ids[key], safe='')}/events"

    def _log_audit(self, log_dir: Path) -> Check:
        """No summary, description, e-mail or token the demo created appears in calsync's logs."""
        forbidden = {a.title for a in self.data.allocations}
        forbidden |= {p.email for c in self.data.clinics for p in c.professionals}
        forbidden |= {email for a in self.data.allocations for email in a.attendees}
        forbidden |= {PERSONAL_SUMMARY, PERSONAL_DESCRIPTION, PERSONAL_EDITED_SUMMARY}
        forbidden |= {OVERLAP_SUMMARY, OVERLAP_DESCRIPTION, self.api.endpoints.admin_token}
        forbidden |= {plan["confirm_token"] for plan in self.result.plans.values()}
        # calsync's own processes; the emulators are stand-ins for Google, not part of calsync.
        files = sorted(log_dir.glob("function-*.log")) + sorted(log_dir.glob("scheduler.log"))
        lines = sum(len(path.read_text(errors="replace").splitlines()) for path in files)
        hits = audit(files, forbidden)
        return Check(
            "log audit: no content, e-mails or tokens",
            not hits and lines > 0,
            "; ".join(hits[:3])
            or f"{lines} lines of {len(files)} logs, {len(forbidden)} strings + any e-mail: 0 found",
        )


def audit(files: list[Path], forbidden: set[str]) -> list[str]:
    """The log audit's findings: ``devstack.chaos_audit.audit_logs`` when present, else a plain scan."""
    try:
        chaos_audit = importlib.import_module("devstack.chaos_audit")
    except ImportError:
        chaos_audit = None
    if chaos_audit is not None:
        needles = {s for s in forbidden if len(s) >= chaos_audit.MIN_FORBIDDEN_LEN}
        return [str(finding) for finding in chaos_audit.audit_logs(files, needles)]
    hits: list[str] = []
    for path in files:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            hits += [f"{path.name}:{number}: {text[:3]}…" for text in forbidden if text and text in line]
    return hits


# --- The report ------------------------------------------------------------------------------------


def report(result: DemoResult, console: Console) -> None:
    """The readable report: calendars, events published, conflicts, timings, API calls, checks."""
    if result.health:
        _health_table(result, console)
    if result.plans:
        _events_table(result, console)
    if result.health:
        _conflicts_table(result, console)
    _timings_table(result, console)
    if any(phase.calls for phase in result.phases):
        _calls_table(result, console)
    checks = Table(title="Convergence checks")
    for column in ("check", "ok", "evidence"):
        checks.add_column(column, overflow="fold")
    for check in result.checks:
        checks.add_row(check.name, "[green]yes[/green]" if check.ok else "[red]NO[/red]", check.detail)
    console.print(checks)


def _health_table(result: DemoResult, console: Console) -> None:
    health = Table(title=f"Calendars (GET /health: overall {result.health.get('status', '?')})")
    for column in ("calendar", "kind", "status", "sync", "last sync age (s)", "channel expires", "open conflicts"):
        health.add_column(column)
    for row in result.health.get("calendars", []):
        style = {"ok": "green", "degraded": "yellow", "failing": "red"}.get(row["status"], "")
        health.add_row(
            row["key"],
            row["kind"],
            f"[{style}]{row['status']}[/{style}]",
            str(row.get("sync_status") or "-"),
            str(row.get("last_sync_age_s") if row.get("last_sync_age_s") is not None else "-"),
            (row["channel_expires_at"] or "-")[:16],
            str(row["open_conflicts"]),
        )
    console.print(health)


def _events_table(result: DemoResult, console: Console) -> None:
    events = Table(title="Events published per calendar (plan → apply → Google / mirror)")
    for column in ("calendar", "create", "skip (reasons)", "written", "failed", "Google live", "mirror live"):
        events.add_column(column, justify="right" if column not in ("calendar", "skip (reasons)") else "left")
    planned: dict[str, dict[str, Any]] = {}
    for plan in result.plans.values():
        for section in plan["calendars"]:
            row = planned.setdefault(section["calendar_id"], {"create": 0, "skip": Counter()})
            row["create"] += section["create"]
            row["skip"].update(item["reason"] for item in section["items"] if item["action"] == "skip")
    written: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for progress in result.progress.values():
        for row in progress["calendars"]:
            written[row["calendar_id"]] += row["written"]
            failed[row["calendar_id"]] += row["failed"]
    keys = sorted(set(planned) | set(result.google_counts))
    for key in keys:
        row = planned.get(key, {"create": 0, "skip": Counter()})
        skips = ", ".join(f"{n} {reason}" for reason, n in row["skip"].items()) or "-"
        events.add_row(
            key,
            str(row["create"]),
            skips,
            str(written[key]),
            str(failed[key]),
            str(result.google_counts.get(key, "-")),
            str(result.mirror_counts.get(key, "-")),
        )
    events.add_row(
        "[bold]total[/bold]",
        str(sum(r["create"] for r in planned.values())),
        str(sum(sum(r["skip"].values()) for r in planned.values())),
        str(sum(written.values())),
        str(sum(failed.values())),
        str(sum(result.google_counts.values())),
        str(sum(result.mirror_counts.values())),
    )
    console.print(events)


def _conflicts_table(result: DemoResult, console: Console) -> None:
    conflicts = Table(title="Conflicts (GET /conflicts)")
    for column in ("kind", "calendar", "event", "allocation", "status", "suggestion"):
        conflicts.add_column(column, overflow="fold")
    for item in result.conflicts:
        conflicts.add_row(
            item["kind"],
            item["calendar_id"],
            item["event_id"][:12] + "…",
            item["allocation_id"] or "-",
            item["status"],
            item["suggestion"],
        )
    console.print(conflicts)


def _timings_table(result: DemoResult, console: Console) -> None:
    timings = Table(title="Timings")
    timings.add_column("what")
    timings.add_column("seconds", justify="right")
    for phase in result.phases:
        timings.add_row(phase.name, f"{phase.seconds:.1f}")
    if result.publish_s is not None:
        timings.add_row("[bold]publish wall time (first plan → all done)[/bold]", f"{result.publish_s:.1f}")
        publish = next((p for p in result.phases if p.name == PUBLISH_PHASE), None)
        if publish is not None:
            calls = sum(publish.calls.values())
            minimum = calls / QUOTA_PER_USER_PER_MIN * 60
            timings.add_row(
                f"  quota-bound minimum: {calls} calls at {QUOTA_PER_USER_PER_MIN}/min/user", f"{minimum:.1f}"
            )
    for edit in result.edits:
        latency = f"{edit.latency_s:.2f}" if edit.latency_s is not None else "-"
        timings.add_row(f"edit → mirror: {edit.name}", latency)
    timings.caption = f"webhook debounce {DEMO_DEBOUNCE_S} s here (production default 30 s)"
    console.print(timings)


def _calls_table(result: DemoResult, console: Console) -> None:
    calls = Table(title="Calendar API calls made by calsync (emulator stats, the demo's own calls taken out)")
    calls.add_column("method")
    phases = [phase for phase in result.phases if phase.name not in ("start the stack", "total")]
    for phase in phases:
        calls.add_column(phase.name, justify="right")
    calls.add_column("total", justify="right")
    methods = sorted({m for phase in phases for m in phase.calls})
    for method in methods:
        per = [phase.calls.get(method, 0) for phase in phases]
        calls.add_row(method, *map(str, per), str(sum(per)))
    per_total = [sum(phase.calls.values()) for phase in phases]
    calls.add_row("[bold]all calls[/bold]", *map(str, per_total), str(sum(per_total)))
    per_batch = [phase.batches for phase in phases]
    calls.add_row("batch requests (envelopes)", *map(str, per_batch), str(sum(per_batch)))
    per_push = [phase.pushes for phase in phases]
    calls.add_row("push notifications delivered", *map(str, per_push), str(sum(per_push)))
    quota = result.stats.get("quota_rejections", 0)
    calls.caption = f"quota rejections: {quota} · faults injected: {result.stats.get('faults_injected', 0)}"
    console.print(calls)


# --- Entry points ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the stack's processes (they inherit ours), restored afterwards."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(
    console: Console,
    *,
    spec: demo_data.DatasetSpec | None = None,
    batch_size: int | None = None,
) -> DemoResult:
    """Start a private stack, run every step and check, stop the stack; the result (never raises)."""
    state_dir = Path(tempfile.mkdtemp(prefix="calsync-demo-"))
    config = stack.StackConfig(
        state_dir=state_dir,
        ports=dict.fromkeys(stack.PORT_OFFSETS, 0),
        usage_limits=stack.usage_limits_from(os.environ),
    )
    settings = {"CALSYNC_DEBOUNCE_S": DEMO_DEBOUNCE_S}
    if batch_size is not None:
        settings["CALSYNC_BATCH_SIZE"] = str(batch_size)
    started = time.monotonic()
    console.print(f"Starting a fresh stack for the demo (state in {state_dir}, free ports).")
    dataset = demo_data.build(datetime.now(UTC), spec)
    result = DemoResult(dataset=dataset, log_dir=config.log_dir)
    try:
        with _environment(settings):
            up = stack.up(config, say=console.print)
        console.print(endpoints_table(up.endpoints, up.processes))
        up_s = time.monotonic() - started
        demo = Demo(Clients(up.endpoints), dataset, console)
        result = demo.result
        result.log_dir = config.log_dir
        result.phases.append(Phase("start the stack", seconds=up_s))
        demo.load()
        demo.provision()
        demo.personal_event()
        demo.publish()
        demo.people_edit()
        demo.own_calendars()
        result.stats = demo.api.stats()
        with demo.phase("verify convergence"):
            demo.verify(config.log_dir)
    except (DemoError, stack.StackError, requests.RequestException, KeyError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    except Exception:
        # Whatever broke, the report must say what it was, and the stack must still stop.
        result.error = "unexpected error:\n" + traceback.format_exc(limit=6)
    finally:
        stopped = stack.down(config) or []
        clean = all(item.outcome in ("stopped", "already gone") for item in stopped)
        result.checks.append(
            Check(
                "stack stopped",
                clean and not any(stack.is_ours(item.record) for item in stopped),
                f"{len(stopped)} processes: " + ", ".join(sorted({item.outcome for item in stopped})),
            )
        )
    result.phases.append(Phase("total", seconds=time.monotonic() - started))
    if result.ok:
        shutil.rmtree(state_dir, ignore_errors=True)  # kept only when something failed
    return result


def run(console: Console, *, spec: demo_data.DatasetSpec | None = None, batch_size: int | None = None) -> int:
    """The whole demo with its report; the exit code (0 only when everything converged)."""
    if not console.is_terminal and console.width < REPORT_WIDTH:
        console.width = REPORT_WIDTH  # a log file or CI output: keep the tables' rows on one line
    procs.exit_on_sigterm()  # a stopped demo still stops its stack
    result = run_demo(console, spec=spec, batch_size=batch_size)
    report(result, console)
    total = next(p.seconds for p in result.phases if p.name == "total")
    if result.error is not None:
        console.print(f"[red]The demo stopped early:[/red] {result.error}")
    failed = [c.name for c in result.checks if not c.ok]
    if not result.ok:
        if failed:
            console.print(f"[red]Not converged: {', '.join(failed)}.[/red]")
        console.print(f"Logs kept in {result.log_dir} ({total:.0f}s in all).")
        return 1
    console.print(f"[green]Everything converged: {len(result.checks)} checks hold ({total:.0f}s in all).[/green]")
    return 0
