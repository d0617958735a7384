"""JSON logs for Cloud Logging that carry sync metadata only.

structlog and the standard library share one formatter, so library warnings come out as the same
JSON. Each line has ``severity``, ``message``, ``timestamp``, the trace
(``logging.googleapis.com/trace`` from ``X-Cloud-Trace-Context``) and the function's execution id.

Only allow-listed fields leave the process (ids, counts, statuses, durations, reasons); any other
field is dropped and named in ``dropped_fields``. Every string that does get out — the message
included — is scrubbed of e-mail addresses, bearer/OAuth/sync tokens and JWTs. Event summaries,
descriptions and attendees therefore never reach the logs, whatever a caller passes.
See https://cloud.google.com/logging/docs/structured-logging.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

# Fields that may leave the process. Values are still scrubbed.
ALLOWED_FIELDS = frozenset(
    {
        "function",
        "job",
        "reason",
        "mode",
        "status",
        "code",
        "http_status",
        "error_code",
        "error_type",
        "calendar_key",
        "calendar_kind",
        "event_id",
        "allocation_id",
        "conflict_id",
        "conflict_kind",
        "channel_id",
        "resource_state",
        "message_number",
        "plan_id",
        "task_name",
        "queue",
        "env",
        "clinic_id",
        "holder",
        "pending",
        "attempt",
        "retry_after_s",
        "pages",
        "fetched",
        "written",
        "unchanged",
        "tombstoned",
        "conflicts_opened",
        "conflicts_resolved",
        "duration_ms",
        "count",
        "created",
        "updated",
        "deleted",
        "skipped",
        "enqueued",
        "done",
        "total",
        "method",
        "route",
        "actor",
        "action",
        "schema_version",
        "query_version",
        "full_sync",
        "continued",
        "budget_s",
        "errors",
        "logger",
        "dropped_fields",
        "upstream_reason",
        "writer_index",
        "locked_until",
    }
)
ALLOWED_SUFFIXES = ("_count", "_ms", "_s", "_total")
# Keys the formatter itself produces.
_STRUCTURAL = frozenset(
    {
        "message",
        "severity",
        "timestamp",
        "logging.googleapis.com/trace",
        "logging.googleapis.com/spanId",
        "logging.googleapis.com/labels",
        "exception",
    }
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_SECRETS = [
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-~+/]+=*"),
    re.compile(r"ya29\.[A-Za-z0-9._\-]+"),  # Google OAuth access tokens
    re.compile(r"1//[A-Za-z0-9._\-]+"),  # Google OAuth refresh tokens
    re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),  # JWTs
    re.compile(r"(?i)((?:sync|page|access|refresh|id)_?token[\"']?\s*[:=]\s*[\"']?)[^\s\"',}&]+"),
    re.compile(r"(?i)((?:sync|page)Token=)[^\s&\"']+"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
]
REDACTED = "[redacted]"

_LEVEL_TO_SEVERITY = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "warn": "WARNING",
    "error": "ERROR",
    "exception": "ERROR",
    "critical": "CRITICAL",
}

_request_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "calsync_request_context", default=None
)


def scrub(text: str) -> str:
    """``text`` with e-mail addresses and anything token-shaped replaced by ``[redacted]``."""
    for pattern in _SECRETS:
        replacement: Any = (lambda m: m.group(1) + REDACTED) if pattern.groups else REDACTED
        text = pattern.sub(replacement, text)
    return _EMAIL.sub(REDACTED, text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _scrub_value(v) for k, v in value.items() if _allowed(str(k))}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_value(v) for v in value]
    return scrub(str(value))


def _allowed(key: str) -> bool:
    return key in ALLOWED_FIELDS or key.endswith(ALLOWED_SUFFIXES)


def _allow_list(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Keep allow-listed fields only, scrubbing every value; name what was dropped."""
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in event_dict.items():
        if key in _STRUCTURAL:
            out[key] = _scrub_value(value) if key in {"message", "exception"} else value
        elif _allowed(key):
            out[key] = _scrub_value(value)
        else:
            dropped.append(key)
    if dropped:
        out["dropped_fields"] = sorted(set(dropped) | set(out.get("dropped_fields", [])))
    return out


