"""``ports.PublishStore`` on Cloud Firestore: the aggregate stores of ``adapters/firestore/`` in one.

Each aggregate keeps its own collections under the environment's prefix (``{env}_calendars``,
``{env}_locks``, ``{env}_conflicts``, ``{env}_channels``, ``{env}_unknown_channels``, ``{env}_plans``,
``{env}_quota``, ``{env}_writers``, ``{env}_professionals``, ``{env}_rooms``, ``{env}_allocations``; the mirror and the
sync cursor are subcollections of each calendar); the layout is described in each module. One
instance shares one client and one schema check across all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calsync.adapters.firestore.calendars import FirestoreCalendarStore
from calsync.adapters.firestore.channels import FirestoreChannelStore
from calsync.adapters.firestore.conflicts import FirestoreConflictStore
from calsync.adapters.firestore.directory import FirestoreDirectoryStore
from calsync.adapters.firestore.leases import FirestoreLeaseStore
from calsync.adapters.firestore.mirror import FirestoreMirrorStore
from calsync.adapters.firestore.plans import FirestorePlanStore
from calsync.adapters.firestore.retention import FirestoreRetentionStore
from calsync.adapters.firestore.writers import FirestoreWriterStore


class FirestoreStateStore(
    FirestoreCalendarStore,
    FirestoreLeaseStore,
    FirestoreMirrorStore,
    FirestoreConflictStore,
    FirestoreChannelStore,
    FirestorePlanStore,
    FirestoreDirectoryStore,
    FirestoreRetentionStore,
    FirestoreWriterStore,
):
    """Everything calsync keeps in Firestore (``ports.PublishStore``), namespaced per environment."""


if TYPE_CHECKING:  # each store implements its port (mypy checks these assignments)
    from google.cloud import firestore

    from calsync import ports

    def _conforms(client: firestore.Client) -> None:
        _store: ports.PublishStore = FirestoreStateStore(client, environment="dev")
        _calendars: ports.CalendarStore = FirestoreCalendarStore(client, environment="dev")
        _mirror: ports.MirrorStore = FirestoreMirrorStore(client, environment="dev")
        _conflicts: ports.ConflictStore = FirestoreConflictStore(client, environment="dev")
        _channels: ports.ChannelStore = FirestoreChannelStore(client, environment="dev")
        _plans: ports.PlanStore = FirestorePlanStore(client, environment="dev")
        _directory: ports.DirectoryStore = FirestoreDirectoryStore(client, environment="dev")
        _retention: ports.RetentionStore = FirestoreRetentionStore(client, environment="dev")
        _writers: ports.WriterStore = FirestoreWriterStore(client, environment="dev")
