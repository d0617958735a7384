"""Cloud Function ``webhook``: receives Google Calendar push notifications (HTTP, unauthenticated).

Thin entry point: refuse a body, hand the ``X-Goog-*`` headers to ``services.push``, answer with its
status. It never calls Calendar, so it answers in milliseconds; the sync runs from a task.
Guide: https://developers.google.com/workspace/calendar/api/guides/push#receiving-notifications
"""

from __future__ import annotations

import flask
import functions_framework

from calsync.bootstrap import get_container
from calsync.logs import get_logger, invocation, request_context
from calsync.services.push import MAX_BODY_BYTES, PushConfig, RateLimiter, check_body, handle_notification

log = get_logger("calsync.webhook")
# Unknown channel ids are caller-controlled: cap the store writes they cause per instance.
_unknown_limiter = RateLimiter(rate_per_s=1.0, burst=10)


def _response(status: int, reason: str) -> flask.Response:
    return flask.make_response(flask.jsonify({"result": reason}), status)


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    """Answer one push notification (see ``services.push`` for the status of each case)."""
    container = get_container()
    headers = dict(request.headers.items())
    settings = container.settings
    with (
        request_context(headers, project=settings.gcp_project, function="webhook"),
        invocation(log, "webhook.notification") as summary,
    ):
        if request.method != "POST":
            summary.update(status="rejected", http_status=405, reason="method_not_allowed")
            return _response(405, "method_not_allowed")
        # Never read more than the limit: a large body is refused unread.
        declared = request.content_length
        body = b"" if (declared or 0) > MAX_BODY_BYTES else request.stream.read(MAX_BODY_BYTES + 1)
        refused = check_body(declared, body)
        if refused is not None:
            summary.update(status="rejected", http_status=refused.http_status, reason=refused.reason)
            return _response(refused.http_status, refused.reason)
        outcome = handle_notification(
            headers,
            store=container.store,
            queue=container.queue,
            clock=container.clock,
            config=PushConfig(
                sync_queue=settings.sync_queue,
                sync_url=settings.sync_url,
                debounce_s=settings.debounce_s,
                unknown_channel_interval_s=settings.unknown_channel_interval_s,
            ),
            unknown_limiter=_unknown_limiter,
        )
        summary.update(
            status="ok" if outcome.http_status < 400 else "rejected",
            http_status=outcome.http_status,
            reason=outcome.reason,
            channel_id=outcome.channel_id,
            calendar_key=outcome.calendar_key,
            resource_state=outcome.resource_state,
            message_number=outcome.message_number,
            enqueued=int(outcome.enqueued),
        )
        return _response(outcome.http_status, outcome.reason)
