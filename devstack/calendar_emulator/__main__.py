"""Command line: ``python -m devstack.calendar_emulator --host 127.0.0.1 --port PORT [--state-file PATH]``.

``--usage-limits JSON`` (the body of ``POST /_emulator/usage-limits``) turns on per-account usage limits
from the start; a reset comes back to them.

Prints ``calendar-emulator listening on http://HOST:PORT`` once the socket accepts requests.
"""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import uvicorn

from devstack.calendar_emulator.app import create_app
from devstack.calendar_emulator.auth import DEFAULT_SERVICE_ACCOUNT
from devstack.calendar_emulator.errors import ApiError
from devstack.calendar_emulator.usage import UsageLimitsSpec


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that announces itself after its socket is listening."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            print(f"calendar-emulator listening on http://{self.config.host}:{self.config.port}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m devstack.calendar_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--state-file", type=Path, default=None, help="JSON file to persist state to")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--default-user",
        default=DEFAULT_SERVICE_ACCOUNT,
        help="principal of requests without credentials (default: the service account)",
    )
    parser.add_argument(
        "--usage-limits",
        default=None,
        help='per-account usage limits as JSON, e.g. \'{"calendars_created": 25, "window_s": 60}\' (default: none)',
    )
    args = parser.parse_args(argv)
    usage_limits = None
    if args.usage_limits:
        try:
            usage_limits = UsageLimitsSpec().merged(json.loads(args.usage_limits))
        except (ValueError, ApiError) as exc:
            parser.error(f"--usage-limits: {exc}")
    config = uvicorn.Config(
        create_app(args.state_file, default_user=args.default_user, usage_limits=usage_limits),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="on",
        access_log=False,
    )
    _AnnouncingServer(config).run()


if __name__ == "__main__":
    main()
