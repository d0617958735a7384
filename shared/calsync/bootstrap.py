"""The composition root: the one place that reads ``Settings`` and builds configs and adapters.

``bootstrap(settings, store=..., calendar_api=..., api_factory=..., queue=..., clock=..., secrets=...)``
returns a ``Container`` (cosmicpython's ``bootstrap``): every port not given is built lazily from the
settings, once per function instance, and reused across invocations (Cloud Functions keeps globals
warm). Tests, the local stack, chaos and the benchmarks build the same graph, passing fakes or
emulator-backed adapters as overrides. The use cases' configs (``SyncConfig``, ``PublishConfig``,
``ChannelConfig``, ``JobsConfig``, ``PushConfig``, ``HealthConfig``) are derived from ``Settings``
here only; services receive them as arguments and never read ``Settings``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

from calsync.config import Settings
from calsync.logs import configure
from calsync.services.availability import AvailabilityConfig
from calsync.services.channels import ChannelConfig
from calsync.services.health import HealthConfig
from calsync.services.maintenance import JobsConfig
from calsync.services.plan import PublishConfig
from calsync.services.push import PushConfig
from calsync.services.sync import SyncConfig
from calsync.services.writers import WriterConfig

if TYPE_CHECKING:
    from calsync.adapters.clinic_accounts import ClinicAccounts
    from calsync.ports import CalendarApi, Clock, PublishStore, Secrets, TaskQueue

ApiFactory = Callable[["Settings", "Secrets"], "CalendarApi"]
C = TypeVar("C")
# The ports a container holds (each may be overridden).
PORTS = ("store", "calendar_api", "queue", "clock", "secrets")


class Ports(TypedDict, total=False):
    """The overrides ``bootstrap`` and ``Container`` take; a port not given is built from the settings."""

    store: PublishStore
    calendar_api: CalendarApi
    api_factory: ApiFactory
    queue: TaskQueue
    clock: Clock
    secrets: Secrets


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        """The current instant."""
        return datetime.now(UTC)


# --- configs derived from Settings -----------------------------------------------------------------
# The use cases' configs of settings (sync, publish, channels, jobs, webhook) carry no defaults: every
# value is read here from ``Settings``, where each default is stated once (tests build theirs from
# ``calsync.testing.settings.local_settings``).


def _from_settings(config: Callable[..., C], settings: Settings, same_names: str, **values: Any) -> C:
    """``config`` built with each field named in ``same_names`` read from the setting of that name and
    the other fields as given (an unknown setting name fails here, not in production)."""
    return config(**{name: getattr(settings, name) for name in same_names.split()}, **values)


def _env_and_zone(settings: Settings) -> dict[str, Any]:
    return {"env": settings.environment, "time_zone": settings.display_time_zone}


def sync_config(settings: Settings) -> SyncConfig:
    """The sync use case's settings."""
    return _from_settings(
        SyncConfig,
        settings,
        "sync_queue sync_url lock_lease_s",
        past_days=settings.sync_past_days,
        future_days=settings.sync_future_days,
        window_refresh_days=settings.sync_window_refresh_days,
        run_budget_s=settings.sync_run_budget_s,
        **_env_and_zone(settings),
    )


def publish_config(settings: Settings) -> PublishConfig:
    """The publish use cases' settings (planning, apply, ad-hoc events, conflict resolution)."""
    return _from_settings(
        PublishConfig,
        settings,
        "control_calendar_id publish_queue publish_url batch_size sync_queue sync_url",
        invite_patients=tuple(settings.invite_patients),
        **_env_and_zone(settings),
    )


def channel_config(settings: Settings) -> ChannelConfig:
    """The channel lifecycle's settings."""
    return _from_settings(ChannelConfig, settings, "webhook_url channel_ttl_s renew_margin_s sync_queue sync_url")


def jobs_config(settings: Settings) -> JobsConfig:
    """The scheduled jobs' settings (renewal, polling, cleanup)."""
    return _from_settings(
        JobsConfig,
        settings,
        "renew_url renew_queue renew_inline_max poll_limit poll_stale_s poll_interval_s"
        " mirror_retention_days conflict_retention_days cleanup_batch",
        channel=channel_config(settings),
    )


def push_config(settings: Settings) -> PushConfig:
    """The webhook's settings."""
    return _from_settings(
        PushConfig,
        settings,
        "sync_queue sync_url debounce_s unknown_channel_interval_s unknown_channel_retention_s"
        " unknown_channel_max unknown_channel_cache_s",
    )


