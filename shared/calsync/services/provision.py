"""Provisioning: one Google calendar per professional and per room of a clinic, shared and watched.

``POST /provision {"clinic_id"}``: for each professional and room without a registered calendar,
calendars.insert, register it under its key (``plan.professional_key`` / ``plan.room_key``), share a
professional's calendar with their e-mail (acl, writer: they manage their own agenda), open the
watch channel (which enqueues the initial sync). The control calendar from the configuration must
exist; it is registered under ``control`` and watched too (publishes write to it). Idempotent: a
second call creates nothing, and a calendar left without a live channel (a crash between steps)
gets one.

A crash between calendars.insert and the registration can leave an unregistered Google calendar;
the next call creates another one (Google has no idempotency key on calendars.insert). The orphan is
visible in the service account's calendar list and harmless.
"""

from __future__ import annotations

import contextlib

from calsync import errors
from calsync.logs import get_logger
from calsync.model import CalendarKind, CalendarRecord
from calsync.ports import CalendarApi, Clock, PublishStore, TaskQueue
from calsync.results import Provisioned
from calsync.services.channels import ChannelConfig, current_channel, open_channel
from calsync.services.our_events import CONTROL_KEY, professional_key, room_key
from calsync.services.writers import Usage, WriterConfig, choose_writer, reserve

log = get_logger(__name__)

ACL_ROLE = "writer"


def provision_clinic(
    clinic_id: str,
    *,
    api: CalendarApi,
    store: PublishStore,
    queue: TaskQueue,
    clock: Clock,
    channels: ChannelConfig,
    control_calendar_id: str,
    time_zone: str = "America/Sao_Paulo",
    writers: WriterConfig | None = None,
) -> Provisioned:
    """Create what is missing for a clinic; answers counts and the calendars' keys."""
    professionals = store.list_professionals(clinic_id)
    rooms = store.list_rooms(clinic_id)
    if not professionals and not rooms:
        raise errors.UnknownResource("the clinic has no professionals or rooms", details={"clinic_id": clinic_id})
    api.get_calendar(control_calendar_id)  # NotFound: the configured control calendar does not exist
    created = shared = watched = 0
    keys: list[str] = []
    if store.get_calendar(CONTROL_KEY) is None:
        store.put_calendar(
            CalendarRecord(
                key=CONTROL_KEY, google_calendar_id=control_calendar_id, kind="control", created_at=clock.now()
            )
        )
    # Publishes write the control calendar too: it is watched and synced like every other one.
    if current_channel(store.list_channels_for_calendar(CONTROL_KEY), clock.now()) is None:
        open_channel(CONTROL_KEY, api=api, store=store, queue=queue, clock=clock, config=channels)
        watched += 1
    wanted: list[tuple[str, CalendarKind, str, str, str | None]] = [
        (professional_key(clinic_id, p.id), "professional", p.id, p.name, p.email) for p in professionals
    ]
    wanted += [(room_key(clinic_id, r.id), "room", r.id, r.name, None) for r in rooms]
    for key, kind, owner_id, name, email in wanted:
        keys.append(key)
        if store.get_calendar(key) is None:
            pool = writers or WriterConfig()
            writer = choose_writer(store, pool, clock.now())
            reserve(store, writer, Usage(calendars=1, shares=1 if email else 0, requests=2), pool, clock.now())
            google_id = api.insert_calendar(name, time_zone=time_zone, writer=writer)
            store.put_calendar(
                CalendarRecord(
                    key=key,
                    google_calendar_id=google_id,
                    kind=kind,
                    clinic_id=clinic_id,
                    owner_id=owner_id,
                    created_at=clock.now(),
                    writer=writer,
                )
            )
            created += 1
            if email:
                with contextlib.suppress(errors.Duplicate):  # already shared
                    api.insert_acl(google_id, email=email, role=ACL_ROLE)
                shared += 1
        if current_channel(store.list_channels_for_calendar(key), clock.now()) is None:
            open_channel(key, api=api, store=store, queue=queue, clock=clock, config=channels)
            watched += 1
    log.info("provision.done", clinic_id=clinic_id, created=created, count=watched)
    return Provisioned(clinic_id=clinic_id, created=created, shared=shared, watched=watched, calendars=keys)
