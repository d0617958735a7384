"""Rich tables of the admin API's answers, one function per command.

The renderers read answers defensively (``.get`` everywhere, unknown keys shown generically): the CLI
must stay useful when the API grows a field, and must never crash on a shape it did not expect.
Values are escaped before printing, so an id holding ``[...]`` is shown as is, never as rich markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Columns shown first in a plan's details (when present), then any others in the order they come.
ITEM_COLUMNS = ("action", "allocation_id", "event_id", "start", "end", "reason")
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


def text(value: Any) -> str:
    """A JSON value as a cell: ``-`` for null, lists joined, everything escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
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


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _columns(rows: Sequence[Mapping[str, Any]], first: Iterable[str] = ()) -> list[str]:
    seen = [c for c in dict.fromkeys(first) if any(c in row for row in rows)]
    for row in rows:
        seen += [key for key in row if key not in seen]
    return seen


def records_table(title: str, rows: Sequence[Mapping[str, Any]], first: Iterable[str] = ()) -> Table:
    """A table of JSON objects: the ``first`` columns (when present), then every other key."""
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


def mapping_table(title: str, data: Mapping[str, Any]) -> Table:
    """Scalar fields of an answer as key/value rows (lists of objects are left to ``records_table``)."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        if not _dicts(value):
            table.add_row(escape(key), styled(value))
    return table


def generic(console: Console, title: str, data: Mapping[str, Any]) -> None:
    """Any answer: its scalar fields, then one table per list of objects."""
    console.print(mapping_table(title, data))
    for key, value in data.items():
        rows = _dicts(value)
        if rows:
            console.print(records_table(key, rows))


# --- plan -------------------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) else len(value) if isinstance(value, list) else 0


def plan(console: Console, answer: Mapping[str, Any]) -> None:
    """A plan: per-calendar counts, the quota estimate, every planned change, then the skips with reasons."""
    calendars = _dicts(answer.get("calendars"))
    counts = Table(title=f"Plan {text(answer.get('plan_id'))}", title_justify="left")
    counts.add_column("calendar", overflow="fold")
    for action in ("create", "update", "delete", "skip"):
        counts.add_column(action, justify="right", style=ACTION_STYLE[action])
    # Whose events the deletes touch (the control calendar is shared by every clinic).
    counts.add_column("deletes of clinic", overflow="fold")
    for calendar in calendars:
        owners = ", ".join(f"{k}:{v}" for k, v in sorted(_mapping(calendar.get("deletes_by_clinic")).items()))
        counts.add_row(
            text(calendar.get("calendar_id")), *(str(_count(calendar.get(a))) for a in ACTION_STYLE), owners or "-"
        )
    totals = _mapping(answer.get("totals"))
    counts.add_section()
    counts.add_row("[bold]total[/bold]", *(str(_count(totals.get(a))) for a in ACTION_STYLE), "")
    console.print(counts)

    quota = _mapping(answer.get("quota"))
    console.print(
        f"Quota estimate: {text(quota.get('requests'))} requests, about {text(quota.get('minutes'))} min "
        f"at 600 requests/min/user.  Expires at {text(answer.get('expires_at'))}."
    )
    changes: list[dict[str, Any]] = []
    skips: list[dict[str, Any]] = []
    for calendar in calendars:
        for item in _dicts(calendar.get("items")):
            row = {"calendar_id": calendar.get("calendar_id"), **item}
            (skips if item.get("action") == "skip" else changes).append(row)
    if changes:
        console.print(records_table("Changes", changes, ("calendar_id", *ITEM_COLUMNS)))
    else:
        console.print("No changes planned.")
    if skips:
        console.print(records_table("Skipped (never written)", skips, ("calendar_id", "reason", *ITEM_COLUMNS)))
    if answer.get("confirm_clear_future_token"):
        console.print(
            "[bold red]clear_future:[/bold red] this plan also deletes future calsync events not in the schedule; "
            "apply asks twice."
        )
    console.print(f"Apply with: calsync apply {text(answer.get('plan_id'))}")


# --- apply / status ---------------------------------------------------------------------------------


def publish_status(console: Console, answer: Mapping[str, Any]) -> None:
    """A plan's progress: status, done/total, per calendar when given, and the errors."""
    console.print(
        f"Plan {text(answer.get('plan_id'))}: {styled(answer.get('status'))}, "
        f"{text(answer.get('done'))}/{text(answer.get('total'))} done"
    )
    calendars = _dicts(answer.get("calendars"))
    if calendars:
        console.print(records_table("Per calendar", calendars, ("calendar_id", "done", "total", "status")))
    errors = answer.get("errors")
    if isinstance(errors, list) and errors:
        rows = [e if isinstance(e, Mapping) else {"error": e} for e in errors]
        console.print(records_table("Errors", rows, ("calendar_id", "event_id", "code", "message")))


# --- admin ------------------------------------------------------------------------------------------


def conflicts(console: Console, answer: Mapping[str, Any]) -> None:
    """Conflicts as a table (or a line saying there are none)."""
    items = _dicts(answer.get("items"))
    if not items:
        console.print("No conflicts.")
        return
    first = ("id", "status", "kind", "calendar_id", "event_id", "allocation_id", "suggestion", "detected_at")
    console.print(records_table(f"Conflicts ({len(items)})", items, first))
    if answer.get("next_page_token"):
        console.print("More conflicts exist: raise --limit to see them.")


def health(console: Console, answer: Mapping[str, Any]) -> None:
    """Overall status, then one row per calendar."""
    console.print(f"Overall: {styled(answer.get('status'))}")
    calendars = _dicts(answer.get("calendars"))
    if not calendars:
        console.print("No calendars registered.")
        return
    first = (
        "key",
        "kind",
        "status",
        "last_synced_at",
        "channel_expires_at",
        "open_conflicts",
        "google_calendar_id",
    )
    console.print(records_table("Calendars", calendars, first))
