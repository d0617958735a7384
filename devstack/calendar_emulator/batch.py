"""Batch requests: ``multipart/mixed`` bodies of ``application/http`` parts, in and out.

Format per https://developers.google.com/workspace/calendar/api/guides/batch: each part holds a full
HTTP request with a path-only URL; outer headers apply to every part except ``Content-*`` ones and
inner headers override them; responses come back in request order with ``Content-ID: <response-…>``.
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
from dataclasses import dataclass, field
from http import HTTPStatus

from devstack.calendar_emulator.errors import ApiError

MAX_PARTS = 1000


@dataclass
class Part:
    """One HTTP request inside a batch."""

    content_id: str | None
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class PartResponse:
    """One HTTP response to put into the batch answer."""

    content_id: str | None
    status: int
    headers: dict[str, str]
    body: bytes


def parse(content_type: str, body: bytes, outer_headers: dict[str, str]) -> list[Part]:
    """Split a batch body into parts; 400 when it is not multipart/mixed or has too many parts."""
    if not content_type.lower().startswith("multipart/mixed"):
        raise ApiError(400, "badContent", "Batch requests must be multipart/mixed.")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ApiError(400, "badContent", "Batch request has no parts.")
    raw_parts = list(message.iter_parts())
    if len(raw_parts) > MAX_PARTS:
        raise ApiError(400, "batchSizeTooLarge", f"A batch may contain at most {MAX_PARTS} requests.")
    inherited = {k.lower(): v for k, v in outer_headers.items() if not k.lower().startswith("content-")}
    parts = []
    for raw in raw_parts:
        payload = raw.get_payload(decode=True)
        if not isinstance(payload, bytes):
            raise ApiError(400, "badContent", "Batch part is not an HTTP request.")
        parts.append(_parse_http(raw.get("Content-ID"), payload, inherited))
    return parts


def _parse_http(content_id: str | None, payload: bytes, inherited: dict[str, str]) -> Part:
    head, _, body = payload.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("utf-8").strip("\n").split("\n")
    request_line = lines[0].split(" ")
    if len(request_line) < 2:
        raise ApiError(400, "badContent", "Batch part has no request line.")
    headers = dict(inherited)
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    # Part bodies are JSON; the client's line endings were normalised above, harmless for JSON.
    return Part(content_id, request_line[0].upper(), request_line[1], headers, body.strip(b"\n"))


def render(responses: list[PartResponse]) -> tuple[str, bytes]:
    """The batch answer: ``(content_type, body)``."""
    boundary = "batch_" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for resp in responses:
        lines = [f"--{boundary}", "Content-Type: application/http"]
        if resp.content_id:
            inner = resp.content_id.strip()
            inner = inner[1:-1] if inner.startswith("<") and inner.endswith(">") else inner
            lines.append(f"Content-ID: <response-{inner}>")
        reason = HTTPStatus(resp.status).phrase if resp.status in HTTPStatus._value2member_map_ else ""
        lines += ["", f"HTTP/1.1 {resp.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in resp.headers.items()]
        lines += [f"Content-Length: {len(resp.body)}", "", ""]
        chunks.append("\r\n".join(lines).encode() + resp.body + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/mixed; boundary={boundary}", b"".join(chunks)
