"""What every ``calsync`` command shares: its options (``--url``, ``--token``, ``--json``,
``--timeout``, declared once), the ``Session`` built from them, and how expected failures end a command
(one readable error line and an exit code, never a traceback).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from calsync.cli import render
from calsync.cli.client import DEFAULT_TIMEOUT_S, AdminClient, ApiError, CliError, ExitCode, Target, resolve_target
from calsync.results import Result

AnswerT = TypeVar("AnswerT", bound=Result)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", help="Admin API URL (else CALSYNC_ADMIN_URL, else .devstack/endpoints.json).", show_default=False
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token (else CALSYNC_ADMIN_TOKEN, else the local stack's admin_token; "
        "in production an ID token, e.g. $(gcloud auth print-identity-token)).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON answer instead of tables.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each HTTP answer.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to every confirmation (for scripts).")]


class Session:
    """What one command needs: the client, where it points, and the consoles (the shared options)."""

    def __init__(self, url: str | None, token: str | None, *, as_json: bool, timeout_s: float) -> None:
        """Keep the options; the target is resolved on first use (a command checks its own inputs first)."""
        self.env: Mapping[str, str] = os.environ
        self._url, self._token, self._timeout_s = url, token, timeout_s
        self.as_json = as_json
        # Created per command (not at import) so the output goes to whatever stdout is now.
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    @cached_property
    def target(self) -> Target:
        """Where the admin API is (raises ``CliError`` when there is no usable URL)."""
        return resolve_target(self._url, self._token, self.env, Path.cwd())

    @cached_property
    def client(self) -> AdminClient:
        """The admin API client."""
        return AdminClient(self.target.url, self.target.token, timeout_s=self._timeout_s)

    def emit(self, answer: AnswerT, show: Callable[[Console, AnswerT], None]) -> None:
        """The answer's JSON with ``--json`` (as the API dumps it: unset keys left out), else the rendering."""
        if self.as_json:
            typer.echo(answer.model_dump_json(indent=2, exclude_unset=True))
        else:
            show(self.out, answer)

    def confirm(self, question: str, *, yes: bool) -> None:
        """Ask on stderr (stdout stays clean for ``--json``); a "no" or no input aborts."""
        if yes:
            return
        if not typer.confirm(question, default=False, err=True):
            raise CliError("aborted: nothing was changed", ExitCode.ABORTED)


@contextmanager
def expected_failures() -> Iterator[None]:
    """Turn expected failures into one readable error line and the command's exit code."""
    try:
        yield
    except CliError as exc:
        err = Console(stderr=True, highlight=False)
        err.print(f"[bold red]Error:[/bold red] {render.text(exc.message)}")
        if isinstance(exc, ApiError) and exc.details:
            err.print(f"details: {render.text(exc.details)}")
        if exc.hint:
            err.print(f"hint: {render.text(exc.hint)}")
        raise typer.Exit(int(exc.exit_code)) from None
    except typer.Abort:
        Console(stderr=True).print(
            "[bold red]Error:[/bold red] aborted (no answer to the confirmation): nothing was changed"
        )
        raise typer.Exit(int(ExitCode.ABORTED)) from None


def shared_options() -> list[inspect.Parameter]:
    """``--url``, ``--token``, ``--json`` and ``--timeout``: declared once, taken by every command."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("url", keyword, default=None, annotation=UrlOpt),
        inspect.Parameter("token", keyword, default=None, annotation=TokenOpt),
        inspect.Parameter("as_json", keyword, default=False, annotation=JsonOpt),
        inspect.Parameter("timeout", keyword, default=DEFAULT_TIMEOUT_S, annotation=TimeoutOpt),
    ]