def availability_config(settings: Settings) -> AvailabilityConfig:
    """The free/busy check's settings."""
    return AvailabilityConfig(horizon_days=settings.availability_horizon_days, **_env_and_zone(settings))


def writer_config(settings: Settings) -> WriterConfig:
    """The writer pool, its usage budgets and its lockout."""
    return WriterConfig(
        writers=tuple(settings.writer_pool),
        lockout_s=settings.writer_lockout_s,
        probe_s=settings.writer_probe_s,
        window_s=settings.usage_window_s,
        fraction=settings.usage_fraction,
        calendars=settings.usage_calendars,
        shares=settings.usage_shares,
        events=settings.usage_events,
        external_invites=settings.usage_external_invites,
    )


def health_config(settings: Settings) -> HealthConfig:
    """The health report's thresholds."""
    return HealthConfig(stale_s=settings.poll_stale_s)


def default_api(settings: Settings, secrets: Secrets) -> CalendarApi:
    """The Calendar API acting through keyless delegation (or anonymous on the emulator)."""
    return writer_api(settings, secrets, settings.delegated_user)


def writer_api(settings: Settings, secrets: Secrets, writer: str) -> CalendarApi:
    """The Calendar API acting as ``writer`` through keyless delegation (anonymous on the emulator)."""
    from calsync.adapters.google_calendar import GoogleCalendarApi

    if settings.calendar_credentials == "anonymous":
        return GoogleCalendarApi.from_settings(settings)
    from calsync.adapters.credentials import delegation_from_settings

    return GoogleCalendarApi.from_settings(settings, delegation_from_settings(settings).credentials(writer or None))


# --- the container ---------------------------------------------------------------------------------


