"""Cloud Function ``webhook``: receives Google Calendar push notifications (HTTP, unauthenticated).

Refuses a body, hands the ``X-Goog-*`` headers to ``services.push`` and answers with its status. It
never calls Calendar, so it answers in milliseconds; the sync runs from a task. ``calsync.http.edge``
binds the log context and writes the summary line (a store or queue outage answers 503, so Google
redelivers). Guide: https://developers.google.com/workspace/calendar/api/guides/push#receiving-notifications
"""

from __future__ import annotations

import flask
import functions_framework

from calsync.bootstrap import Container
from calsync.http import edge
from calsync.http.configs import push_config
from calsync.services.push import MAX_BODY_BYTES, RateLimiter, UnknownChannelCache, check_body, handle_notification

# Unknown channel ids are caller-controlled: cap the store writes they cause per instance, and
# answer an id already found unknown from memory, without a store read.
_unknown_limiter = RateLimiter(rate_per_s=1.0, burst=10)
_unknown_cache = UnknownChannelCache(max_ids=10_000)


def _answer(status: int, reason: str, **fields: object) -> flask.Response:
    edge.current_summary().update(
        status="ok" if status < 400 else "rejected", http_status=status, reason=reason, **fields
    )
    return edge.json_response({"result": reason}, status)


def run(container: Container, request: flask.Request) -> flask.Response:
    """Answer one push notification (see ``services.push`` for the status of each case)."""
    if request.method != "POST":
        return _answer(405, "method_not_allowed")
    # Never read more than the limit: a large body is refused unread.
    declared = request.content_length
    body = b"" if (declared or 0) > MAX_BODY_BYTES else request.stream.read(MAX_BODY_BYTES + 1)
    refused = check_body(declared, body)
    if refused is not None:
        return _answer(refused.http_status, refused.reason)
    outcome = handle_notification(
        dict(request.headers.items()),
        store=container.store,
        queue=container.queue,
        clock=container.clock,
        config=push_config(container.settings),
        unknown_limiter=_unknown_limiter,
        unknown_cache=_unknown_cache,
    )
    return _answer(
        outcome.http_status,
        outcome.reason,
        channel_id=outcome.channel_id,
        calendar_key=outcome.calendar_key,
        resource_state=outcome.resource_state,
        message_number=outcome.message_number,
        enqueued=int(outcome.enqueued),
    )


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Serve one notification at the edge."""
    return edge.serve("webhook", request, run, message="webhook.notification")
