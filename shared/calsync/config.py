"""calsync's one Settings class (pydantic-settings), read only by the composition root.

Every value comes from the environment (prefix ``CALSYNC_``) or a ``.env`` file in dev. Production
talks to Google's endpoints by default; the local stack points the same settings at the emulators.
Outside dev, Settings refuses whatever only makes sense locally: emulator hosts (Firestore, Cloud
Tasks), anonymous Calendar credentials, secrets from the environment, endpoints that are not HTTPS,
a token URI other than Google's, placeholder secrets and extra admin ID-token audiences.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GOOGLE_CALENDAR_API = "https://www.googleapis.com/calendar/v3/"
GOOGLE_CALENDAR_BATCH = "https://www.googleapis.com/batch/calendar/v3"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret
GOOGLE_IAM_CREDENTIALS = "https://iamcredentials.googleapis.com"
GOOGLE_AUTHORIZE_URI = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"

# Values that mean "nobody set this yet"; refused for secrets outside dev.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "placeholder", "dev", "dev-only", "secret", "xxx"})
# A bearer secret an operator generated (``openssl rand -base64 32``, ``secrets.token_urlsafe(32)``)
# is at least this long and this varied; typed words and repeated patterns are not.
MIN_SECRET_CHARS = 32
MIN_SECRET_BITS_PER_CHAR = 3.0


def strong_secret(value: str) -> bool:
    """True for a secret that looks generated: no placeholder, ≥ 32 characters, ≥ 3 bits/char (Shannon)."""
    if value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_CHARS:
        return False
    counts = Counter(value)
    bits = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return bits >= MIN_SECRET_BITS_PER_CHAR


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
    tasks_invokers: dict[Literal["sync", "renew", "publish"], str] = Field(
        default_factory=dict,
        description="Per task target, the service account whose OIDC token Cloud Tasks sends (else the one above).",
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
    oauth_authorize_uri: str = Field(
        default=GOOGLE_AUTHORIZE_URI, description="Google's consent screen (clinic connections); dev only may differ."
    )
    oauth_revoke_uri: str = Field(default=GOOGLE_REVOKE_URI, description="OAuth2 revocation endpoint.")
    writers: list[str] = Field(
        default_factory=list,
        description="Workspace users calsync writes as (a pool; each calendar through the one that created it, "
        "new calendars to the least busy). Empty: delegated_user alone.",
    )

    firestore_database: str = Field(default="(default)", description="Firestore database id.")
    firestore_push_database: str = Field(
        default="", description="Database of the push state (channels), the webhook's only one; empty: the above."
    )
    firestore_emulator_host: str = Field(
        default="",
        validation_alias="FIRESTORE_EMULATOR_HOST",
        description="FIRESTORE_EMULATOR_HOST, which google-cloud-firestore obeys (local only).",
    )

    secrets_backend: Literal["secret_manager", "env"] = Field(
        default="secret_manager", description="Where secrets are read from (env: dev only)."
    )
    secret_oauth_client: str = Field(default="calsync-oauth-client", description="Secret: OAuth client JSON.")
    secret_token_key: str = Field(default="calsync-token-key", description="Secret: token encryption key.")
    kms_token_key: str = Field(
        default="", description="Cloud KMS key wrapping refresh tokens' data keys (empty: the local key secret)."
    )
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
    sync_window_refresh_days: int = Field(
        default=7, ge=1, le=60, description="A full listing at least this often, so the window follows the clock."
    )
    page_size: int = Field(default=2500, ge=1, le=2500, description="events.list maxResults.")
    batch_size: int = Field(default=50, ge=1, le=1000, description="Calls per batch request.")
    lock_lease_s: int = Field(
        default=90,
        ge=10,
        le=240,
        description="Per-calendar sync lease, renewed every page: well under the sync function's 300 s timeout.",
    )
    sync_run_budget_s: int = Field(
        default=240, ge=5, le=270, description="Work per sync invocation (under its 300 s timeout) before continuing."
    )
    renew_margin_s: int = Field(default=86400, ge=600, description="Renew channels expiring within this.")
    channel_ttl_s: int = Field(default=604800, ge=3600, description="Requested push channel TTL.")
    retry_max_attempts: int = Field(default=6, ge=1, le=20, description="Calendar call attempts.")
    retry_max_total_s: float = Field(default=60.0, gt=0, description="Total time for retries of one call.")
    log_level: str = Field(default="INFO", description="Root log level.")
    display_time_zone: str = Field(
        default="America/Sao_Paulo", description="IANA time zone of the times written in conflict suggestions."
    )

    # Google's per-account usage limits (support.google.com/a/answer/2905486): read-only for "several
    # hours" past them. Google publishes neither the window nor the lockout; both err long.
    writer_lockout_s: int = Field(
        default=4 * 3600, ge=1, description="A writer answered quotaExceeded waits this long."
    )
    writer_probe_s: int = Field(
        default=120, ge=1, le=3600, description="After a lockout, others wait this long for the one probe's outcome."
    )
    usage_window_s: int = Field(default=3600, ge=1, description="The window Google's usage thresholds apply to.")
    usage_fraction: float = Field(default=0.5, gt=0, le=1, description="Share of each threshold a writer may use.")
    usage_calendars: int | None = Field(default=25, ge=1, description="Calendars one account may create per window.")
    usage_shares: int | None = Field(default=50, ge=1, description="Calendar shares (acl.insert) per window.")
    usage_events: int | None = Field(default=10_000, ge=1, description="Events one account may create per window.")
    usage_external_invites: int | None = Field(
        default=100, ge=1, description="Guests outside the writers' domain invited per window."
    )

    invite_patients: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Clinics whose patients are invited as attendees of the professional's event ('*': every "
        "clinic; []: none). Each invitation to a guest outside the writers' domain counts against Google's "
        "external-guest limit (100-300 per account and period).",
    )

    @property
    def writer_pool(self) -> list[str]:
        """The writers, in order (the first one owns calendars recorded without a writer)."""
        return list(dict.fromkeys(self.writers)) or [self.delegated_user]

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
    poll_limit: int = Field(default=100, ge=1, le=10000, description="Calendars per page of a poll run.")
    poll_stale_s: int = Field(default=3600, ge=60, description="Poll calendars whose last sync is older than this.")
    poll_interval_s: int = Field(default=600, ge=10, description="Poll schedule; names poll tasks per interval.")
    mirror_retention_days: int = Field(default=180, ge=1, description="Keep mirror events ended within this.")
    conflict_retention_days: int = Field(default=90, ge=1, description="Keep resolved conflicts this long.")
    cleanup_batch: int = Field(default=500, ge=1, le=500, description="Documents deleted per batch by cleanup.")
    availability_horizon_days: int = Field(
        default=14, ge=1, le=62, description="Days ahead the free/busy check compares with published allocations."
    )
    unknown_channel_interval_s: int = Field(default=3600, ge=1, description="Record an unknown channel id once per.")
    unknown_channel_retention_s: int = Field(
        default=7 * 86400, ge=3600, description="Unknown-channel records expire after this (Firestore TTL policy)."
    )
    unknown_channel_max: int = Field(
        default=1000, ge=1, le=100_000, description="Unknown-channel records kept at most."
    )
    unknown_channel_cache_s: int = Field(
        default=300, ge=1, le=3600, description="A webhook instance answers an id found unknown from memory this long."
    )

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_https(cls, value: str) -> str:
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("webhook_url must be HTTPS (Google refuses other push addresses)")
        return value

    @model_validator(mode="after")
    def _nothing_local_outside_dev(self) -> Settings:
        if not (self.kms_token_key or self.secret_token_key):
            raise ValueError("refresh tokens need a key: set kms_token_key or secret_token_key")
        if self.environment != "dev":
            refused = self._local_only()
            if refused:
                raise ValueError(f"refused outside dev: {refused}")
        return self

    def invoker_of(self, target: Literal["sync", "renew", "publish"]) -> str:
        """The service account Cloud Tasks calls ``target`` as."""
        return self.tasks_invokers.get(target) or self.tasks_invoker_service_account

    def _local_only(self) -> str | None:
        """The first setting that only makes sense on the local stand-ins, or None."""
        endpoints = {
            "webhook_url": self.webhook_url,
            "sync_url": self.sync_url,
            "renew_url": self.renew_url,
            "publish_url": self.publish_url,
            "calendar_api_endpoint": self.calendar_api_endpoint,
            "calendar_batch_uri": self.calendar_batch_uri,
        }
        plain = sorted(name for name, url in endpoints.items() if url and not url.startswith("https://"))
        admin_token = self.admin_token.get_secret_value() if self.admin_token is not None else None
        checks = [
            (self.secrets_backend == "env", "secrets_backend=env is for dev only; use secret_manager"),
            (admin_token is not None and admin_token.lower() in PLACEHOLDER_SECRETS, "admin_token is a placeholder"),
            (self.calendar_credentials == "anonymous", "anonymous Calendar credentials are for the local emulator"),
            (
                bool(self.firestore_emulator_host or self.tasks_emulator_host),
                "emulator hosts (FIRESTORE_EMULATOR_HOST, tasks_emulator_host) are for dev only",
            ),
            (self.token_uri != GOOGLE_TOKEN_URI, f"token_uri must be Google's ({GOOGLE_TOKEN_URI})"),
            (
                (self.oauth_authorize_uri, self.oauth_revoke_uri) != (GOOGLE_AUTHORIZE_URI, GOOGLE_REVOKE_URI),
                "oauth_authorize_uri and oauth_revoke_uri may differ from Google's in dev only",
            ),
            (
                self.iam_credentials_endpoint != GOOGLE_IAM_CREDENTIALS,
                "iam_credentials_endpoint may differ from Google's in dev only",
            ),
            (
                not self.delegation_service_account,
                "delegation_service_account is required outside dev (keyless delegation)",
            ),
            (bool(self.admin_id_token_audiences), "admin ID tokens are for publish_url only (no extra audiences)"),
            (not self.publish_url, "publish_url is required (the audience of admin ID tokens)"),
            (bool(plain), f"endpoints must be HTTPS: {', '.join(plain)}"),
        ]
        return next((message for failed, message in checks if failed), None)
