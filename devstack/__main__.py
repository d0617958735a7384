"""``python -m devstack up|down|status|demo``: the local stack's command line (``make up/down/demo``).

Exit codes: 0 success; 1 the stack could not be started, checked or stopped (the message says why);
``status`` answers 3 when no stack is running from the state dir (as ``systemctl status`` does).
"""

from __future__ import annotations

import requests
import typer
from rich.console import Console
from rich.table import Table

from devstack import demo as demo_module
from devstack import procs, stack
from devstack.demo import endpoints_table

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(highlight=False)
NOT_RUNNING = 3


def _config() -> stack.StackConfig:
    try:
        return stack.StackConfig.from_env()
    except stack.StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@app.command()
def up() -> None:
    """Start the stack (or confirm the running one) and write endpoints.json and pids.json."""
    config = _config()
    try:
        result = stack.up(config, say=console.print)
    except (stack.StackError, procs.ServerError) as exc:
        console.print(f"[red]make up failed:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(endpoints_table(result.endpoints, result.processes))
    word = "already running" if result.already_running else "up"
    console.print(f"[green]Stack {word}.[/green] Endpoints: {config.endpoints_file}")


@app.command()
def down() -> None:
    """Stop exactly the processes `up` started (by pid) and wait until their ports are closed."""
    config = _config()
    stopped = stack.down(config)
    if stopped is None:
        console.print(f"Nothing running from {config.state_dir}.")
        return
    table = Table(title="stopped")
    for column in ("service", "pid", "port", "outcome"):
        table.add_column(column)
    for item in stopped:
        style = "red" if item.outcome == "port still open" else ""
        table.add_row(item.record.name, str(item.record.pid), str(item.record.port), item.outcome, style=style)
    console.print(table)
    if any(item.outcome == "port still open" for item in stopped):
        console.print("[red]Some ports are still open after their process stopped.[/red]")
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Show each recorded process: alive, answering, address. Exit 1 if any is not, 3 if none runs."""
    config = _config()
    health = stack.status(config)
    if health is None:
        console.print(f"No stack running from {config.state_dir}.")
        raise typer.Exit(NOT_RUNNING)
    table = Table(title=f"calsync local stack ({config.state_dir})")
    for column in ("service", "pid", "port", "alive", "answers", "address"):
        table.add_column(column)
    for item in health:
        table.add_row(
            item.record.name,
            str(item.record.pid),
            str(item.record.port),
            "yes" if item.alive else "[red]no[/red]",
            "yes" if item.answering else "[red]no[/red]",
            item.record.address,
        )
    console.print(table)
    endpoints = stack.read_endpoints(config)
    if endpoints is not None:
        _print_scheduler(endpoints.scheduler)
    if not all(item.answering for item in health):
        raise typer.Exit(1)


def _print_scheduler(url: str) -> None:
    """The scheduler loop's jobs: interval, runs, last answer from renew, time to the next run."""
    try:
        jobs = requests.get(url, timeout=5).json()["jobs"]
    except (requests.RequestException, ValueError, KeyError):
        return
    table = Table(title="scheduler -> renew")
    for column in ("job", "every (s)", "runs", "last answer", "next in (s)"):
        table.add_column(column)
    for job in jobs:
        last = job["last_status"] if job["last_status"] is not None else job["last_error"] or "-"
        table.add_row(job["name"], f"{job['interval_s']:g}", str(job["runs"]), str(last), str(job["next_in_s"]))
    console.print(table)


@app.command()
def demo() -> None:
    """On a fresh stack: load a week of two clinics, provision, publish, edit as people in Google, report, stop."""
    raise typer.Exit(demo_module.run(console))


if __name__ == "__main__":
    app()
