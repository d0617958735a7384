"""``ports.DirectoryStore`` contract: each clinic's professionals and rooms, and allocations (memory and
Firestore)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.model import Allocation, FreeBusyState, Professional, Room
from calsync.ports import DirectoryStore

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


def pro(clinic: str, pid: str) -> Professional:
    return Professional(clinic_id=clinic, id=pid, name=f"Dr. {pid}", email=f"{pid}@clinic.example")


def allocation(aid: str, hours: float, *, clinic: str = "c1", minutes: int = 60) -> Allocation:
    start = NOW + timedelta(hours=hours)
    return Allocation(
        id=aid,
        clinic_id=clinic,
        professional_id="p1",
        room_id="r1",
        start=start,
        end=start + timedelta(minutes=minutes),
        status="reviewed",
    )


def test_replacing_a_clinic_directory_leaves_other_clinics_alone(directory_store: DirectoryStore) -> None:
    store = directory_store
    store.replace_professionals("c1", [pro("c1", "p2"), pro("c1", "p1"), pro("c1", "p3")])
    store.replace_professionals("c2", [pro("c2", "p1")])
    assert [p.id for p in store.list_professionals("c1")] == ["p1", "p2", "p3"]
    store.replace_professionals("c1", [pro("c1", "p3"), pro("c1", "p4")])
    assert [p.id for p in store.list_professionals("c1")] == ["p3", "p4"]
    assert store.list_professionals("c2") == [pro("c2", "p1")]
    store.replace_rooms("c1", [Room(clinic_id="c1", id="r2", name="Sala 2"), Room(clinic_id="c1", id="r1", name="1")])
    assert [r.id for r in store.list_rooms("c1")] == ["r1", "r2"]
    store.replace_rooms("c1", [])
    assert store.list_rooms("c1") == []
    assert store.list_rooms("nobody") == []


def test_allocations_by_id_and_by_window(directory_store: DirectoryStore) -> None:
    store = directory_store
    store.put_allocations(
        [
            allocation("a3", 5),
            allocation("a1", 1),
            allocation("a2", 2.5, minutes=30),
            allocation("edge", 0),  # ends exactly at the window's start
            allocation("other", 1, clinic="c2"),
        ]
    )
    assert set(store.get_allocations(["a1", "a3", "nope"])) == {"a1", "a3"}
    window = store.list_allocations("c1", NOW + timedelta(hours=1), NOW + timedelta(hours=5))
    assert [a.id for a in window] == ["a1", "a2"]  # [time_min, time_max): a3 starts at time_max
    store.put_allocations([allocation("a1", 4).model_copy(update={"status": "cancelled", "revision": 2})])
    replaced = store.get_allocations(["a1"])["a1"]
    assert (replaced.status, replaced.revision) == ("cancelled", 2)
    assert [a.id for a in store.list_allocations("c1", NOW, NOW + timedelta(days=1))] == ["a1", "a2", "a3", "edge"]


def test_free_busy_states_per_clinic_survive_a_directory_replace(directory_store: DirectoryStore) -> None:
    store = directory_store
    store.replace_professionals("c1", [pro("c1", "p1"), pro("c1", "p2")])
    hidden = FreeBusyState(clinic_id="c1", professional_id="p2", readable=False, reason="notFound", checked_at=NOW)
    shared = FreeBusyState(clinic_id="c1", professional_id="p1", readable=True, checked_at=NOW)
    other = FreeBusyState(clinic_id="c2", professional_id="p1", readable=True, checked_at=NOW)
    store.put_free_busy_states([hidden, shared, other])
    store.put_free_busy_states([shared.model_copy(update={"checked_at": NOW + timedelta(hours=1)})])  # replaces

    store.replace_professionals("c1", [pro("c1", "p1"), pro("c1", "p2")])

    assert store.list_free_busy_states("c1") == [
        shared.model_copy(update={"checked_at": NOW + timedelta(hours=1)}),
        hidden,
    ]
    assert store.list_free_busy_states("c2") == [other]
    assert store.list_free_busy_states("nobody") == []
    assert [(f.clinic_id, f.professional_id) for f in store.list_free_busy_states()] == [
        ("c1", "p1"),
        ("c1", "p2"),
        ("c2", "p1"),
    ]
