"""The ``calsync`` admin CLI: plan and apply publishes, provision, force syncs, conflicts, health.

Every command talks to the admin API of the ``publish`` function (see :mod:`calsync.cli.client` for
where the URL and token come from), reads its typed answer, prints rich tables, or the answer's JSON
with ``--json``, and
exits with one of :class:`~calsync.cli.client.ExitCode` — expected failures (bad URL, connection
refused, 4xx) print one readable line and a hint, never a traceback.

``plan`` keeps the confirmation tokens in a local cache (:mod:`calsync.cli.cache`); ``apply PLAN_ID``
reads them back, asks for confirmation (a second time for a ``clear_future`` plan), sends them, and
polls ``GET /publish/{plan_id}`` under a progress bar until the plan is ``done`` or ``failed``.
``--yes`` answers every prompt for scripts.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from calsync.cli import render
from calsync.cli.cache import CachedPlan, PlanCache, cache_dir
from calsync.cli.client import CliError, ExitCode
from calsync.cli.session import Session, YesOpt, expected_failures, shared_options
from calsync.results import ProgressAnswer, Provisioned

DEFAULT_POLL_S = 1.0
DEFAULT_WAIT_TIMEOUT_S = 1800.0
TERMINAL_STATUSES = frozenset({"done", "failed"})

# The options of the commands that wait for server-side work (apply, provision).
PollIntervalOpt = Annotated[float, typer.Option("--poll-interval", min=0.0, help="Seconds between progress polls.")]
WaitTimeoutOpt = Annotated[
    float, typer.Option("--wait-timeout", min=0.0, help="Stop waiting (exit 9) after this many seconds.")
]

app = typer.Typer(
    name="calsync",
    help="Admin CLI of calsync: publish schedules to Google Calendar, provision, sync, conflicts, health.",
    no_args_is_help=True,
    add_completion=False,
    # Locals would print the bearer token on an unexpected crash.
    pretty_exceptions_show_locals=False,
)


class ConflictStatus(StrEnum):
    """Filter of ``calsync conflicts``."""

    OPEN = "open"
    RESOLVED = "resolved"


class ResolveAction(StrEnum):
    """How a conflict is resolved."""

    ACCEPT_GOOGLE = "accept_google"
    REPUBLISH = "republish"


def _zone(value: str | None) -> str | None:
    """Refuse an unknown --tz before any request."""
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise typer.BadParameter(f"{value!r} is not an IANA time zone (e.g. America/Sao_Paulo)") from None
    return value


def _window_bound(value: str, zone: str | None, option: str) -> str:
    """An ISO date or date-time as the API wants it: with an offset (a bare one gets --tz's)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date (2025-03-10) or date-time (2025-03-10T00:00:00-03:00)", param_hint=option
        ) from None
    if moment.tzinfo is None:
        if zone is None:
            raise typer.BadParameter(
                f"{value!r} has no timezone offset: add one (2025-03-10T00:00:00-03:00) or pass --tz",
                param_hint=option,
            )
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.isoformat()


