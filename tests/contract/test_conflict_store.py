"""``ports.ConflictStore`` contract: conflicts by id, pages, filters and retention (memory and Firestore)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.model import Conflict
from calsync.ports import ConflictStore
from calsync.ports.queries import ConflictQuery

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def conflict(cid: str, *, status: str = "open", key: str = "k", kind: str = "moved_in_google") -> Conflict:
    return Conflict(
        id=cid,
        kind=kind,  # type: ignore[arg-type]
        calendar_key=key,
        event_id=f"e-{cid}",
        suggestion="s",
        detected_at=NOW,
        status=status,  # type: ignore[arg-type]
    )


def every_page(
    store: ConflictStore, key: str | None, *, page_size: int, status: str | None = None, kind: str | None = None
) -> list[list[str]]:
    pages: list[list[str]] = []
    token = None
    while True:
        page, token = store.list_conflicts(
            ConflictQuery(key, status=status, page_size=page_size, page_token=token, kind=kind)
        )
        pages.append([c.id for c in page])
        if token is None:
            return pages


def test_conflicts_by_id_and_pages(conflict_store: ConflictStore) -> None:
    store = conflict_store
    store.put_conflicts([conflict(f"c{i}", status="open" if i % 2 else "resolved") for i in range(7)])
    assert set(store.get_conflicts(["c1", "c2", "zz"])) == {"c1", "c2"}
    got: list[str] = []
    token = None
    while True:
        page, token = store.list_conflicts(ConflictQuery("k", status="open", page_size=2, page_token=token))
        got.extend(c.id for c in page)
        if token is None:
            break
    assert got == ["c1", "c3", "c5"]


def test_pages_are_keyset_by_id_and_a_full_last_page_is_followed_by_an_empty_one(conflict_store: ConflictStore) -> None:
    conflict_store.put_conflicts([conflict(f"c{i}") for i in range(4)])
    assert every_page(conflict_store, None, page_size=2, status="open") == [["c0", "c1"], ["c2", "c3"], []]
    assert every_page(conflict_store, "k", page_size=3, status="open") == [["c0", "c1", "c2"], ["c3"]]
    first, token = conflict_store.list_conflicts(ConflictQuery(None, status=None, page_size=2, page_token=None))
    assert [c.id for c in first] == ["c0", "c1"]
    conflict_store.put_conflicts([conflict("c00")])  # written between pages, before the token: shifts nothing
    rest, _ = conflict_store.list_conflicts(ConflictQuery(None, status=None, page_size=5, page_token=token))
    assert [c.id for c in rest] == ["c2", "c3"]


def test_filters_by_calendar_status_and_kind(conflict_store: ConflictStore) -> None:
    conflict_store.put_conflicts(
        [
            conflict("a", key="k1"),
            conflict("b", key="k2"),
            conflict("c", key="k1", kind="deleted_in_google"),
            conflict("d", key="k1", status="resolved"),
        ]
    )
    assert every_page(conflict_store, "k1", page_size=10, status="open") == [["a", "c"]]
    assert every_page(conflict_store, None, page_size=10, status="open", kind="moved_in_google") == [["a", "b"]]
    assert every_page(conflict_store, None, page_size=10) == [["a", "b", "c", "d"]]
    replaced = conflict("a", key="k1", status="resolved")
    conflict_store.put_conflicts([replaced])
    assert conflict_store.get_conflicts(["a"])["a"].status == "resolved"


def test_retention_deletes_only_old_resolved_conflicts(conflict_store: ConflictStore) -> None:
    def old(cid: str, status: str, resolved: datetime | None) -> Conflict:
        return conflict(cid, status=status).model_copy(
            update={"detected_at": NOW - timedelta(days=300), "resolved_at": resolved}
        )

    conflict_store.put_conflicts(
        [
            old("old", "resolved", NOW - timedelta(days=100)),
            old("recent", "resolved", NOW - timedelta(days=1)),
            old("open", "open", None),
        ]
    )
    assert conflict_store.delete_resolved_conflicts_before(NOW - timedelta(days=90), 100) == 1
    assert set(conflict_store.get_conflicts(["old", "recent", "open"])) == {"recent", "open"}
