"""The use cases' settings and store for the HTTP entry points, as the composition root builds them."""

from __future__ import annotations

from calsync.bootstrap import (
    Container,
    availability_config,
    health_config,
    jobs_config,
    publish_config,
    push_config,
    sync_config,
    writer_config,
)
from calsync.ports import PublishStore

__all__ = [
    "availability_config",
    "health_config",
    "jobs_config",
    "publish_config",
    "publish_store",
    "push_config",
    "sync_config",
    "writer_config",
]


def publish_store(container: Container) -> PublishStore:
    """The container's store as the publish use cases' port (the Firestore adapter and the fake implement it)."""
    return container.store
