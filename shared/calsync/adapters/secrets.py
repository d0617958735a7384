"""``ports.Secrets`` on Secret Manager (production) and on environment variables / ``.env`` (dev).

``SecretManagerSecrets`` reads ``projects/P/secrets/NAME/versions/latest`` with
google-cloud-secret-manager (https://cloud.google.com/secret-manager/docs/access-secret-version),
keeps values for a short while per instance (a function instance reads each secret once, not per
request) and never logs a value. ``EnvSecrets`` is the dev source; its name mapping is in its
docstring. Both raise ``errors.SecretUnavailable`` when a secret cannot be read.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc  # grpcio ships no type hints (pyproject: ignore_missing_imports)
from dotenv import dotenv_values
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.cloud import secretmanager_v1
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from pydantic import SecretStr

from calsync import errors
from calsync.logs import get_logger

log = get_logger(__name__)

DEFAULT_CACHE_TTL_S = 300.0
DEFAULT_RETRY_TOTAL_S = 10.0
DEFAULT_CALL_TIMEOUT_S = 10.0
ENV_PREFIX = "CALSYNC_SECRET_"

# Secret Manager answers these when it is briefly unable to serve; anything else is final.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
)


class SecretManagerSecrets:
    """Secrets from Secret Manager, cached per instance for ``cache_ttl_s`` (0 disables the cache)."""

    def __init__(
        self,
        project: str,
        *,
        client: secretmanager_v1.SecretManagerServiceClient | None = None,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        retry_total_s: float = DEFAULT_RETRY_TOTAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Use ``client`` or Google's default client (built with Application Default Credentials)."""
        self._client = client if client is not None else secretmanager_v1.SecretManagerServiceClient()
        self.project = project
        self._ttl_s = cache_ttl_s
        self._clock = clock
        self._retry = Retry(
            predicate=if_exception_type(*TRANSIENT_ERRORS),
            initial=0.2,
            maximum=2.0,
            multiplier=2.0,
            timeout=retry_total_s,
        )
        self._cache: dict[str, tuple[float, SecretStr]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_emulator(
        cls,
        host: str,
        project: str,
        *,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        retry_total_s: float = DEFAULT_RETRY_TOTAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> SecretManagerSecrets:
        """Secrets from a local Secret Manager stand-in at ``host`` (plaintext gRPC, no credentials)."""
        transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(host))
        client = secretmanager_v1.SecretManagerServiceClient(transport=transport)
        return cls(project, client=client, cache_ttl_s=cache_ttl_s, retry_total_s=retry_total_s, clock=clock)

    def version_name(self, name: str) -> str:
        """The version to read: ``name`` as given when it is a full resource name, else its latest."""
        if name.startswith("projects/"):
            return name if "/versions/" in name else f"{name}/versions/latest"
        return f"projects/{self.project}/secrets/{name}/versions/latest"

    def get(self, name: str) -> SecretStr:
        """The latest version of secret ``name``, decoded as UTF-8 (``SecretUnavailable`` if unreadable)."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        value = self._access(name)
        if self._ttl_s > 0:
            with self._lock:
                self._cache[name] = (now, value)
        return value

    def invalidate(self, name: str | None = None) -> None:
        """Drop ``name`` (or everything) from the cache, e.g. after a key rotation."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    def _access(self, name: str) -> SecretStr:
        version = self.version_name(name)
        try:
            # retry=None: the GAPIC default policy (60 s) would otherwise nest inside ours.
            call = self._retry(self._client.access_secret_version)
            response = call(name=version, retry=None, timeout=DEFAULT_CALL_TIMEOUT_S)
        except (gexc.NotFound, gexc.PermissionDenied, gexc.FailedPrecondition) as exc:
            # Missing secret/version, no accessor role, or a disabled/destroyed version: final.
            log.warning("secret unavailable", error_type=type(exc).__name__, code="secret_unavailable")
            raise errors.SecretUnavailable(
                f"secret {name!r} unavailable: {type(exc).__name__}", details={"secret": name}
            ) from exc
        except (gexc.RetryError, gexc.GoogleAPICallError) as exc:
            log.warning("secret backend failed", error_type=type(exc).__name__, code="secret_unavailable")
            error = errors.SecretUnavailable(
                f"secret {name!r} unavailable: {type(exc).__name__}", details={"secret": name}
            )
            # Outages pass: let the entry point answer "retry later" rather than fail for good.
            error.retryable = True
            raise error from exc
        try:
            return SecretStr(bytes(response.payload.data).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise errors.SecretUnavailable(f"secret {name!r} is not UTF-8 text") from exc

    def close(self) -> None:
        """Close the client's channel."""
        self._client.transport.close()  # type: ignore[no-untyped-call]


def env_var_name(secret_name: str) -> str:
    """The environment variable ``EnvSecrets`` reads for ``secret_name``.

    ``CALSYNC_SECRET_`` + the name upper-cased with every run of non-alphanumerics turned into ``_``:
    ``calsync-token-key`` → ``CALSYNC_SECRET_CALSYNC_TOKEN_KEY``.
    """
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", secret_name).strip("_").upper()


class EnvSecrets:
    """Dev secrets from environment variables, then a ``.env`` file (never used outside dev).

    Secret ``NAME`` is read from ``CALSYNC_SECRET_<NAME>`` (see ``env_var_name``), e.g.

    - ``calsync-token-key``      ← ``CALSYNC_SECRET_CALSYNC_TOKEN_KEY`` (base64 AES key or key-ring JSON)
    - ``calsync-oauth-client``   ← ``CALSYNC_SECRET_CALSYNC_OAUTH_CLIENT`` (OAuth client JSON)
    - ``calsync-admin-token``    ← ``CALSYNC_SECRET_CALSYNC_ADMIN_TOKEN``

    The process environment wins over ``.env``. A missing or empty value → ``SecretUnavailable``.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> None:
        """Read ``environ`` (default: ``os.environ``) and ``env_file`` (None: no file)."""
        self._environ = environ if environ is not None else os.environ
        self._file: dict[str, str] = {}
        if env_file is not None and env_file.is_file():
            self._file = {k: v for k, v in dotenv_values(env_file).items() if v is not None}

    def get(self, name: str) -> SecretStr:
        """The value of secret ``name`` from its ``CALSYNC_SECRET_*`` variable."""
        var = env_var_name(name)
        value = self._environ.get(var) or self._file.get(var)
        if not value:
            raise errors.SecretUnavailable(f"secret {name!r} unavailable: set {var}", details={"secret": name})
        return SecretStr(value)
