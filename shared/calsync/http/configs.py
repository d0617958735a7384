"""The use cases' settings, store and ports for the HTTP entry points, as the composition root builds them.

A route passes ``**io_ports(c)`` (the Calendar API, the store, the clock) or ``**publish_ports(c)``
(the same and the publish config) to a use case, adding the few other ports it takes by name.
"""

from __future__ import annotations

from typing import TypedDict

from calsync.bootstrap import (
    Container,
    availability_config,
    channel_config,
    health_config,
    jobs_config,
    publish_config,
    push_config,
    sync_config,
    writer_config,
)
from calsync.ports import CalendarApi, Clock, PublishStore
from calsync.services.apply import Publishing
from calsync.services.plan import PublishConfig
from calsync.services.provision import Provisioning

__all__ = [
    "IoPorts",
    "PublishPorts",
    "availability_config",
    "health_config",
    "io_ports",
    "jobs_config",
    "provisioning",
    "publish_config",
    "publish_ports",
    "publish_store",
    "publishing",
    "push_config",
    "sync_config",
    "writer_config",
]


def publish_store(container: Container) -> PublishStore:
    """The container's store as the publish use cases' port (the Firestore adapter and the fake implement it)."""
    return container.store


class IoPorts(TypedDict):
    """The ports most use cases take, by their keyword names."""

    api: CalendarApi
    store: PublishStore
    clock: Clock


class PublishPorts(IoPorts):
    """The publish use cases' ports and config (plan, apply, ad-hoc events, conflict resolution)."""

    config: PublishConfig


def io_ports(container: Container, api: CalendarApi | None = None) -> IoPorts:
    """The container's Calendar API (or ``api``, e.g. a clinic's own account), store and clock."""
    return {"api": api or container.calendar_api, "store": publish_store(container), "clock": container.clock}


def publish_ports(container: Container, api: CalendarApi | None = None) -> PublishPorts:
    """The container's Calendar API (or ``api``), store, clock and publish config."""
    return {**io_ports(container, api), "config": publish_config(container.settings)}


def provisioning(container: Container, api: CalendarApi | None = None) -> Provisioning:
    """Provisioning over the container's ports (or ``api``), with its channel and writer-pool settings."""
    return Provisioning(
        **io_ports(container, api),
        queue=container.queue,
        channels=channel_config(container.settings),
        writers=writer_config(container.settings),
    )


def publishing(container: Container) -> Publishing:
    """Applying plans over the container's ports, with its publish and writer-pool settings."""
    return Publishing(**publish_ports(container), queue=container.queue, writers=writer_config(container.settings))
