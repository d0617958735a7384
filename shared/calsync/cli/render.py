"""Rich tables of the admin API's answers, one function per command.

Each renderer takes the typed answer of its route (a :mod:`calsync.results` model, read by
:class:`~calsync.cli.client.AdminClient`) and reads its fields. Tables of items show the columns a
command names first, then the other fields the answer holds in declaration order, so a field added
to a model appears without touching the renderer. Values are escaped before printing, so an id holding ``[...]``
is shown as is, never as rich markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from calsync.results import ConflictsPage, HealthAnswer, PlanAnswer, PlanCalendar, ProgressAnswer, Totals

# Columns shown first in a plan's details, then the item's other fields.
ITEM_COLUMNS = ("action", "allocation_id", "event_id", "start", "end", "reason")
WARNING_COLUMNS = ("allocation_id", "calendar_id", "kind", "start", "end")
ID_COLUMNS = frozenset({"id", "plan_id", "key", "calendar_id", "event_id", "allocation_id"})
MAX_ID_WIDTH = 80
STATUS_STYLE = {
    "ok": "green",
    "done": "green",
    "running": "cyan",
    "planned": "cyan",
    "degraded": "yellow",
    "open": "yellow",
    "resolved": "green",
    "failing": "red",
    "failed": "red",
    "error": "red",
}
ACTION_STYLE = {"create": "green", "update": "cyan", "delete": "red", "skip": "yellow"}


def fields(model: BaseModel) -> dict[str, Any]:
    """The fields an answer holds, by name in declaration order (an optional key the API left out is absent)."""
    return {name: getattr(model, name) for name in type(model).model_fields if name in model.model_fields_set}


def text(value: Any) -> str:
    """A value as a cell: ``-`` for null, times in ISO 8601, lists and models joined, everything escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return escape(value.isoformat())
    if isinstance(value, BaseModel):
        return text(fields(value))
    if isinstance(value, list):
        return escape(", ".join(text(v) for v in value)) if value else "-"
    if isinstance(value, dict):
        return escape(", ".join(f"{k}={text(v)}" for k, v in value.items())) if value else "-"
    return escape(str(value))


def styled(value: Any, styles: Mapping[str, str] = STATUS_STYLE) -> str:
    """A status-like value, coloured by meaning."""
    cell = text(value)
    style = styles.get(str(value))
    return f"[{style}]{cell}[/{style}]" if style else cell


def _models(value: Any) -> list[BaseModel]:
    """The items of a list of models (empty for anything else)."""
    return [item for item in value if isinstance(item, BaseModel)] if isinstance(value, list) else []


def _columns(rows: Sequence[Mapping[str, Any]], first: Iterable[str] = ()) -> list[str]:
    seen = [c for c in dict.fromkeys(first) if any(c in row for row in rows)]
    for row in rows:
        seen += [key for key in row if key not in seen]
    return seen


def records_table(title: str, rows: Sequence[Mapping[str, Any]], first: Iterable[str] = ()) -> Table:
    """A table of records (a model's ``fields``): the ``first`` columns, then every other one."""
    columns = _columns(rows, first)
    table = Table(title=title, title_justify="left")
    for column in columns:
        # Ids are copied into the next command: give them their full width, let other columns wrap.
        width = max((len(text(row.get(column))) for row in rows), default=0) if column in ID_COLUMNS else None
        table.add_column(column, overflow="fold", min_width=min(width, MAX_ID_WIDTH) if width else None)
    for row in rows:
        cells = [styled(row.get(c), ACTION_STYLE if c == "action" else STATUS_STYLE) for c in columns]
        table.add_row(*cells)
    return table


