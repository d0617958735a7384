"""The local plan cache: where ``calsync plan`` keeps a plan's confirmation tokens for ``calsync apply``.

``GET /publish/{plan_id}`` does not return the confirmation tokens (a token is proof that someone saw
the plan), so ``plan`` writes one small JSON file per plan and ``apply PLAN_ID`` reads it back: what
it needs of the :class:`~calsync.results.PlanAnswer` — the tokens, whether the plan clears the future
(then ``apply`` asks twice and sends the second token), the totals shown in the confirmation prompt —
and the API URL the plan was made on — ``apply`` refuses to
send a plan's tokens to another URL (a staging plan must never be applied to production by a typo).
A plan made elsewhere (agendador, another machine) is applied with ``--confirm`` /
``--confirm-clear-future`` instead.

Location: ``CALSYNC_CACHE_DIR``, else ``$XDG_CACHE_HOME/calsync/plans``, else ``~/.cache/calsync/plans``.
Files are created ``0600`` (they hold tokens) and named by a hash of the plan id, so an id never
becomes a path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from calsync.copying import copy_into
from calsync.results import IsoTime, PlanAnswer, Totals

ENV_CACHE_DIR = "CALSYNC_CACHE_DIR"
FILE_MODE = 0o600


class CachedPlan(BaseModel):
    """What ``apply`` needs from a plan answer, and where and when it was kept."""

    model_config = ConfigDict(extra="ignore")

    plan_id: str
    url: str
    confirm_token: str
    confirm_clear_future_token: str | None = None
    clear_future: bool = False
    clinic_id: str | None = None
    planned_at: IsoTime | None = None
    expires_at: IsoTime | None = None
    totals: Totals | None = None
    calendars: int = 0
    saved_at: str


def cache_dir(env: Mapping[str, str]) -> Path:
    """The folder of cached plans (see the module docstring)."""
    if env.get(ENV_CACHE_DIR):
        return Path(env[ENV_CACHE_DIR])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "calsync" / "plans"


class PlanCache:
    """Plans by id, one file each."""

    def __init__(self, directory: Path) -> None:
        """Keep plans under ``directory`` (created on first save)."""
        self.directory = directory

    def path(self, plan_id: str) -> Path:
        """The file of one plan."""
        digest = hashlib.sha256(plan_id.encode()).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    def save(self, url: str, plan: PlanAnswer, *, clinic_id: str) -> Path:
        """Record a plan answer's tokens and what the confirmation shows; the file written."""
        entry = copy_into(
            CachedPlan,
            plan,
            url=url,
            clinic_id=clinic_id,
            calendars=len(plan.calendars),
            saved_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(plan.plan_id)
        partial = path.with_suffix(".tmp")
        # Created with 0600 from the start: the tokens are never readable by others, not even briefly.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(entry.model_dump_json(indent=2))
        partial.replace(path)
        return path

    def load(self, plan_id: str) -> CachedPlan | None:
        """The cached plan, or ``None`` if this machine never planned it (or the file is unreadable)."""
        path = self.path(plan_id)
        try:
            entry = CachedPlan.model_validate_json(path.read_text(encoding="utf-8"), extra="ignore")
        except (OSError, ValidationError):
            return None
        return entry if entry.plan_id == plan_id else None
