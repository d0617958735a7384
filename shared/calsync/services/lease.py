"""A sync run's hold on its calendar: the per-calendar lease and the run's budget.

The lease (``LockStore``/``LeaseStore``) is short (``SyncConfig.lock_lease_s``, well under the sync
function's timeout) and renewed before every page is merged, and inside the long loops whenever a
third of it has gone by, so a run that is alive keeps it however long it takes, and a run that died
lets it go within one lease. A run that finds its lease expired or taken over stops at once
(``errors.LeaseLost``, retried by Cloud Tasks): it writes nothing more. The writes that decide where
the next pass starts (sync token, status, cursor) go through ``commit``: one store transaction that
checks the holder and the expiry first. Mirror and conflict writes are fenced by the renewal just
before each page: after a renewal nobody else can take the lease for ``lock_lease_s``, far longer
than one page's merge, and the merge stops at the next checkpoint once the lease is gone.

A trigger that finds the lease held gets both answers:

- it marks the lease ``pending``, so a live holder runs one more pass before releasing (duplicate
  triggers coalesce, and a change made during a pass is seen within the same run);
- it is answered 429 with ``Retry-After`` = what is left of the lease (``errors.LockHeld``), so Cloud
  Tasks keeps the task and retries it (queue backoff from 10 s, 10 attempts). The pending mark alone
  would be lost with a holder that died: nobody honours it, and nothing would sync the calendar before
  the next poll. The retry after the lease ends runs the sync; if the live holder already covered the
  trigger, that retry is one cheap incremental pass.

The budget (``SyncConfig.run_budget_s``, below the function timeout) bounds every loop of a run: the
pages, the passes a pending mark or a follow-up asks for, the tombstone diff and the reconciler's
overlap re-checks. Past the deadline the run saves its position (a ``SyncCursor``, through ``commit``)
and enqueues a continuation task; a loop interrupted inside a page's merge stops before that page's
writes, so the continuation lists the page again (idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from calsync import errors
from calsync.logs import get_logger
from calsync.model import SyncCursor
from calsync.ports import Clock, LeaseStore, LockStore
from calsync.ports.queries import SyncCommit

log = get_logger(__name__)


class LeasePort(LockStore, LeaseStore, Protocol):
    """The store as a lease uses it."""


class OutOfBudget(Exception):
    """The run's deadline passed inside a loop: save the position and continue in a new task."""


class Lease:
    """One run's lease on one calendar (see the module docstring)."""

    def __init__(self, store: LeasePort, calendar_key: str, holder: str, *, clock: Clock, lease_s: float) -> None:
        self.store = store
        self.calendar_key = calendar_key
        self.holder = holder
        self.clock = clock
        self.lease_s = lease_s
        self.renewed_at: datetime | None = None

    def acquire(self) -> bool:
        """Take the lease; False (and the lease marked pending) when another run holds it."""
        now = self.clock.now()
        taken = self.store.acquire_lock(self.calendar_key, self.holder, lease_s=self.lease_s, now=now)
        if taken:
            self.renewed_at = now
        return taken

    def remaining_s(self) -> float:
        """Seconds left of the current lease of the calendar (0 when there is none)."""
        expires = self.store.lock_expires_at(self.calendar_key)
        return 0.0 if expires is None else max(0.0, (expires - self.clock.now()).total_seconds())

    def renew(self) -> None:
        """Extend the lease now; ``LeaseLost`` when it expired or another run took it."""
        now = self.clock.now()
        if not self.store.renew_lock(self.calendar_key, self.holder, lease_s=self.lease_s, now=now):
            raise self._lost("renew")
        self.renewed_at = now

    def keep(self) -> None:
        """Renew when a third of the lease has gone by since the last renewal."""
        if self.renewed_at is None or self.clock.now() - self.renewed_at >= timedelta(seconds=self.lease_s / 3):
            self.renew()

    def release(self) -> bool:
        """Release the lease; True (lease kept, ``pending`` cleared) when a trigger asked for another pass."""
        now = self.clock.now()
        kept = self.store.release_lock(self.calendar_key, self.holder, lease_s=self.lease_s, now=now)
        if kept:
            self.renewed_at = now
        return kept

    def release_fully(self, *, quiet: bool = False) -> None:
        """Release even when ``pending`` was set (a retry or a continuation covers it)."""
        try:
            for _ in range(2):
                if not self.release():
                    return
        except errors.CalsyncError:
            if not quiet:
                raise

    def commit(
        self,
        *,
        calendar_fields: Mapping[str, Any] | None = None,
        cursor: SyncCursor | None = None,
        clear_cursor: bool = False,
    ) -> None:
        """Write the calendar's sync state only while holding the lease; ``LeaseLost`` otherwise."""
        done = self.store.commit_sync_state(
            SyncCommit(
                self.calendar_key,
                self.holder,
                now=self.clock.now(),
                calendar_fields=calendar_fields,
                cursor=cursor,
                clear_cursor=clear_cursor,
            )
        )
        if not done:
            raise self._lost("commit")

    def _lost(self, step: str) -> errors.LeaseLost:
        log.warning("sync.lease_lost", calendar_key=self.calendar_key, action=step)
        return errors.LeaseLost(
            f"the sync lease of {self.calendar_key} expired or was taken over",
            details={"calendar_id": self.calendar_key},
        )


class Budget:
    """The run's deadline, checked between pages and inside every loop (which also keeps the lease)."""

    def __init__(self, clock: Clock, lease: Lease, *, budget_s: float) -> None:
        self.clock = clock
        self.lease = lease
        self.deadline = clock.now() + timedelta(seconds=budget_s)

    def spent(self) -> bool:
        """True once the deadline has passed."""
        return self.clock.now() >= self.deadline

    def checkpoint(self) -> None:
        """Keep the lease; ``OutOfBudget`` past the deadline (the caller saves its position)."""
        self.lease.keep()
        if self.spent():
            raise OutOfBudget