def mapping_table(title: str, answer: BaseModel) -> Table:
    """Scalar fields of an answer as key/value rows (lists of models are left to ``records_table``)."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in fields(answer).items():
        if not _models(value):
            table.add_row(escape(name), styled(value))
    return table


def generic(console: Console, title: str, answer: BaseModel) -> None:
    """Any answer: its scalar fields, then one table per list of models."""
    console.print(mapping_table(title, answer))
    for name, value in fields(answer).items():
        rows = _models(value)
        if rows:
            console.print(records_table(name, [fields(row) for row in rows]))


# --- plan -------------------------------------------------------------------------------------------


def _counts(counts: PlanCalendar | Totals) -> list[str]:
    return [str(counts.create), str(counts.update), str(counts.delete), str(counts.skip)]


def plan(console: Console, answer: PlanAnswer) -> None:
    """A plan: per-calendar counts, the quota estimate, every planned change, the skips with reasons, warnings."""
    counts = Table(title=f"Plan {text(answer.plan_id)}", title_justify="left")
    counts.add_column("calendar", overflow="fold")
    for action in ("create", "update", "delete", "skip"):
        counts.add_column(action, justify="right", style=ACTION_STYLE[action])
    # Whose events the deletes touch (the control calendar is shared by every clinic).
    counts.add_column("deletes of clinic", overflow="fold")
    for calendar in answer.calendars:
        owners = ", ".join(f"{k}:{v}" for k, v in sorted((calendar.deletes_by_clinic or {}).items()))
        counts.add_row(text(calendar.calendar_id), *_counts(calendar), owners or "-")
    counts.add_section()
    counts.add_row("[bold]total[/bold]", *_counts(answer.totals), "")
    console.print(counts)

    console.print(
        f"Quota estimate: {text(answer.quota.requests)} requests, about {text(answer.quota.minutes)} min "
        f"at 600 requests/min/user.  Judged at {text(answer.planned_at)} (events started by then are past); "
        f"expires at {text(answer.expires_at)}."
    )
    changes: list[dict[str, Any]] = []
    skips: list[dict[str, Any]] = []
    for calendar in answer.calendars:
        for item in calendar.items:
            row = {"calendar_id": calendar.calendar_id, **fields(item)}
            (skips if item.action == "skip" else changes).append(row)
    if changes:
        console.print(records_table("Changes", changes, ("calendar_id", *ITEM_COLUMNS)))
    else:
        console.print("No changes planned.")
    if skips:
        console.print(records_table("Skipped (never written)", skips, ("calendar_id", "reason", *ITEM_COLUMNS)))
    if answer.warnings:
        warned = [fields(w) for w in answer.warnings]
        console.print(records_table("Warnings: allocations over busy time (not blocking)", warned, WARNING_COLUMNS))
    if answer.clear_future:
        console.print(
            "[bold red]clear_future:[/bold red] this plan also deletes future calsync events not in the schedule; "
            "apply asks twice."
        )
    console.print(f"Apply with: calsync apply {text(answer.plan_id)}")


# --- apply / status ---------------------------------------------------------------------------------


def publish_status(console: Console, answer: ProgressAnswer) -> None:
    """A plan's progress: status, done/total, per calendar when given, and the errors."""
    console.print(f"Plan {text(answer.plan_id)}: {styled(answer.status)}, {answer.done}/{answer.total} done")
    if answer.calendars:
        rows = [fields(calendar) for calendar in answer.calendars]
        console.print(records_table("Per calendar", rows, ("calendar_id", "done", "total")))
    if answer.errors:
        rows = [fields(error) for error in answer.errors]
        console.print(records_table("Errors", rows, ("calendar_id", "event_id", "code")))


# --- admin ------------------------------------------------------------------------------------------


def conflicts(console: Console, answer: ConflictsPage) -> None:
    """Conflicts as a table (or a line saying there are none)."""
    if not answer.items:
        console.print("No conflicts.")
        return
    first = ("id", "status", "kind", "calendar_id", "event_id", "allocation_id", "suggestion", "detected_at")
    rows = [fields(item) for item in answer.items]
    console.print(records_table(f"Conflicts ({len(rows)})", rows, first))
    if answer.next_page_token:
        console.print("More conflicts exist: raise --limit to see them.")


def health(console: Console, answer: HealthAnswer) -> None:
    """Overall status and the instant it was judged at, one row per calendar, then professionals' free/busy."""
    console.print(f"Overall: {styled(answer.status)} (checked at {text(answer.checked_at)})")
    if answer.calendars:
        first = (
            "key",
            "kind",
            "status",
            "last_synced_at",
            "channel_expires_at",
            "open_conflicts",
            "google_calendar_id",
        )
        console.print(records_table("Calendars", [fields(calendar) for calendar in answer.calendars], first))
        for clinic in sorted({c.clinic_id for c in answer.calendars if c.reconnect and c.clinic_id}):
            console.print(f"Clinic {clinic} must reconnect its Google account: calsync connect --clinic {clinic}")
    else:
        console.print("No calendars registered.")
    if answer.free_busy:
        rows = [fields(professional) for professional in answer.free_busy]
        columns = ("clinic_id", "professional_id", "readable", "reason")
        console.print(records_table("Professionals' own calendars (free/busy)", rows, columns))
