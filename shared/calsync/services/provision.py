"""Provisioning: one Google calendar per professional and per room of a clinic, shared and watched.

Google puts an account that creates too many calendars or shares them with too many people in a short
period in read-only mode for hours (https://support.google.com/a/answer/2905486), so provisioning is
a paced, resumable job rather than one burst:

- ``start_provision`` (``POST /provision {"clinic_id"}``) registers and watches the control calendar
  from the configuration (it must exist; publishes write it), opens a channel for any registered
  calendar left without one, and for each professional and room without a calendar picks a writer
  (``services.writers.choose_writer``), reserves the calendar and its share on that writer's usage
  timeline and enqueues one task at the reserved instant. Running it again is harmless: a calendar
  whose task is scheduled (``ProvisionMark``) is left to it, tasks are named per calendar (Cloud
  Tasks refuses a name it has seen), and a task finds its calendar done.
- ``provision_calendar`` (the task, ``POST /provision/tasks/calendar``) waits out its writer's lockout
  like a publish chunk (``services.writer_gate``), then calendars.insert as that writer, registers the
  calendar under its key (``plan.professional_key`` / ``plan.room_key``) with the writer for life,
  shares a professional's calendar with their e-mail (acl, writer: they manage their own agenda) and
  opens the watch channel (which enqueues the initial sync).
- ``provision_status`` (``GET /provision/{clinic_id}``): how many of the clinic's calendars exist and
  are watched, and which writers are locked until when.
- ``provision_clinic`` runs every step now, in order (tools, chaos): still on the writers' budget.

A crash between calendars.insert and the registration can leave an unregistered Google calendar;
the task's retry creates another one (Google has no idempotency key on calendars.insert). The orphan
is visible in its writer's calendar list and harmless.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from calsync import errors
from calsync.logs import get_logger
from calsync.model import CalendarKind, CalendarRecord, ProvisionMark
from calsync.ports import CalendarApi, Clock, PublishStore, TaskQueue, TaskRequest
from calsync.results import Provisioned
from calsync.services.channels import ChannelConfig, current_channel, open_channel
from calsync.services.our_events import CONTROL_KEY, professional_key, room_key
from calsync.services.plan import PublishConfig
from calsync.services.tasks import task_key
from calsync.services.writer_gate import GuardedApi, deferred_task
from calsync.services.writers import Usage, WriterConfig, choose_writer, record_lockout, reserve

log = get_logger(__name__)

ACL_ROLE = "writer"
PROVISION_TASK_ROUTE = "/provision/tasks/calendar"
TIME_ZONE = "America/Sao_Paulo"
# A scheduled creation task not done this long after its slot (dropped, or waiting out a lockout that
# outlasts it) is scheduled again by the next provisioning; the task itself is idempotent.
MARK_GRACE_S = 6 * 3600


@dataclass(frozen=True)
class Wanted:
    """A calendar the clinic's directory asks for."""

    key: str
    kind: CalendarKind
    clinic_id: str
    owner_id: str
    name: str
    email: str | None

    def usage(self) -> Usage:
        """What creating it costs its writer: the calendar, its share, and calls (insert, acl, watch)."""
        return Usage(calendars=1, shares=1 if self.email else 0, requests=3 if self.email else 2)


def wanted_calendars(clinic_id: str, store: PublishStore) -> list[Wanted]:
    """The clinic's professionals' and rooms' calendars (``UnknownResource`` for an empty clinic)."""
    professionals = store.list_professionals(clinic_id)
    rooms = store.list_rooms(clinic_id)
    if not professionals and not rooms:
        raise errors.UnknownResource("the clinic has no professionals or rooms", details={"clinic_id": clinic_id})
    wanted = [
        Wanted(professional_key(clinic_id, p.id), "professional", clinic_id, p.id, p.name, p.email)
        for p in professionals
    ]
    return wanted + [Wanted(room_key(clinic_id, r.id), "room", clinic_id, r.id, r.name, None) for r in rooms]


