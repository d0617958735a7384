"""calsync's one Settings class (pydantic-settings), read only by the composition root.

Every value comes from the environment (prefix ``CALSYNC_``) or a ``.env`` file in dev. Production
talks to Google's endpoints by default; the local stack points the same settings at the emulators.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GOOGLE_CALENDAR_API = "https://www.googleapis.com/calendar/v3/"
GOOGLE_CALENDAR_BATCH = "https://www.googleapis.com/batch/calendar/v3"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret
GOOGLE_IAM_CREDENTIALS = "https://iamcredentials.googleapis.com"

# Values that mean "nobody set this yet"; refused for secrets outside dev.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "placeholder", "dev", "dev-only", "secret", "xxx"})


class Settings(BaseSettings):
    """Configuration of every calsync function (one instance per process, built by bootstrap)."""

    model_config = SettingsConfigDict(env_prefix="CALSYNC_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["dev", "stg", "prod"] = Field(description="Deployment environment.")
    gcp_project: str = Field(description="Google Cloud project id.")
    region: str = Field(default="southamerica-east1", description="Region of functions and queues.")
    control_calendar_id: str = Field(description="Google id of this environment's control calendar.")

    webhook_url: str = Field(description="HTTPS address Google pushes notifications to.")
    sync_url: str = Field(description="URL of the sync function (Cloud Tasks target).")
    renew_url: str = Field(default="", description="URL of the renew function.")
    publish_url: str = Field(default="", description="URL of the publish function (publish tasks).")

    sync_queue: str = Field(default="calsync-sync", description="Cloud Tasks queue of per-calendar syncs.")
    publish_queue: str = Field(default="calsync-publish", description="Cloud Tasks queue of publish work.")
    tasks_invoker_service_account: str = Field(
        default="", description="Service account whose OIDC token Cloud Tasks sends (empty: none)."
    )
    tasks_emulator_host: str = Field(default="", description="host:port of a Cloud Tasks emulator (local).")

    calendar_api_endpoint: str = Field(default=GOOGLE_CALENDAR_API, description="Calendar API base URL.")
    calendar_batch_uri: str = Field(default=GOOGLE_CALENDAR_BATCH, description="Calendar batch endpoint.")
    token_uri: str = Field(default=GOOGLE_TOKEN_URI, description="OAuth2 token endpoint.")
    calendar_credentials: Literal["delegated", "anonymous"] = Field(
        default="delegated",
        description="How the Calendar adapter authenticates: keyless domain-wide delegation (anonymous: emulator).",
    )
    delegation_service_account: str = Field(
        default="", description="Service account authorised for domain-wide delegation; signs without a key."
    )
    iam_credentials_endpoint: str = Field(
        default=GOOGLE_IAM_CREDENTIALS,
        description="IAM Credentials API base URL (signBlob); dev only may change it.",
    )
    delegated_user: str = Field(default="", description="Workspace user to impersonate (domain-wide delegation).")

    firestore_database: str = Field(default="(default)", description="Firestore database id.")

    secrets_backend: Literal["secret_manager", "env"] = Field(
        default="secret_manager", description="Where secrets are read from (env: dev only)."
    )
    secret_oauth_client: str = Field(default="calsync-oauth-client", description="Secret: OAuth client JSON.")
    secret_token_key: str = Field(default="calsync-token-key", description="Secret: token encryption key.")
    secret_admin_token: str = Field(default="calsync-admin-token", description="Secret: local admin token.")
    admin_token: SecretStr | None = Field(default=None, description="Admin bearer token (dev/local only).")
    admin_emails: list[str] = Field(default_factory=list, description="Google identities allowed as admins.")
    admin_id_token_audiences: list[str] = Field(
        default_factory=list,
        description="Audiences accepted on admin ID tokens besides publish_url (e.g. gcloud's OAuth client id).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the admin API (agendador's frontend); empty refuses all.",
    )

    sync_past_days: int = Field(default=45, ge=30, le=60, description="Full-sync window into the past.")
    sync_future_days: int = Field(default=180, ge=1, le=730, description="Full-sync window into the future.")
    page_size: int = Field(default=2500, ge=1, le=2500, description="events.list maxResults.")
    batch_size: int = Field(default=50, ge=1, le=1000, description="Calls per batch request.")
    lock_lease_s: int = Field(default=300, ge=10, description="Per-calendar lock lease.")
    sync_run_budget_s: int = Field(default=240, ge=5, description="Work per sync invocation before continuing.")
    renew_margin_s: int = Field(default=86400, ge=600, description="Renew channels expiring within this.")
    channel_ttl_s: int = Field(default=604800, ge=3600, description="Requested push channel TTL.")
    retry_max_attempts: int = Field(default=6, ge=1, le=20, description="Calendar call attempts.")
    retry_max_total_s: float = Field(default=60.0, gt=0, description="Total time for retries of one call.")
    log_level: str = Field(default="INFO", description="Root log level.")
    display_time_zone: str = Field(
        default="America/Sao_Paulo", description="IANA time zone of the times written in conflict suggestions."
    )

    @field_validator("display_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    # --- push path: webhook debounce, renewal fan-out, polling, cleanup ---
    debounce_s: int = Field(default=30, ge=1, le=3600, description="Webhook debounce bucket (one sync per bucket).")
    renew_queue: str = Field(default="calsync-sync", description="Queue of per-calendar renewal tasks.")
    renew_inline_max: int = Field(default=10, ge=0, description="Renew inline up to this many; fan out above.")
    poll_limit: int = Field(default=100, ge=1, le=10000, description="Calendars a poll run enqueues at most.")
    poll_stale_s: int = Field(default=3600, ge=60, description="Poll calendars whose last sync is older than this.")
    poll_interval_s: int = Field(default=600, ge=10, description="Poll schedule; names poll tasks per interval.")
    mirror_retention_days: int = Field(default=180, ge=1, description="Keep mirror events ended within this.")
    conflict_retention_days: int = Field(default=90, ge=1, description="Keep resolved conflicts this long.")
    cleanup_batch: int = Field(default=500, ge=1, le=500, description="Documents deleted per batch by cleanup.")
    availability_horizon_days: int = Field(
        default=14, ge=1, le=62, description="Days ahead the free/busy check compares with published allocations."
    )
    unknown_channel_interval_s: int = Field(default=3600, ge=1, description="Record an unknown channel id once per.")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_https(cls, value: str) -> str:
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("webhook_url must be HTTPS (Google refuses other push addresses)")
        return value

    @model_validator(mode="after")
    def _no_placeholders_outside_dev(self) -> Settings:
        if self.environment == "dev":
            return self
        if self.secrets_backend == "env":
            raise ValueError("secrets_backend=env is for dev only; use secret_manager")
        if self.admin_token is not None and self.admin_token.get_secret_value().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("admin_token is a placeholder; refused outside dev")
        if self.calendar_credentials == "anonymous":
            raise ValueError("anonymous Calendar credentials are for the local emulator only")
        if self.iam_credentials_endpoint != GOOGLE_IAM_CREDENTIALS:
            raise ValueError("iam_credentials_endpoint may differ from Google's in dev only")
        if not self.delegation_service_account:
            raise ValueError("delegation_service_account is required outside dev (keyless delegation)")
        return self