def _cloud_fields(_: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Rename structlog's keys to Cloud Logging's and add the request context."""
    event_dict["message"] = str(event_dict.pop("event", ""))
    level = str(event_dict.pop("level", method_name)).lower()
    event_dict["severity"] = _LEVEL_TO_SEVERITY.get(level, "DEFAULT")
    context = _request_context.get() or {}
    for key, value in context.items():
        event_dict.setdefault(key, value)
    return event_dict


def _exception_without_message(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Render ``exc_info`` as frames and exception types only: messages may quote event content."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or exc_info[0] is None:
        return event_dict
    parts: list[str] = []
    exc: BaseException | None = exc_info[1]
    while exc is not None:
        frames = traceback.format_tb(exc.__traceback__)
        parts.append("".join(frames) + f"{type(exc).__module__}.{type(exc).__qualname__}")
        exc = exc.__cause__ or exc.__context__
    event_dict["exception"] = "Traceback (most recent call last):\n" + "\n--- caused by ---\n".join(parts)
    event_dict.setdefault("error_type", exc_info[0].__name__)
    return event_dict


def _drop_stdlib_extras(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in ("_record", "_from_structlog", "positional_args"):
        event_dict.pop(key, None)
    return event_dict


_configured = False


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Install the JSON formatter on the root logger (idempotent; ``stream`` defaults to stdout)."""
    global _configured
    pre_chain: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            _drop_stdlib_extras,
            _exception_without_message,
            _cloud_fields,
            _allow_list,
            structlog.processors.JSONRenderer(sort_keys=False, default=str),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_calsync", False):
            root.removeHandler(old)
    handler._calsync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # google-api-core's first RPC turns off propagation of the "google" logger unless that logger looks
    # configured; keep Google's library logs flowing through this formatter (and its redaction).
    google_logger = logging.getLogger("google")
    google_logger.setLevel(level.upper())
    google_logger.propagate = True
    if not _configured:
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                *pre_chain,
                structlog.processors.StackInfoRenderer(),
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
        _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger writing through the JSON formatter."""
    if not _configured:
        configure()
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


def trace_fields(headers: Mapping[str, str], project: str) -> dict[str, Any]:
    """Cloud Logging correlation fields from ``X-Cloud-Trace-Context`` and ``Function-Execution-Id``."""
    fields: dict[str, Any] = {}
    trace_header = headers.get("X-Cloud-Trace-Context", "")
    if trace_header:
        trace_id, _, rest = trace_header.partition("/")
        span_id = rest.split(";", 1)[0]
        if re.fullmatch(r"[0-9a-fA-F]{1,64}", trace_id):
            fields["logging.googleapis.com/trace"] = f"projects/{project}/traces/{trace_id}"
        if span_id.isdigit():
            fields["logging.googleapis.com/spanId"] = span_id
    execution_id = headers.get("Function-Execution-Id", "")
    if execution_id and re.fullmatch(r"[A-Za-z0-9_\-]{1,128}", execution_id):
        fields["logging.googleapis.com/labels"] = {"execution_id": execution_id}
    return fields


@contextmanager
def request_context(headers: Mapping[str, str], *, project: str, function: str) -> Iterator[None]:
    """Attach trace fields and the function name to every log line inside the block."""
    token = _request_context.set({**trace_fields(headers, project), "function": function})
    try:
        yield
    finally:
        _request_context.reset(token)


class Summary(dict[str, Any]):
    """Fields of an invocation's one summary line (``status`` defaults to ``ok``)."""


@contextmanager
def invocation(logger: structlog.stdlib.BoundLogger, message: str) -> Iterator[Summary]:
    """Log one summary line when the block ends, with ``duration_ms`` and whatever was put in it."""
    summary = Summary(status="ok")
    started = time.monotonic()
    try:
        yield summary
    except BaseException as exc:
        summary["status"] = "error"
        summary.setdefault("error_type", type(exc).__name__)
        raise
    finally:
        summary["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        level = logging.ERROR if summary.get("status") == "error" else logging.INFO
        logger.log(level, message, **summary)
