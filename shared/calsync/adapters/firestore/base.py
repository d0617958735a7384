"""What every Firestore store shares: the client, the per-environment layout, batches and errors.

Every collection is ``{env}_<name>`` (``{env}`` is ``dev|stg|prod``), so environments sharing a
database never see each other; ``{env}_meta/schema`` holds ``{"version": SCHEMA_VERSION}``, created on
first use and checked after. Writes go in batches of at most ``BATCH_LIMIT`` (Firestore's 500). Every
Firestore failure is classified here, once: bad input is ``errors.InvalidRequest`` (final), the rest
``errors.StoreUnavailable`` (retryable). See https://cloud.google.com/firestore/docs/manage-data/transactions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import BaseModel

from calsync import errors

SCHEMA_VERSION = 1
BATCH_LIMIT = 500
# The push state, all the internet-facing webhook reads and writes. Given a push client, it lives in
# its own database, so the webhook's identity can be granted that database only (docs/deploy.md).
PUSH_COLLECTIONS = frozenset({"channels", "unknown_channels"})
GET_ALL_CHUNK = 1000
# The admin listings bound their `start` range by this much before `time_min` (longer events that
# started earlier are not listed; clinic events last hours).
MAX_EVENT_SPAN = timedelta(days=31)

# google-cloud-firestore raises a plain ValueError("Failed to commit transaction in N attempts.") when
# contention exhausts a transaction's attempts (firestore_v1.base_transaction._EXCEED_ATTEMPTS_TEMPLATE).
TRANSACTION_CONTENTION = "Failed to commit transaction"

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)


def classified(fn: Callable[P, R]) -> Callable[P, R]:
    """Classify Firestore failures once, here: bad input is ``InvalidRequest``, the rest ``StoreUnavailable``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except errors.CalsyncError:
            raise
        except ValueError as exc:
            if str(exc).startswith(TRANSACTION_CONTENTION):
                # Contention outlasted the transaction's attempts: transient, the caller retries later.
                raise errors.StoreUnavailable(
                    f"firestore {fn.__name__}: transaction contention", details={"operation": fn.__name__}
                ) from exc
            # A bad document path or value: retrying cannot help, so it is final (a 4xx, not a 503).
            raise errors.InvalidRequest(
                f"firestore {fn.__name__} refused its input: {type(exc).__name__}", details={"operation": fn.__name__}
            ) from exc
        except gexc.InvalidArgument as exc:
            raise errors.InvalidRequest(
                f"firestore {fn.__name__} refused its input: {type(exc).__name__}", details={"operation": fn.__name__}
            ) from exc
        except gexc.GoogleAPIError as exc:
            raise errors.StoreUnavailable(
                f"firestore {fn.__name__} failed: {type(exc).__name__}", details={"operation": fn.__name__}
            ) from exc

    return wrapper


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class FirestoreBase:
    """The client, the environment's namespace and the schema check every aggregate store shares."""

    def __init__(
        self, client: firestore.Client, *, environment: str, push_client: firestore.Client | None = None
    ) -> None:
        """``push_client``: the database of the push state (``PUSH_COLLECTIONS``); default ``client``'s."""
        self.client = client
        self.push_client = push_client or client
        self.env = environment
        self._schema_checked: set[int] = set()

    def _client_for(self, name: str) -> firestore.Client:
        return self.push_client if name in PUSH_COLLECTIONS else self.client

    def _col(self, name: str) -> Any:
        return self._client_for(name).collection(f"{self.env}_{name}")

    def _calendar_ref(self, key: str) -> Any:
        return self._col("calendars").document(key)

    def _schema(self, client: firestore.Client | None = None) -> None:
        """Create the schema marker on first use; refuse a database written by another schema."""
        client = client or self.client
        if id(client) in self._schema_checked:
            return
        ref = client.collection(f"{self.env}_meta").document("schema")
        snap = ref.get()
        if not snap.exists:
            try:
                ref.create({"version": SCHEMA_VERSION})
            except gexc.AlreadyExists:
                snap = ref.get()
            else:
                self._schema_checked.add(id(client))
                return
        version = (snap.to_dict() or {}).get("version")
        if version != SCHEMA_VERSION:
            raise errors.StoreUnavailable(
                f"state store schema {version} does not match this code's {SCHEMA_VERSION}",
                details={"schema_version": version},
            )
        self._schema_checked.add(id(client))

    def _commit(
        self, writes: Sequence[tuple[Any, Mapping[str, Any] | None]], client: firestore.Client | None = None
    ) -> None:
        """Set (or delete, for None) documents of ``client``'s database in batches of at most ``BATCH_LIMIT``."""
        for chunk in chunks(writes, BATCH_LIMIT):
            batch = (client or self.client).batch()
            for ref, data in chunk:
                if data is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, dict(data))
            batch.commit()

    def _get_all(self, col: Any, ids: Sequence[str], model: type[M]) -> dict[str, M]:
        """The documents of ``col`` with these ids (batched ``get_all``, never a scan), keyed by id."""
        found: dict[str, M] = {}
        for chunk in chunks(list(dict.fromkeys(ids)), GET_ALL_CHUNK):
            for snap in self.client.get_all([col.document(i) for i in chunk]):
                if snap.exists:
                    found[snap.id] = model.model_validate(snap.to_dict())
        return found