def _same_api(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def command(*, target_first: bool = True) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``func(*, session, ...)`` as a command with the shared options, its failures handled.

    typer reads the signature: the command's own options, then the shared ones (so ``calsync health
    --json`` and ``calsync sync KEY --url URL`` read as before); ``session`` is built from them. The
    target is resolved before the command runs (a missing URL is reported before any prompt), unless
    ``target_first=False`` lets the command check its own inputs first.
    """

    def register(func: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "session"]
        shared = shared_options()

        @functools.wraps(func)
        def run(**kwargs: Any) -> None:
            url, token, as_json, timeout = (kwargs.pop(p.name) for p in shared)
            with expected_failures():
                session = Session(url, token, as_json=as_json, timeout_s=timeout)
                if target_first:
                    _ = session.target
                func(session=session, **kwargs)

        run.__signature__ = inspect.Signature([*own, *shared], return_annotation=None)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in (*own, *shared)}
        return app.command()(run)

    return register


# --- plan / apply / status --------------------------------------------------------------------------


@command(target_first=False)
def plan(
    *,
    clinic: Annotated[str, typer.Option("--clinic", help="Clinic id.", show_default=False)],
    date_from: Annotated[
        str, typer.Option("--from", help="Start: ISO date-time with offset, or a date with --tz.", show_default=False)
    ],
    date_to: Annotated[str, typer.Option("--to", help="End (exclusive), same forms as --from.", show_default=False)],
    clear_future: Annotated[
        bool, typer.Option("--clear-future", help="Also delete future calsync events not in the schedule.")
    ] = False,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="IANA zone of --from/--to given without offset.", callback=_zone, show_default=False),
    ] = None,
    session: Session,
) -> None:
    """Plan a publish (nothing is written): per-calendar counts, the changes, and the skips with reasons."""
    time_min, time_max = _window_bound(date_from, tz, "--from"), _window_bound(date_to, tz, "--to")
    answer = session.client.plan(clinic, time_min, time_max, clear_future=clear_future)
    saved = PlanCache(cache_dir(session.env)).save(session.target.url, answer, clinic_id=clinic)
    session.emit(answer, render.plan)
    if not session.as_json:
        session.err.print(f"Confirmation tokens kept in {saved} for `calsync apply`.")


@command()
def apply(
    *,
    plan_id: Annotated[str, typer.Argument(help="The plan id printed by `calsync plan`.", show_default=False)],
    confirm: Annotated[
        str | None,
        typer.Option(
            "--confirm", help="The plan's confirm_token (default: from the local plan cache).", show_default=False
        ),
    ] = None,
    confirm_clear_future: Annotated[
        str | None,
        typer.Option(
            "--confirm-clear-future",
            help="The second token of a clear_future plan (default: from the local plan cache).",
            show_default=False,
        ),
    ] = None,
    yes: YesOpt = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the apply is accepted.")] = False,
    poll_interval: PollIntervalOpt = DEFAULT_POLL_S,
    wait_timeout: WaitTimeoutOpt = DEFAULT_WAIT_TIMEOUT_S,
    session: Session,
) -> None:
    """Apply a plan after confirmation (twice for clear_future), with a progress bar until it is done."""
    cached = PlanCache(cache_dir(session.env)).load(plan_id)
    if cached is not None and confirm is None and not _same_api(cached.url, session.target.url):
        raise CliError(
            f"plan {plan_id} was made on {cached.url}, not on {session.target.url}: refusing to apply it there",
            ExitCode.ABORTED,
            hint="point --url at the API the plan was made on, or pass --confirm explicitly",
        )
    first = confirm or (cached.confirm_token if cached is not None else None)
    if first is None:
        raise CliError(
            f"no confirmation token for plan {plan_id} on this machine",
            ExitCode.ABORTED,
            hint="run `calsync plan` here first, or pass --confirm TOKEN (and --confirm-clear-future TOKEN)",
        )
    clears = confirm_clear_future is not None or (cached is not None and cached.clear_future)
    second = confirm_clear_future or (cached.confirm_clear_future_token if cached is not None else None)
    if clears and second is None:
        raise CliError(
            f"plan {plan_id} clears the future and needs its second confirmation token",
            ExitCode.ABORTED,
            hint="pass --confirm-clear-future TOKEN",
        )
    status = session.client.plan_status(plan_id)  # 404 here, before any prompt, for an unknown plan
    session.confirm(_apply_question(plan_id, cached, status, session.target.url), yes=yes)
    if clears:
        session.confirm(
            f"Plan {plan_id} also DELETES every future calsync event of this clinic that is not in the "
            "schedule (clear_future). Delete them?",
            yes=yes,
        )
    accepted = session.client.apply(plan_id, first, second if clears else None)
    if no_wait:
        session.emit(accepted, render.publish_status)
        return
    final = _wait(session, plan_id, poll_interval_s=poll_interval, wait_timeout_s=wait_timeout)
    session.emit(final, render.publish_status)
    if final.status == "failed":
        raise CliError(f"plan {plan_id} failed", ExitCode.PUBLISH_FAILED)


def _apply_question(plan_id: str, cached: CachedPlan | None, status: ProgressAnswer, url: str) -> str:
    """The first confirmation: what will be written, and where."""
    if cached is not None and cached.totals is not None:
        t = cached.totals
        what = f"{t.create} creates, {t.update} updates, {t.delete} deletes on {cached.calendars} calendars"
    else:
        what = f"{status.total} writes"
    return f"Apply plan {plan_id} ({status.status}): {what} via {url}?"


def _wait(session: Session, plan_id: str, *, poll_interval_s: float, wait_timeout_s: float) -> ProgressAnswer:
    """Poll the plan's status under a progress bar until it is done or failed (or the wait times out)."""
    deadline = time.monotonic() + wait_timeout_s
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # The bar goes to stderr so that stdout holds only the result (tables or --json).
    with Progress(*columns, console=session.err, disable=session.as_json) as progress:
        task = progress.add_task(f"publishing {plan_id}", total=None)
        try:
            while True:
                status = session.client.plan_status(plan_id)
                progress.update(
                    task,
                    completed=status.done,
                    total=status.total or None,
                    description=f"publishing {plan_id} ({status.status})",
                )
                if status.status in TERMINAL_STATUSES:
                    return status
                if time.monotonic() >= deadline:
                    raise CliError(
                        f"plan {plan_id} is still {status.status} after {wait_timeout_s:g} s "
                        f"({status.done}/{status.total}); the publish goes on",
                        ExitCode.STILL_RUNNING,
                        hint=f"check it with: calsync status {plan_id}",
                    )
                time.sleep(poll_interval_s)
        except KeyboardInterrupt:
            # Ctrl-C stops watching, not publishing: the tasks run server-side.
            raise CliError(
                f"stopped waiting for plan {plan_id}; the publish goes on",
                ExitCode.STILL_RUNNING,
                hint=f"check it with: calsync status {plan_id}",
            ) from None