class Container:
    """Every port and config a function needs, built on first use from one ``Settings``.

    Each port may be given instead (``store``, ``calendar_api`` or ``api_factory``, ``queue``,
    ``clock``, ``secrets``); the ones not given are built from the settings when first used.
    """

    def __init__(self, settings: Settings, **ports: Unpack[Ports]) -> None:
        self.settings = settings
        self._store = ports.get("store")
        self._calendar_api = ports.get("calendar_api")
        self._api_factory = ports.get("api_factory") or default_api
        self._queue = ports.get("queue")
        self._clock = ports.get("clock")
        self._secrets = ports.get("secrets")

    def replace(self, **ports: Unpack[Ports]) -> Container:
        """A container with the same settings and ports (those built so far included), some replaced."""
        current: dict[str, Any] = {name: self.__dict__.get(name, getattr(self, f"_{name}")) for name in PORTS}
        return Container(self.settings, api_factory=self._api_factory, **{**current, **ports})

    # --- ports -------------------------------------------------------------------------------------

    @cached_property
    def clock(self) -> Clock:
        """The clock."""
        return self._clock if self._clock is not None else SystemClock()

    @cached_property
    def secrets(self) -> Secrets:
        """Secret Manager in the cloud, environment variables in dev."""
        if self._secrets is not None:
            return self._secrets
        from calsync.adapters.secrets import EnvSecrets, SecretManagerSecrets

        if self.settings.secrets_backend == "env":
            return EnvSecrets()
        return SecretManagerSecrets(project=self.settings.gcp_project)

    @cached_property
    def calendar_api(self) -> CalendarApi:
        """The Calendar API (the override, else built by the API factory)."""
        if self._calendar_api is not None:
            return self._calendar_api
        if self._store is not None:
            return self._default_api  # connections live in calsync's Firestore; another store has none
        from calsync.adapters.routed_calendar import RoutedCalendarApi

        return RoutedCalendarApi(self._default_api, self._api_for_google_calendar)

    @cached_property
    def _default_api(self) -> CalendarApi:
        """The Calendar API of the delegation identity: the writer pool, or the API factory's one account."""
        pool = self.settings.writer_pool
        if self._api_factory is not default_api or len(pool) == 1:
            return self._api_factory(self.settings, self.secrets)
        from calsync.adapters.writer_pool import WriterPoolCalendarApi

        return WriterPoolCalendarApi(
            pool, functools.partial(writer_api, self.settings, self.secrets), writer_of=self._writer_of
        )

    def _writer_of(self, google_calendar_id: str) -> str | None:
        """The writer recorded for a Google calendar (None: unknown, or the pool's first)."""
        record = self.store.find_calendar(google_calendar_id)
        return record.writer if record is not None else None

    @cached_property
    def store(self) -> PublishStore:
        """Firestore, namespaced by environment (every store port in one adapter)."""
        if self._store is not None:
            return self._store
        from google.cloud import firestore

        from calsync.adapters.firestore_store import FirestoreStateStore

        settings = self.settings
        client = firestore.Client(project=settings.gcp_project, database=settings.firestore_database)
        push = settings.firestore_push_database
        push_client = firestore.Client(project=settings.gcp_project, database=push) if push else None
        return FirestoreStateStore(client, environment=settings.environment, push_client=push_client)

    @cached_property
    def queue(self) -> TaskQueue:
        """Cloud Tasks (or its emulator when ``tasks_emulator_host`` is set)."""
        if self._queue is not None:
            return self._queue
        from calsync.adapters.cloud_tasks import CloudTasksQueue

        settings = self.settings
        if settings.tasks_emulator_host:
            return CloudTasksQueue.for_emulator(settings.tasks_emulator_host, settings.gcp_project, settings.region)
        return CloudTasksQueue(
            settings.gcp_project,
            settings.region,
            invoker_service_account=settings.tasks_invoker_service_account,
            invokers_by_url={
                settings.sync_url: settings.invoker_of("sync"),
                settings.renew_url: settings.invoker_of("renew"),
                settings.publish_url: settings.invoker_of("publish"),
            },
        )

    @cached_property
    def clinic_accounts(self) -> ClinicAccounts:
        """Clinics connected through OAuth (their own Google account) and the API acting as each."""
        from google.cloud import firestore

        from calsync.adapters.clinic_accounts import ClinicAccounts

        client = firestore.Client(project=self.settings.gcp_project, database=self.settings.firestore_database)
        return ClinicAccounts(self.settings, self.secrets, self.clock, client)

    def api_for_clinic(self, clinic_id: str | None) -> CalendarApi:
        """The API acting as the clinic's connected account (OAuth), else the default ``calendar_api``."""
        if self._calendar_api is not None or self._store is not None or not clinic_id:
            return self.calendar_api
        version = self.clinic_accounts.connection(clinic_id)
        return self.clinic_accounts.api(clinic_id, version) if version else self._default_api

    def _api_for_google_calendar(self, google_calendar_id: str) -> CalendarApi:
        """The API acting as the owner of a Google calendar calsync manages (see ``RoutedCalendarApi``)."""
        accounts = self.clinic_accounts
        clinic_id = accounts.clinic_of(google_calendar_id, self.store)
        version = accounts.recent_connection(clinic_id, self.clock.now()) if clinic_id else None
        return accounts.api(clinic_id, version) if clinic_id and version else self._default_api

    # --- configs -----------------------------------------------------------------------------------

    @cached_property
    def sync_config(self) -> SyncConfig:
        """The sync use case's settings."""
        return sync_config(self.settings)

    @cached_property
    def publish_config(self) -> PublishConfig:
        """The publish use cases' settings."""
        return publish_config(self.settings)

    @cached_property
    def channel_config(self) -> ChannelConfig:
        """The channel lifecycle's settings."""
        return channel_config(self.settings)

    @cached_property
    def jobs_config(self) -> JobsConfig:
        """The scheduled jobs' settings."""
        return jobs_config(self.settings)

    @cached_property
    def push_config(self) -> PushConfig:
        """The webhook's settings."""
        return push_config(self.settings)

    @cached_property
    def health_config(self) -> HealthConfig:
        """The health report's thresholds."""
        return health_config(self.settings)


def bootstrap(settings: Settings | None = None, **ports: Unpack[Ports]) -> Container:
    """The object graph: ``settings`` (else read from the environment) with any port overridden."""
    if settings is None:
        settings = Settings()  # values come from the environment
        configure(settings.log_level)
    return Container(settings, **ports)


_lock = threading.Lock()
_container: Container | None = None


def get_container() -> Container:
    """The process-wide container, built from the environment on first use."""
    global _container
    with _lock:
        if _container is None:
            _container = bootstrap()
        return _container


def set_container(container: Container | None) -> None:
    """Install (or clear, with None) the process-wide container; for tests and the local stack."""
    global _container
    with _lock:
        _container = container
