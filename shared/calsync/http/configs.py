"""The use cases' settings, derived from ``Settings`` for the HTTP entry points (one builder each)."""

from __future__ import annotations

from calsync.bootstrap import Container
from calsync.config import Settings
from calsync.ports import PublishStore
from calsync.services.channels import channel_config
from calsync.services.health import HealthConfig
from calsync.services.jobs import JobsConfig
from calsync.services.plan import PublishConfig
from calsync.services.push import PushConfig
from calsync.services.sync import SyncConfig


def sync_config(settings: Settings) -> SyncConfig:
    """The sync use case's settings."""
    return SyncConfig(
        env=settings.environment,
        sync_queue=settings.sync_queue,
        sync_url=settings.sync_url,
        past_days=settings.sync_past_days,
        future_days=settings.sync_future_days,
        lock_lease_s=settings.lock_lease_s,
        run_budget_s=settings.sync_run_budget_s,
        time_zone=settings.display_time_zone,
    )


def publish_config(settings: Settings) -> PublishConfig:
    """The publish use cases' settings."""
    return PublishConfig(
        env=settings.environment,
        control_calendar_id=settings.control_calendar_id,
        publish_queue=settings.publish_queue,
        publish_url=settings.publish_url,
        batch_size=settings.batch_size,
        sync_queue=settings.sync_queue,
        sync_url=settings.sync_url,
        time_zone=settings.display_time_zone,
    )


def jobs_config(settings: Settings) -> JobsConfig:
    """The scheduled jobs' settings."""
    return JobsConfig(
        channel=channel_config(settings),
        renew_url=settings.renew_url,
        renew_queue=settings.renew_queue,
        renew_inline_max=settings.renew_inline_max,
        poll_limit=settings.poll_limit,
        poll_stale_s=settings.poll_stale_s,
        poll_interval_s=settings.poll_interval_s,
        mirror_retention_days=settings.mirror_retention_days,
        conflict_retention_days=settings.conflict_retention_days,
        cleanup_batch=settings.cleanup_batch,
    )


def push_config(settings: Settings) -> PushConfig:
    """The webhook's settings."""
    return PushConfig(
        sync_queue=settings.sync_queue,
        sync_url=settings.sync_url,
        debounce_s=settings.debounce_s,
        unknown_channel_interval_s=settings.unknown_channel_interval_s,
    )


def health_config(settings: Settings) -> HealthConfig:
    """The health thresholds."""
    return HealthConfig(stale_s=settings.poll_stale_s)


def publish_store(container: Container) -> PublishStore:
    """The container's store as the publish use cases' port (the Firestore adapter and the fake implement it)."""
    return container.store
