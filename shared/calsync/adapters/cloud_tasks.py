"""``TaskQueue`` on Cloud Tasks (google-cloud-tasks ``tasks_v2``): at-least-once HTTP tasks.

Each task POSTs a JSON body to a function URL, with an OIDC token minted for the invoker service
account (audience = the target URL) when one is configured, so the function can stay private.
Callers name tasks deterministically (a short id); Cloud Tasks then refuses a second task of the same
name with ``AlreadyExists``, which this adapter reports as "already queued" (``False``). Note that a
name stays reserved for a while after its task ran or was deleted (about an hour, up to days), so
names must identify one piece of work, not a calendar forever.

Guide: https://cloud.google.com/tasks/docs/creating-http-target-tasks
Task names: https://cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues.tasks

The local stack runs ``gcloud-tasks-emulator`` (``for_emulator``): it dispatches tasks the same way
but ignores OIDC tokens and never deduplicates names (see docs in ``devstack/tasks_emulator.py``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import grpc  # grpcio ships no type hints (pyproject: ignore_missing_imports)
import pydantic_core
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from calsync import errors
from calsync.logs import get_logger
from calsync.model import utc
from calsync.ports import TaskRequest

# Cloud Tasks task ids: letters, digits, hyphens, underscores; at most 500 characters.
TASK_ID_MAX_LEN = 500
_TASK_ID_DISALLOWED = re.compile(r"[^A-Za-z0-9_-]")
_TASK_ID_HASH_LEN = 16

# gRPC statuses that mean "try again": the service is overloaded, restarting or slow.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.ResourceExhausted,
    gexc.InternalServerError,
    gexc.Aborted,
)

log = get_logger(__name__)

DEFAULT_RETRY_INITIAL_S = 0.2
DEFAULT_RETRY_MAX_DELAY_S = 2.0
DEFAULT_RETRY_TOTAL_S = 10.0
DEFAULT_CALL_TIMEOUT_S = 10.0


def task_id(name: str) -> str:
    """A valid Cloud Tasks task id for ``name``: unchanged when valid, else sanitised + a hash suffix.

    The hash of the original name keeps two names that sanitise alike (``a:b`` and ``a.b``) distinct,
    so deduplication never merges different work.
    """
    if not name:
        raise errors.InvalidRequest("task name must not be empty")
    if len(name) <= TASK_ID_MAX_LEN and not _TASK_ID_DISALLOWED.search(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_TASK_ID_HASH_LEN]
    head = _TASK_ID_DISALLOWED.sub("_", name)[: TASK_ID_MAX_LEN - _TASK_ID_HASH_LEN - 1]
    return f"{head}-{digest}"


def default_retry(total_s: float = DEFAULT_RETRY_TOTAL_S) -> Retry:
    """Exponential backoff with jitter on transient gRPC errors, bounded by ``total_s`` in all."""
    return Retry(
        predicate=if_exception_type(*TRANSIENT_ERRORS),
        initial=DEFAULT_RETRY_INITIAL_S,
        maximum=DEFAULT_RETRY_MAX_DELAY_S,
        multiplier=2.0,
        timeout=total_s,
    )


class CloudTasksQueue:
    """``ports.TaskQueue`` on a ``tasks_v2.CloudTasksClient`` (Google's service or the emulator)."""

    def __init__(
        self,
        project: str,
        location: str,
        *,
        client: tasks_v2.CloudTasksClient | None = None,
        emulator_host: str | None = None,
        invoker_service_account: str = "",
        invokers_by_url: Mapping[str, str] | None = None,
        oidc_audience: str | None = None,
        retry: Retry | None = None,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> None:
        """Use ``client``, or an insecure channel to ``emulator_host``, or Google's default client.

        ``invoker_service_account`` (empty: none) is the service account whose OIDC token Cloud Tasks
        attaches; the token's audience is ``oidc_audience`` or else each task's URL.
        ``invokers_by_url`` gives each target its own invoker (function URL prefix → account), so an
        account that may call sync cannot call publish; a URL none of them prefixes uses the default.
        """
        if client is not None and emulator_host:
            raise ValueError("pass either client or emulator_host, not both")
        if client is None:
            if emulator_host:
                # The emulator speaks plaintext gRPC and needs no credentials.
                transport = CloudTasksGrpcTransport(channel=grpc.insecure_channel(emulator_host))
                client = tasks_v2.CloudTasksClient(transport=transport)
            else:
                client = tasks_v2.CloudTasksClient()
        self._client = client
        self.project = project
        self.location = location
        self._invoker = invoker_service_account
        self._invokers = {url: email for url, email in (invokers_by_url or {}).items() if url and email}
        self._audience = oidc_audience
        self._retry = retry if retry is not None else default_retry()
        self._timeout_s = call_timeout_s

    @classmethod
    def for_emulator(
        cls, host: str, project: str, location: str, *, invoker_service_account: str = ""
    ) -> CloudTasksQueue:
        """A queue adapter talking to ``gcloud-tasks-emulator`` at ``host`` (``127.0.0.1:PORT``)."""
        return cls(project, location, emulator_host=host, invoker_service_account=invoker_service_account)

    @property
    def client(self) -> tasks_v2.CloudTasksClient:
        """The underlying client (for tests and the local stack)."""
        return self._client

    def queue_path(self, queue: str) -> str:
        """``projects/P/locations/L/queues/Q`` of a queue id."""
        return tasks_v2.CloudTasksClient.queue_path(self.project, self.location, queue)

    def task_path(self, queue: str, name: str) -> str:
        """The full task name for a caller's short task ``name`` (sanitised by ``task_id``)."""
        return tasks_v2.CloudTasksClient.task_path(self.project, self.location, queue, task_id(name))

    def invoker_for(self, url: str) -> str:
        """The account whose OIDC token a task to ``url`` carries (empty: none)."""
        matches = [prefix for prefix in self._invokers if url.startswith(prefix)]
        return self._invokers[max(matches, key=len)] if matches else self._invoker

    def build_task(self, task: TaskRequest) -> tasks_v2.Task:
        """The ``tasks_v2.Task`` for a ``TaskRequest``: a JSON POST, named and scheduled if asked."""
        headers: dict[str, str] = {**task.headers, "Content-Type": "application/json"}
        http_request: dict[str, Any] = {
            "url": task.url,
            "http_method": tasks_v2.HttpMethod.POST,
            "headers": headers,
            "body": pydantic_core.to_json(dict(task.payload)),
        }
        invoker = self.invoker_for(task.url)
        if invoker:
            http_request["oidc_token"] = tasks_v2.OidcToken(
                service_account_email=invoker, audience=self._audience or task.url
            )
        fields: dict[str, Any] = {"http_request": tasks_v2.HttpRequest(**http_request)}
        if task.name:
            fields["name"] = self.task_path(task.queue, task.name)
        if task.schedule_time is not None:
            fields["schedule_time"] = utc(task.schedule_time)
        return tasks_v2.Task(**fields)

    def enqueue(self, task: TaskRequest) -> bool:
        """Create the task; False when a task with the same name already exists (already queued).

        Transient errors are retried with backoff (a retry after a lost reply then meets
        ``AlreadyExists``, which is the right answer); when retries run out → ``QueueUnavailable``.
        A request Cloud Tasks calls invalid → ``InvalidRequest``; anything else (missing queue,
        permission) → ``QueueUnavailable`` so the caller answers "retry later" instead of losing work.
        """
        built = self.build_task(task)
        try:
            # Retried here with the client's own retry off, so exactly one bounded policy applies.
            self._retry(self._client.create_task)(
                parent=self.queue_path(task.queue), task=built, retry=None, timeout=self._timeout_s
            )
        except gexc.AlreadyExists:
            log.info("task already queued", queue=task.queue, task_name=task.name, created=False)
            return False
        except gexc.InvalidArgument as exc:
            raise errors.InvalidRequest(f"Cloud Tasks refused the task: {exc.message}", details=_details(task)) from exc
        except (gexc.RetryError, gexc.GoogleAPICallError) as exc:
            log.warning("task enqueue failed", queue=task.queue, task_name=task.name, error_type=type(exc).__name__)
            raise errors.QueueUnavailable(
                f"Cloud Tasks create_task failed: {type(exc).__name__}", details=_details(task)
            ) from exc
        log.info("task enqueued", queue=task.queue, task_name=task.name, created=True)
        return True

    def ensure_queue(self, name: str) -> str:
        """Create queue ``name`` if it does not exist (local stack and tests); returns its full name."""
        path = self.queue_path(name)
        parent = tasks_v2.CloudTasksClient.common_location_path(self.project, self.location)
        try:
            self._retry(self._client.create_queue)(
                parent=parent, queue=tasks_v2.Queue(name=path), retry=None, timeout=self._timeout_s
            )
        except gexc.AlreadyExists:
            pass
        except (gexc.RetryError, gexc.GoogleAPICallError) as exc:
            raise errors.QueueUnavailable(f"Cloud Tasks create_queue failed: {type(exc).__name__}") from exc
        return path

    def close(self) -> None:
        """Close the client's channel."""
        self._client.transport.close()  # type: ignore[no-untyped-call]


def _details(task: TaskRequest) -> dict[str, object]:
    # Only routing metadata: never the payload, which may carry ids we do not log.
    return {"queue": task.queue, "task_name": task.name or ""}