@command()
def status(
    *,
    plan_id: Annotated[str, typer.Argument(help="The plan id.", show_default=False)],
    session: Session,
) -> None:
    """Show a plan's status: done/total (per calendar when given) and errors."""
    session.emit(session.client.plan_status(plan_id), render.publish_status)


# --- admin ------------------------------------------------------------------------------------------


@command()
def provision(
    *,
    clinic: Annotated[str, typer.Option("--clinic", help="Clinic id.", show_default=False)],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the tasks are scheduled.")] = False,
    poll_interval: PollIntervalOpt = DEFAULT_POLL_S,
    wait_timeout: WaitTimeoutOpt = DEFAULT_WAIT_TIMEOUT_S,
    session: Session,
) -> None:
    """Create a clinic's missing calendars on the writers' budgets, share and watch them, with a progress
    bar (idempotent: running it again schedules nothing new)."""
    answer = session.client.provision(clinic)
    if not no_wait and not answer.done:
        answer = _wait_provisioned(session, clinic, poll_interval_s=poll_interval, wait_timeout_s=wait_timeout)
    session.emit(answer, lambda console, shown: render.generic(console, f"Provisioned clinic {clinic}", shown))


def _wait_provisioned(session: Session, clinic: str, *, poll_interval_s: float, wait_timeout_s: float) -> Provisioned:
    """Poll ``GET /provision/{clinic}`` under a progress bar until every calendar exists and is watched."""
    deadline = time.monotonic() + wait_timeout_s
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=session.err, disable=session.as_json) as progress:
        task = progress.add_task(f"provisioning {clinic}", total=None)
        while True:
            status = session.client.provision_status(clinic)
            waiting = ", ".join(f"{w or 'writer'} locked until {t.isoformat()}" for w, t in status.waiting.items())
            description = f"provisioning {clinic}" + (f" ({waiting})" if waiting else "")
            progress.update(task, completed=status.watched, total=status.total or None, description=description)
            if status.done:
                return status
            if time.monotonic() >= deadline:
                raise CliError(
                    f"clinic {clinic} has {status.watched}/{status.total} calendars after {wait_timeout_s:g} s; "
                    "provisioning goes on",
                    ExitCode.STILL_RUNNING,
                    hint=f"check it with: calsync provision --clinic {clinic}",
                )
            time.sleep(poll_interval_s)


