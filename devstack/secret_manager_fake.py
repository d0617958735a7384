"""A small local Secret Manager the real ``google-cloud-secret-manager`` client talks to over gRPC.

Google ships no Secret Manager emulator. This serves ``google.cloud.secretmanager.v1.SecretManagerService``
on 127.0.0.1 with the library's own proto types (so the wire format is Google's), implementing the
calls calsync and its tests need: ``CreateSecret``, ``AddSecretVersion``, ``AccessSecretVersion``
(``latest`` or a version number), ``DisableSecretVersion``; plus ``inject`` to make the next calls
fail with a gRPC status (outages, permission denied). Everything is in memory.

In-process (tests)::

    fake = start(); fake.put("demo-calsync", "calsync-token-key", "...")  # fake.port, fake.stop()

Local stack::

    python -m devstack.secret_manager_fake --port 8124 --project demo-calsync --secret name=value
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from google.cloud import secretmanager_v1 as sm

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
HOST = "127.0.0.1"


def _not_found(context: grpc.ServicerContext, message: str) -> NoReturn:
    """Abort the call with NOT_FOUND (``abort`` raises; grpcio has no type hints to say so)."""
    context.abort(grpc.StatusCode.NOT_FOUND, message)
    raise AssertionError(message)  # not reached


@dataclass
class _Secret:
    versions: list[tuple[bytes, bool]] = field(default_factory=list)  # (data, enabled), 1-based ids


class SecretManagerFake:
    """The in-memory secrets and the gRPC handlers serving them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}  # "projects/P/secrets/S" -> versions
        self._faults: list[grpc.StatusCode] = []
        self.calls: list[str] = []  # method names, in order (tests count round trips)
        self._server: Any = None
        self.port = 0

    # --- seeding and faults -------------------------------------------------------------------------

    def put(self, project: str, secret_id: str, value: str | bytes) -> str:
        """Create the secret if needed and add a version holding ``value``; returns the version name."""
        data = value.encode("utf-8") if isinstance(value, str) else value
        with self._lock:
            secret = self._secrets.setdefault(f"projects/{project}/secrets/{secret_id}", _Secret())
            secret.versions.append((data, True))
            return f"projects/{project}/secrets/{secret_id}/versions/{len(secret.versions)}"

    def inject(self, code: grpc.StatusCode, times: int = 1) -> None:
        """Make the next ``times`` calls fail with ``code``."""
        with self._lock:
            self._faults.extend([code] * times)

    def reset(self) -> None:
        """Forget every secret, fault and recorded call."""
        with self._lock:
            self._secrets.clear()
            self._faults.clear()
            self.calls.clear()

    # --- RPCs ---------------------------------------------------------------------------------------

    def _enter(self, method: str, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.calls.append(method)
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            context.abort(fault, f"injected {fault.name}")

    def create_secret(self, request: sm.CreateSecretRequest, context: grpc.ServicerContext) -> sm.Secret:
        """CreateSecret: ALREADY_EXISTS when the id is taken."""
        self._enter("CreateSecret", context)
        name = f"{request.parent}/secrets/{request.secret_id}"
        with self._lock:
            if name in self._secrets:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            self._secrets[name] = _Secret()
        return sm.Secret(name=name, replication=request.secret.replication)

    def add_secret_version(
        self, request: sm.AddSecretVersionRequest, context: grpc.ServicerContext
    ) -> sm.SecretVersion:
        """AddSecretVersion: NOT_FOUND when the secret does not exist."""
        self._enter("AddSecretVersion", context)
        with self._lock:
            secret = self._secrets.get(request.parent)
            if secret is None:
                _not_found(context, f"Secret [{request.parent}] not found.")
            secret.versions.append((bytes(request.payload.data), True))
            number = len(secret.versions)
        return sm.SecretVersion(name=f"{request.parent}/versions/{number}", state=sm.SecretVersion.State.ENABLED)

    def access_secret_version(
        self, request: sm.AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> sm.AccessSecretVersionResponse:
        """AccessSecretVersion: ``latest`` is the newest enabled version; disabled → FAILED_PRECONDITION."""
        self._enter("AccessSecretVersion", context)
        parent, _, version = request.name.rpartition("/versions/")
        with self._lock:
            secret = self._secrets.get(parent)
            if secret is None:
                _not_found(context, f"Secret [{parent}] not found or has no versions.")
            number = self._resolve(secret, version, context)
            data, enabled = secret.versions[number - 1]
        if not enabled:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"Secret version [{request.name}] is disabled.")
        return sm.AccessSecretVersionResponse(name=f"{parent}/versions/{number}", payload=sm.SecretPayload(data=data))

    def disable_secret_version(
        self, request: sm.DisableSecretVersionRequest, context: grpc.ServicerContext
    ) -> sm.SecretVersion:
        """DisableSecretVersion."""
        self._enter("DisableSecretVersion", context)
        parent, _, version = request.name.rpartition("/versions/")
        with self._lock:
            secret = self._secrets.get(parent)
            if secret is None:
                _not_found(context, f"Secret [{parent}] not found.")
            number = self._resolve(secret, version, context)
            secret.versions[number - 1] = (secret.versions[number - 1][0], False)
        return sm.SecretVersion(name=request.name, state=sm.SecretVersion.State.DISABLED)

    @staticmethod
    def _resolve(secret: _Secret, version: str, context: grpc.ServicerContext) -> int:
        if version == "latest":
            enabled = [i + 1 for i, (_, on) in enumerate(secret.versions) if on]
            if not enabled:
                _not_found(context, "Secret has no enabled versions.")
            return enabled[-1]
        if not version.isdigit() or not 1 <= int(version) <= len(secret.versions):
            _not_found(context, f"Secret version [{version}] not found.")
        return int(version)

    # --- serving ------------------------------------------------------------------------------------

    def handler(self) -> grpc.GenericRpcHandler:
        """The gRPC handler of the service, (de)serialising with the library's proto-plus types."""

        def unary(fn: Callable[[Any, Any], Any], req: Any, resp: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=req.deserialize, response_serializer=resp.serialize
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateSecret": unary(self.create_secret, sm.CreateSecretRequest, sm.Secret),
                "AddSecretVersion": unary(self.add_secret_version, sm.AddSecretVersionRequest, sm.SecretVersion),
                "AccessSecretVersion": unary(
                    self.access_secret_version, sm.AccessSecretVersionRequest, sm.AccessSecretVersionResponse
                ),
                "DisableSecretVersion": unary(
                    self.disable_secret_version, sm.DisableSecretVersionRequest, sm.SecretVersion
                ),
            },
        )

    def serve(self, port: int = 0, host: str = HOST) -> int:
        """Start serving on ``host:port`` (0: any free port); returns the port."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((self.handler(),))
        bound = server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise RuntimeError(f"secret-manager-fake: cannot bind {host}:{port}")
        server.start()
        self._server = server
        self.port = int(bound)
        return self.port

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` for the client's channel."""
        return f"{HOST}:{self.port}"

    def stop(self) -> None:
        """Stop serving (pending calls are cancelled)."""
        if self._server is not None:
            self._server.stop(grace=0).wait()
            self._server = None


def start(port: int = 0) -> SecretManagerFake:
    """Start a fake on 127.0.0.1 in this process; read ``.port``/``.host``, call ``.stop()`` when done."""
    fake = SecretManagerFake()
    fake.serve(port)
    return fake


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT (the local stack's Secret Manager)."""
    parser = argparse.ArgumentParser(description="Local Secret Manager fake (gRPC, 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project", default="demo-calsync")
    parser.add_argument("--secret", action="append", default=[], help="NAME=VALUE to seed (repeatable)")
    args = parser.parse_args(argv)
    fake = SecretManagerFake()
    for item in args.secret:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--secret wants NAME=VALUE, got {name!r}")
        fake.put(args.project, name, value)
    fake.serve(args.port)
    print(f"secret-manager-fake listening on {fake.host}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
