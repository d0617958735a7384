"""Which clinics write through their own Google account (an OAuth connection), and the API acting as each.

A clinic without Workspace cannot be reached by domain-wide delegation; once connected
(``oauth_connect``), its calendars are read and written with its refresh token. Whether a clinic is
connected is one Firestore read of its token document's key id (nothing decrypted, no secret read),
so clinics that are not connected cost nothing more; the OAuth client and the token key are read
from Secret Manager the first time a connected clinic is used.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from typing import TYPE_CHECKING

import google.auth
from google.api_core import exceptions as gexc
from google.auth.transport.requests import AuthorizedSession

from calsync import errors
from calsync.adapters.credentials import CredentialsProvider, OAuthClient
from calsync.adapters.google_calendar import GoogleCalendarApi
from calsync.adapters.kms_cipher import KmsEnvelopeCipher
from calsync.adapters.oauth_connect import CONNECT_SCOPES, ClinicConnections, OAuthEndpoints, callback_uri
from calsync.adapters.token_crypto import AesGcmTokenCipher, TokenCipher
from calsync.adapters.token_store import EncryptedTokenStore

if TYPE_CHECKING:
    from datetime import datetime

    from google.cloud import firestore

    from calsync.config import Settings
    from calsync.ports import CalendarApi, CalendarStore, Clock, Secrets


# How long a clinic's connection state is trusted before it is read again (a new connection is
# picked up within this; a revoked one is found by Google's invalid_grant at once).
CONNECTION_CACHE_S = 60


class ClinicAccounts:
    """Clinics' OAuth connections and their Calendar APIs, built once per instance."""

    def __init__(self, settings: Settings, secrets: Secrets, clock: Clock, client: firestore.Client) -> None:
        """Tokens in ``{environment}_oauth_tokens`` of ``client``'s database."""
        self._settings = settings
        self._secrets = secrets
        self._clock = clock
        self._client = client
        self._lock = threading.Lock()
        self._apis: dict[str, CalendarApi] = {}
        self._clinics: dict[str, str | None] = {}
        self._versions: dict[str, tuple[float, str | None]] = {}
        if settings.oauth_authorize_uri.startswith("http://"):
            # oauthlib refuses plain HTTP unless told; Settings allow it in dev only (the emulator).
            os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

    @cached_property
    def _cipher(self) -> TokenCipher:
        """Cloud KMS envelope encryption when a KMS key is configured (stg/prod), else the local key (dev)."""
        if self._settings.kms_token_key:
            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            return KmsEnvelopeCipher(self._settings.kms_token_key, AuthorizedSession(credentials))  # type: ignore[no-untyped-call]
        return AesGcmTokenCipher.from_secrets(self._secrets, self._settings.secret_token_key)

    @cached_property
    def tokens(self) -> EncryptedTokenStore:
        """The encrypted refresh tokens, by clinic id."""
        return EncryptedTokenStore(self._client, self._cipher, environment=self._settings.environment)

    @cached_property
    def connections(self) -> ClinicConnections:
        """Starting and completing connections (reads the OAuth client and the token key)."""
        settings = self._settings
        return ClinicConnections(
            client=OAuthClient.parse(self._secrets.get(settings.secret_oauth_client)),
            tokens=self.tokens,
            cipher=self._cipher,
            endpoints=OAuthEndpoints(
                authorize_uri=settings.oauth_authorize_uri,
                token_uri=settings.token_uri,
                revoke_uri=settings.oauth_revoke_uri,
                redirect_uri=callback_uri(settings.publish_url),
            ),
            clock=self._clock,
        )

    def clinic_of(self, google_calendar_id: str, store: CalendarStore) -> str | None:
        """The clinic of a registered calendar (a map read once, again when an id is not in it)."""
        with self._lock:
            known = google_calendar_id in self._clinics
        if not known:
            mapping = {r.google_calendar_id: r.clinic_id for r in store.list_calendars()}
            with self._lock:
                self._clinics = mapping
        with self._lock:
            return self._clinics.get(google_calendar_id)

    def recent_connection(self, clinic_id: str, now: datetime) -> str | None:
        """``connection``, read again at most every ``CONNECTION_CACHE_S`` (every Calendar call asks)."""
        with self._lock:
            cached = self._versions.get(clinic_id)
        if cached is not None and cached[0] > now.timestamp():
            return cached[1]
        version = self.connection(clinic_id)
        with self._lock:
            self._versions[clinic_id] = (now.timestamp() + CONNECTION_CACHE_S, version)
        return version

    def connection(self, clinic_id: str) -> str | None:
        """The version of the clinic's stored refresh token (its update time), None when not connected."""
        if not clinic_id or "/" in clinic_id or clinic_id.startswith("__"):
            return None
        document = self._client.collection(f"{self._settings.environment}_oauth_tokens").document(clinic_id)
        try:
            snapshot = document.get(field_paths=["key_id"])
        except gexc.GoogleAPICallError as exc:
            raise errors.StoreUnavailable(f"reading a clinic connection failed: {type(exc).__name__}") from exc
        return str(snapshot.update_time) if snapshot.exists else None

    def api(self, clinic_id: str, version: str) -> CalendarApi:
        """The Calendar API acting as the clinic's account with token ``version`` (a reconnection is a new one)."""
        key = f"{clinic_id}@{version}"
        with self._lock:
            api = self._apis.get(key)
        if api is None:
            provider = CredentialsProvider(
                self._secrets,
                oauth_client_secret=self._settings.secret_oauth_client,
                token_uri=self._settings.token_uri,
                tokens=self.tokens,
                scopes=CONNECT_SCOPES,
            )
            api = GoogleCalendarApi.from_settings(self._settings, provider.for_calendar(clinic_id))
            with self._lock:
                stale = [k for k in self._apis if k.startswith(f"{clinic_id}@")]
                for old in stale:
                    del self._apis[old]
                api = self._apis.setdefault(key, api)
        return api