def _watched(key: str, store: PublishStore, now: datetime) -> bool:
    return current_channel(store.list_channels_for_calendar(key), now) is not None


@dataclass(frozen=True)
class Provisioning:
    """What provisioning works with: the ports, the channels' settings and the writer pool.

    ``api`` creates calendars (through the writer pool) and watches the control calendar; the
    functions below take the clinic's own account, when it has one, for its calendars' channels.
    """

    api: CalendarApi
    store: PublishStore
    queue: TaskQueue
    clock: Clock
    channels: ChannelConfig
    writers: WriterConfig = field(default_factory=WriterConfig)

    def watch(self, key: str, api: CalendarApi | None = None) -> None:
        """Open the calendar's channel as ``api`` (default: ``self.api``); it enqueues the initial sync."""
        open_channel(
            key, api=api or self.api, store=self.store, queue=self.queue, clock=self.clock, config=self.channels
        )

    def status(self, clinic_id: str, scheduled: int | None = None) -> Provisioned:
        """``provision_status`` of the clinic (with how many calendars this step scheduled or created)."""
        done = provision_status(clinic_id, store=self.store, clock=self.clock)
        return done if scheduled is None else done.model_copy(update={"scheduled": scheduled})


def _control(p: Provisioning, control_id: str) -> int:
    """Register and watch the configured control calendar; channels opened (0 or 1)."""
    p.api.get_calendar(control_id)  # NotFound: the configured control calendar does not exist
    if p.store.get_calendar(CONTROL_KEY) is None:
        p.store.put_calendar(
            CalendarRecord(key=CONTROL_KEY, google_calendar_id=control_id, kind="control", created_at=p.clock.now())
        )
    if _watched(CONTROL_KEY, p.store, p.clock.now()):
        return 0
    p.watch(CONTROL_KEY)
    return 1


def provision_task(config: PublishConfig, clinic_id: str, key: str, writer: str, at: datetime) -> TaskRequest:
    """The task creating one calendar as ``writer``, at its reserved instant (named per calendar)."""
    return TaskRequest(
        queue=config.publish_queue,
        url=config.publish_url.rstrip("/") + PROVISION_TASK_ROUTE,
        payload={"clinic_id": clinic_id, "calendar_key": key, "writer": writer},
        name=f"{config.env}-provision-{task_key(key)}",
        schedule_time=at,
    )


def start_provision(
    clinic_id: str, p: Provisioning, config: PublishConfig, *, clinic_api: CalendarApi | None = None
) -> Provisioned:
    """Enqueue a paced task per missing calendar (see the module docstring); answers the status.

    ``clinic_api`` acts as the clinic's connected Google account (OAuth), when it has one: its
    calendars are watched as that account; the control calendar stays ``p.api``'s.
    """
    store = p.store
    wanted = wanted_calendars(clinic_id, store)
    watched = _control(p, config.control_calendar_id)
    scheduled = 0
    for item in wanted:
        now = p.clock.now()
        if store.get_calendar(item.key) is None:
            mark = store.get_provision_mark(item.key)
            if mark is not None and now <= mark.at + timedelta(seconds=MARK_GRACE_S):
                continue  # its task is scheduled (a retried or lost one is rescheduled after the grace)
            writer = choose_writer(store, p.writers, now)
            at = reserve(store, writer, item.usage(), p.writers, now)
            store.put_provision_mark(ProvisionMark(calendar_key=item.key, writer=writer, at=at))
            p.queue.enqueue(provision_task(config, clinic_id, item.key, writer, at))
            scheduled += 1
        elif not _watched(item.key, store, now):
            p.watch(item.key, clinic_api)
            watched += 1
    log.info("provision.started", clinic_id=clinic_id, enqueued=scheduled, count=watched)
    return p.status(clinic_id, scheduled)


