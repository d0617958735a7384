"""Plan + apply against a reference model of what Google should hold (hypothesis stateful, on the fakes).

Two clinics share the control calendar. Rules add, change, reassign and cancel allocations of either
clinic, publish a clinic (with or without ``clear_future``), leave a tagged event of a clinic that no
allocation wants (as an older schedule would), let a person create an untagged event and move the
clock forward. A clinic's calendars are synced before its publish, as push and polling would. The reference
says what Google must hold after each publish, and the invariant compares it with every calendar:

- one live copy of each published allocation on each current target, none on other calendars;
- untagged events, other clinics' events and events that had started by ``planned_at`` untouched
  (the same etag: not even rewritten with the same content);
- a second plan right after a publish writes nothing (no duplicate, nothing left to do).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from calsync import errors
from calsync.bootstrap import publish_config, sync_config
from calsync.model import Allocation, CalendarRecord, Professional, Room
from calsync.services.apply import ApplyCommand, Publishing
from calsync.services.our_events import event_body
from calsync.services.plan import (
    CONTROL_KEY,
    PlanCommand,
    desired_for,
    event_id,
    make_plan,
    professional_key,
    room_key,
)
from calsync.services.sync import SyncCommand, sync_calendar
from calsync.testing import FakeCalendarApi, FrozenClock, InMemoryStateStore, RecordingTaskQueue
from calsync.testing.settings import local_settings

ENV = "dev"
CLINICS = ("ca", "cb")
PEOPLE = ("p0", "p1")
ROOMS = ("r0", "r1")
CONTROL = "control@group"
SETTINGS = local_settings(
    environment=ENV,
    control_calendar_id=CONTROL,
    publish_url="http://127.0.0.1:1",
    sync_url="http://sync.local/",
    batch_size=4,
    display_time_zone="UTC",
)
CONFIG = publish_config(SETTINGS)
SYNC = sync_config(SETTINGS)

Content = tuple[datetime, datetime, str, tuple[str, ...]]


@dataclass
class Expected:
    """One event the reference says Google holds: its content, and whose it is."""

    content: Content
    clinic: str | None  # None: a person's untagged event


def _content(body: dict[str, Any]) -> Content:
    start = datetime.fromisoformat(body["start"]["dateTime"])
    end = datetime.fromisoformat(body["end"]["dateTime"])
    attendees = tuple(sorted((a.get("email") or "").lower() for a in body.get("attendees") or []))
    return start, end, body.get("summary") or "", attendees


class PublishModel(RuleBasedStateMachine):
    """The system on the fakes next to a reference of what Google must hold."""

    @initialize()
    def setup(self) -> None:
        self.clock = FrozenClock()
        self.api = FakeCalendarApi(self.clock)
        self.store = InMemoryStateStore()
        self.queue = RecordingTaskQueue()
        self.records: dict[str, CalendarRecord] = {
            CONTROL_KEY: CalendarRecord(key=CONTROL_KEY, google_calendar_id=CONTROL, kind="control")
        }
        for clinic in CLINICS:
            people = [Professional(clinic_id=clinic, id=p, name=p, email=f"{p}.{clinic}@x.test") for p in PEOPLE]
            self.store.replace_professionals(clinic, people)
            self.store.replace_rooms(clinic, [Room(clinic_id=clinic, id=r, name=r) for r in ROOMS])
            for owner in PEOPLE:
                key = professional_key(clinic, owner)
                self.records[key] = CalendarRecord(
                    key=key, google_calendar_id=f"{key}@group", kind="professional", clinic_id=clinic, owner_id=owner
                )
            for owner in ROOMS:
                key = room_key(clinic, owner)
                self.records[key] = CalendarRecord(
                    key=key, google_calendar_id=f"{key}@group", kind="room", clinic_id=clinic, owner_id=owner
                )
        for record in self.records.values():
            self.api.add_calendar(record.google_calendar_id)
            self.store.put_calendar(record)
        self.allocations: dict[str, Allocation] = {}
        self.expected: dict[tuple[str, str], Expected] = {}  # (calendar key, event id) → what Google holds
        self.serial = 0

    # --- agendador -----------------------------------------------------------------------------

    def _put(self, allocation: Allocation) -> None:
        self.allocations[allocation.id] = allocation
        self.store.put_allocations([allocation])

    @rule(
        clinic=st.sampled_from(CLINICS),
        prof=st.sampled_from(PEOPLE),
        room=st.sampled_from(ROOMS),
        hours=st.integers(1, 72),
        status=st.sampled_from(["reviewed", "adjusted", "draft"]),
    )
    def add(self, clinic: str, prof: str, room: str, hours: int, status: str) -> None:
        self.serial += 1
        start = self.clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
        self._put(
            Allocation(
                id=f"{clinic}-a{self.serial}",
                clinic_id=clinic,
                professional_id=prof,
                room_id=room,
                start=start,
                end=start + timedelta(hours=1),
                status=status,  # type: ignore[arg-type]
                title=f"consulta {self.serial}",
                attendees=[f"pat{self.serial}@x.test"],
                revision=1,
            )
        )

    def _pick(self, data: st.DataObject) -> Allocation:
        return self.allocations[data.draw(st.sampled_from(sorted(self.allocations)))]

    @precondition(lambda self: bool(self.allocations))
    @rule(data=st.data(), shift=st.integers(-6, 12), retitle=st.booleans())
    def change(self, data: st.DataObject, shift: int, retitle: bool) -> None:
        old = self._pick(data)
        update: dict[str, Any] = {"revision": old.revision + 1}
        update |= {"start": old.start + timedelta(hours=shift), "end": old.end + timedelta(hours=shift)}
        if retitle:
            update["title"] = f"{old.title}+"
        self._put(old.model_copy(update=update))

    @precondition(lambda self: bool(self.allocations))
    @rule(data=st.data(), prof=st.sampled_from(PEOPLE), room=st.sampled_from(ROOMS))
    def reassign(self, data: st.DataObject, prof: str, room: str) -> None:
        old = self._pick(data)
        self._put(old.model_copy(update={"professional_id": prof, "room_id": room, "revision": old.revision + 1}))

    @precondition(lambda self: bool(self.allocations))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        old = self._pick(data)
        self._put(old.model_copy(update={"status": "cancelled", "revision": old.revision + 1}))

    # --- Google --------------------------------------------------------------------------------

    @rule(
        key=st.sampled_from(sorted([CONTROL_KEY, *(professional_key(c, p) for c in CLINICS for p in PEOPLE)])),
        hours=st.integers(-2, 48),
    )
    def person_creates_untagged(self, key: str, hours: int) -> None:
        start = self.clock.now() + timedelta(hours=hours, minutes=10)
        body = {
            "summary": "dentist",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=50)).isoformat()},
        }
        event = self.api.insert_event(self.records[key].google_calendar_id, body)
        self.expected[(key, event.id)] = Expected(_content(body), None)

    @rule(clinic=st.sampled_from(CLINICS), hours=st.integers(1, 48), on_control=st.booleans())
    def leftover_of_an_older_schedule(self, clinic: str, hours: int, on_control: bool) -> None:
        """A tagged event of ``clinic`` no allocation wants (its allocation is gone from agendador)."""
        self.serial += 1
        key = CONTROL_KEY if on_control else professional_key(clinic, "p0")
        allocation = Allocation(
            id=f"gone-{self.serial}",
            clinic_id=clinic,
            professional_id="p0",
            room_id="r0",
            start=self.clock.now() + timedelta(hours=hours),
            end=self.clock.now() + timedelta(hours=hours + 1),
            status="reviewed",
            title="old schedule",
        )
        eid = event_id(ENV, allocation.id, key)
        desired = desired_for(allocation, self.records[key])
        body = event_body(ENV, allocation.id, eid, desired, clinic_id=clinic)
        self.api.insert_event(self.records[key].google_calendar_id, body)
        self.expected[(key, eid)] = Expected(_content(body), clinic)

    @rule(hours=st.integers(0, 8))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours * 3600 + 600)

    # --- publish -------------------------------------------------------------------------------

    def _sync(self, clinic: str) -> None:
        """Sync the clinic's calendars and the control calendar (what push and polling would do)."""
        for key in sorted(k for k, r in self.records.items() if r.clinic_id in (clinic, None)):
            sync_calendar(
                SyncCommand(calendar_key=key, reason="poll"),
                api=self.api,
                store=self.store,
                queue=RecordingTaskQueue(),
                clock=self.clock,
                config=SYNC,
            )

    def _command(self, clinic: str, clear: bool) -> PlanCommand:
        now = self.clock.now()
        return PlanCommand(clinic, now - timedelta(days=5), now + timedelta(days=10), clear_future=clear)

    def _google(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (key, eid): body
            for key, record in self.records.items()
            for eid, body in self.api.calendars[record.google_calendar_id].items()
            if body.get("status") != "cancelled"
        }

    def _reference_publish(self, clinic: str, now: datetime, window: tuple[datetime, datetime], clear: bool) -> None:
        """What Google must hold after ``clinic``'s publish judged at ``now``."""
        keys = [k for k, r in self.records.items() if r.clinic_id == clinic or k == CONTROL_KEY]
        wanted: set[tuple[str, str]] = set()
        for allocation in self.allocations.values():
            if allocation.clinic_id != clinic or allocation.status == "draft":
                continue
            if not window[0] <= allocation.start < window[1]:
                continue
            live = allocation.status != "cancelled"
            targets = {
                professional_key(clinic, allocation.professional_id),
                room_key(clinic, allocation.room_id),
                CONTROL_KEY,
            }
            for key in keys:
                eid = event_id(ENV, allocation.id, key)
                current = self.expected.get((key, eid))
                if live and key in targets:
                    wanted.add((key, eid))
                if current is not None and current.content[0] <= now:
                    continue  # started: never touched
                if live and key in targets:
                    if allocation.start > now:
                        desired = desired_for(allocation, self.records[key])
                        content = (desired.start, desired.end, desired.summary, desired.attendees)
                        self.expected[(key, eid)] = Expected(content, clinic)
                elif current is not None:
                    del self.expected[(key, eid)]
        if clear:
            for (key, eid), event in list(self.expected.items()):
                start, end = event.content[0], event.content[1]
                if event.clinic != clinic or (key, eid) in wanted or start <= now:
                    continue
                if start < window[1] and end > window[0]:
                    del self.expected[(key, eid)]

    @rule(clinic=st.sampled_from(CLINICS), clear=st.booleans())
    def publish(self, clinic: str, clear: bool) -> None:
        self._sync(clinic)
        command = self._command(clinic, clear)
        plan = make_plan(command, store=self.store, clock=self.clock, config=CONFIG)
        before = self._google()
        publishing = Publishing(self.store, self.api, self.queue, self.clock, CONFIG)
        publishing.start_apply(ApplyCommand(plan.plan_id, plan.confirm_token, plan.confirm_clear_future_token))
        while self.queue.tasks:
            for task in self.queue.pop_all():
                p = task.payload
                try:
                    publishing.run_chunk(p["plan_id"], p["calendar_key"], p["chunk"])
                except errors.RateLimited:
                    self.queue.tasks.append(task)
        for section in plan.calendars:
            assert set(section.deletes_by_clinic or {}) <= {clinic}, section
        self._reference_publish(clinic, plan.planned_at, (command.time_min, command.time_max), clear)
        after = self._google()
        for where, body in before.items():
            if _content(body)[0] <= plan.planned_at:
                assert after.get(where, {}).get("etag") == body["etag"], f"a started event was changed: {where}"
        self.check_google()
        self._sync(clinic)
        again = make_plan(command, store=self.store, clock=self.clock, config=CONFIG)
        writes = again.totals.create + again.totals.update + again.totals.delete
        assert writes == 0, [(c.calendar_id, i.action, i.reason) for c in again.calendars for i in c.items]

    # --- the invariant -------------------------------------------------------------------------

    @invariant()
    def check_google(self) -> None:
        """Google holds exactly the reference (ids and content), on every calendar."""
        if not hasattr(self, "api"):
            return
        google = {where: _content(body) for where, body in self._google().items()}
        expected = {where: e.content for where, e in self.expected.items()}
        missing = sorted(set(expected) - set(google))
        extra = sorted(set(google) - set(expected))
        assert (missing, extra) == ([], []), "Google differs from the reference: (missing, unexpected)"
        changed = sorted(w for w in expected if expected[w] != google[w])
        assert not changed, f"content differs: {[(w, expected[w], google[w]) for w in changed]}"


PublishModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestPublishModel = PublishModel.TestCase