@command()
def connect(
    *,
    clinic: Annotated[str, typer.Option("--clinic", help="Clinic id.", show_default=False)],
    login_hint: Annotated[
        str, typer.Option("--login-hint", help="The clinic's Google account, preselected.", show_default=False)
    ] = "",
    session: Session,
) -> None:
    """Connect a clinic's own Google account (no Workspace): prints the consent URL to open as that account."""
    answer = session.client.connect(clinic, login_hint)
    title = f"Open this link as clinic {clinic}'s Google account before {answer.expires_at.isoformat()}"
    session.emit(answer, lambda console, shown: render.generic(console, title, shown))


@command()
def disconnect(
    *,
    clinic: Annotated[str, typer.Option("--clinic", help="Clinic id.", show_default=False)],
    session: Session,
) -> None:
    """Revoke a clinic's Google account connection and forget its token."""
    answer = session.client.disconnect(clinic)
    session.emit(answer, lambda console, shown: render.generic(console, f"Disconnected clinic {clinic}", shown))


@command()
def sync(
    *,
    calendar: Annotated[str, typer.Argument(help="Calendar key.", show_default=False)],
    event: Annotated[
        str | None, typer.Option("--event", help="Re-read only this event from Google.", show_default=False)
    ] = None,
    session: Session,
) -> None:
    """Force a sync of a calendar (or of one event)."""
    if event is None:
        enqueued = session.client.sync(calendar)
        session.emit(enqueued, lambda console, shown: render.generic(console, f"Sync of {calendar}", shown))
    else:
        resynced = session.client.resync_event(calendar, event)
        title = f"Sync of {calendar}, event {event}"
        session.emit(resynced, lambda console, shown: render.generic(console, title, shown))


@command()
def conflicts(
    *,
    calendar: Annotated[
        str | None, typer.Option("--calendar", help="Only this calendar key.", show_default=False)
    ] = None,
    status: Annotated[
        ConflictStatus | None, typer.Option("--status", help="Only open or resolved ones.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (pages are followed).")] = 500,
    session: Session,
) -> None:
    """List conflicts: events a person changed in Google that differ from the schedule."""
    answer = session.client.conflicts(calendar, status.value if status else None, limit=limit)
    session.emit(answer, render.conflicts)


@command()
def resolve(
    *,
    conflict_id: Annotated[str, typer.Argument(help="Conflict id.", show_default=False)],
    action: Annotated[
        ResolveAction,
        typer.Option(
            "--action",
            help="accept_google keeps Google's version (agendador adjusts); republish restores ours.",
            show_default=False,
        ),
    ],
    yes: YesOpt = False,
    session: Session,
) -> None:
    """Resolve a conflict (republish overwrites a person's edit, so it asks first)."""
    if action is ResolveAction.REPUBLISH:
        session.confirm(
            f"Republish conflict {conflict_id}: overwrite (or bring back) the event a person changed in Google?",
            yes=yes,
        )
    answer = session.client.resolve(conflict_id, action.value)
    session.emit(answer, lambda console, shown: render.generic(console, f"Conflict {conflict_id}", shown))


@command()
def health(
    *,
    session: Session,
) -> None:
    """Overall health (ok, degraded, failing) and each calendar's sync state."""
    session.emit(session.client.health(), render.health)


def main() -> None:
    """Console-script entry point (``calsync``)."""
    app()