def provision_calendar(
    clinic_id: str,
    calendar_key: str,
    writer: str,
    p: Provisioning,
    config: PublishConfig,
    *,
    task: TaskRequest | None = None,
) -> Provisioned:
    """One calendar's task: create it as ``writer``, register, share and watch it (idempotent)."""
    store, clock = p.store, p.clock
    item = next((w for w in wanted_calendars(clinic_id, store) if w.key == calendar_key), None)
    record = store.get_calendar(calendar_key)
    if item is None or (record is not None and _watched(calendar_key, store, clock.now())):
        return p.status(clinic_id)  # gone from the directory, or done
    who = record.writer if record is not None and record.writer is not None else writer
    admission = store.admit_writer(who, clock.now(), probe_s=p.writers.probe_s)
    again = task or provision_task(config, clinic_id, calendar_key, who, clock.now())
    if admission.wait_until is not None:
        p.queue.enqueue(deferred_task(again, admission.wait_until))
        return p.status(clinic_id)
    guarded = GuardedApi(p.api, who, probe=admission.probe)
    try:
        _create(item, record, who, replace(p, api=guarded))
    except errors.CalendarApiError:
        if guarded.quota is None:
            raise
        p.queue.enqueue(deferred_task(again, record_lockout(store, who, p.writers, clock.now())))
        return p.status(clinic_id)
    if admission.probe:
        store.unlock_writer(who, clock.now())
    return p.status(clinic_id)


def _create(
    item: Wanted, record: CalendarRecord | None, writer: str, p: Provisioning, time_zone: str = TIME_ZONE
) -> None:
    """calendars.insert as ``p.api`` (unless registered), share with the professional, open the channel."""
    if record is None:
        google_id = p.api.insert_calendar(item.name, time_zone=time_zone, writer=writer)
        record = CalendarRecord(
            key=item.key,
            google_calendar_id=google_id,
            kind=item.kind,
            clinic_id=item.clinic_id,
            owner_id=item.owner_id,
            created_at=p.clock.now(),
            writer=writer,
        )
    p.store.put_calendar(record)
    if item.email:
        with contextlib.suppress(errors.Duplicate):  # already shared
            p.api.insert_acl(record.google_calendar_id, email=item.email, role=ACL_ROLE)
    p.watch(item.key)
    log.info("provision.calendar", calendar_key=item.key, calendar_kind=item.kind)


def provision_status(clinic_id: str, *, store: PublishStore, clock: Clock) -> Provisioned:
    """``GET /provision/{clinic_id}``: the clinic's calendars registered and watched, locked writers."""
    now = clock.now()
    wanted = wanted_calendars(clinic_id, store)
    records = {w.key: store.get_calendar(w.key) for w in wanted}
    created = [w for w in wanted if records[w.key] is not None]
    watched = sum(1 for w in created if _watched(w.key, store, now))
    locked = {r.writer: r.locked_until for r in store.list_writers() if r.locked_until and r.locked_until > now}
    return Provisioned(
        clinic_id=clinic_id,
        created=len(created),
        shared=sum(1 for w in created if w.email),
        watched=watched,
        calendars=[w.key for w in wanted],
        total=len(wanted),
        done=watched == len(wanted),
        waiting=locked,
    )


def provision_clinic(
    clinic_id: str,
    p: Provisioning,
    *,
    control_calendar_id: str,
    time_zone: str = TIME_ZONE,
    clinic_api: CalendarApi | None = None,
) -> Provisioned:
    """Every step now, in order (no task): the control calendar, then each missing calendar as its writer.

    ``clinic_api`` acts as the clinic's connected Google account (OAuth), when it has one.
    """
    own = replace(p, api=clinic_api or p.api)
    watched = _control(p, control_calendar_id)
    created = 0
    for item in wanted_calendars(clinic_id, p.store):
        if p.store.get_calendar(item.key) is None:
            writer = choose_writer(p.store, p.writers, p.clock.now())
            reserve(p.store, writer, item.usage(), p.writers, p.clock.now())
            _create(item, None, writer, own, time_zone)
            created += 1
        elif not _watched(item.key, p.store, p.clock.now()):
            own.watch(item.key)
            watched += 1
    log.info("provision.done", clinic_id=clinic_id, created=created, count=watched)
    return p.status(clinic_id, created)
