"""Run ``gcloud-tasks-emulator`` 0.6.2 bound to 127.0.0.1 only.

The package's gRPC server binds ``[::]:PORT`` (every interface) and its ``--host`` flag is ignored,
so this wrapper replaces the server's API thread with one that binds the loopback address. Tasks are
dispatched by the package unchanged: each ``http_request`` task is POSTed to its URL with
``X-CloudTasks-*`` headers (no name dedup, no backoff, OIDC tokens ignored; see local-stack.md).

Runs in its own venv (``.venv-tasks``: the package pins protobuf<5 and google-cloud-tasks<3), so it
must never import calsync:

    .venv-tasks/bin/python devstack/tasks_emulator.py --port 8123 [--queue projects/P/locations/L/queues/Q]
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from concurrent import futures
from typing import Any

import grpc  # type: ignore[import-not-found, unused-ignore]
from gcloud_tasks_emulator import server as emulator  # type: ignore[import-not-found, unused-ignore]

LOOPBACK = "127.0.0.1"


class LoopbackApiThread(emulator.APIThread):  # type: ignore[misc, unused-ignore]
    """The package's API thread, serving on one loopback address instead of ``[::]``."""

    bind_host = LOOPBACK

    def run(self) -> None:
        """Start the gRPC server on ``bind_host:port`` and return (grpc keeps serving)."""
        self._httpd = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        emulator.add_CloudTasksServicer_to_server(emulator.Greeter(self._state), self._httpd)
        address = f"{self.bind_host}:{self._port}"
        if self._httpd.add_insecure_port(address) == 0:
            raise SystemExit(f"tasks-emulator: cannot bind {address}")
        self._httpd.start()
        print(f"tasks-emulator listening on {address}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (a subset of the package's ``start`` options)."""
    parser = argparse.ArgumentParser(description="Cloud Tasks emulator on 127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=LOOPBACK, help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--queue", action="append", default=[], help="full queue name to create at start")
    parser.add_argument("--max-retries", type=int, default=-1, help="attempts after a failed dispatch (-1: forever)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("--host must be a loopback address")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT."""
    args = parse_args(argv)
    # Task URLs are loopback function URLs: never send them through a proxy from the environment.
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost,::1"
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    LoopbackApiThread.bind_host = args.host
    # Server.__init__ looks APIThread up in the module at call time, so replacing it here is enough.
    emulator.APIThread = LoopbackApiThread
    server: Any = emulator.create_server(
        args.host, args.port, default_queue_names=args.queue, max_retries=args.max_retries
    )
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
