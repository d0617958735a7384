"""The composition root: the one place that reads ``Settings`` and builds the adapters.

Clients are built lazily, once per function instance, and reused across invocations (Cloud
Functions keeps globals warm). Tests build the same graph with ``Container(settings, ...)`` and pass
emulator-backed or fake ports, or install one with ``set_container``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from calsync.config import Settings
from calsync.logs import configure

if TYPE_CHECKING:
    from calsync.ports import CalendarApi, Clock, PublishStore, Secrets, TaskQueue


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        """The current instant."""
        return datetime.now(UTC)


class Container:
    """Every port a function needs, built on first use from one ``Settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def clock(self) -> Clock:
        """The clock."""
        return SystemClock()

    @cached_property
    def secrets(self) -> Secrets:
        """Secret Manager in the cloud, environment variables in dev."""
        from calsync.adapters.secrets import EnvSecrets, SecretManagerSecrets

        if self.settings.secrets_backend == "env":
            return EnvSecrets()
        return SecretManagerSecrets(project=self.settings.gcp_project)

    @cached_property
    def calendar_api(self) -> CalendarApi:
        """The Calendar API with the service account (or anonymous on the emulator)."""
        from calsync.adapters.google_calendar import GoogleCalendarApi

        if self.settings.calendar_credentials == "anonymous":
            return GoogleCalendarApi.from_settings(self.settings)
        from calsync.adapters.credentials import service_account_credentials

        credentials = service_account_credentials(self.settings, self.secrets)
        return GoogleCalendarApi.from_settings(self.settings, credentials)

    @cached_property
    def store(self) -> PublishStore:
        """Firestore, namespaced by environment (every store port in one adapter)."""
        from google.cloud import firestore

        from calsync.adapters.firestore_store import FirestoreStateStore

        client = firestore.Client(project=self.settings.gcp_project, database=self.settings.firestore_database)
        return FirestoreStateStore(client, environment=self.settings.environment)

    @cached_property
    def queue(self) -> TaskQueue:
        """Cloud Tasks (or its emulator when ``tasks_emulator_host`` is set)."""
        from calsync.adapters.cloud_tasks import CloudTasksQueue

        settings = self.settings
        if settings.tasks_emulator_host:
            return CloudTasksQueue.for_emulator(settings.tasks_emulator_host, settings.gcp_project, settings.region)
        return CloudTasksQueue(
            settings.gcp_project, settings.region, invoker_service_account=settings.tasks_invoker_service_account
        )


_lock = threading.Lock()
_container: Container | None = None


def get_container() -> Container:
    """The process-wide container, built from the environment on first use."""
    global _container
    with _lock:
        if _container is None:
            settings = Settings()  # values come from the environment
            configure(settings.log_level)
            _container = Container(settings)
        return _container


def set_container(container: Container | None) -> None:
    """Install (or clear, with None) the process-wide container; for tests and the local stack."""
    global _container
    with _lock:
        _container = container
