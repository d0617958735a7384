"""``ports.WriterStore`` contract: a calendar's writer by Google id, the usage timeline with its calendar
count, the lockout and its single probe (memory and Firestore)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.model import CalendarRecord, ProvisionMark
from calsync.ports import PublishStore
from calsync.ports.writers import Admission

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
A = "agenda-1@clinic.example"
B = "agenda-2@clinic.example"


def test_find_calendar_by_google_id(state_store: PublishStore) -> None:
    state_store.put_calendar(CalendarRecord(key="room-1", google_calendar_id="g1", kind="room", writer=B))
    found = state_store.find_calendar("g1")
    assert found is not None
    assert (found.key, found.writer) == ("room-1", B)
    assert state_store.find_calendar("nope") is None


def test_timeline_is_per_writer_and_counts_calendars(state_store: PublishStore) -> None:
    assert state_store.reserve_writer(A, 60.0, NOW, calendars=1) == NOW
    assert state_store.reserve_writer(A, 30.0, NOW, calendars=1) == NOW + timedelta(seconds=60)
    assert state_store.reserve_writer(B, 10.0, NOW) == NOW  # another writer's timeline
    later = NOW + timedelta(hours=1)
    assert state_store.reserve_writer(A, 10.0, later) == later  # an idle timeline starts now
    by_writer = {w.writer: w for w in state_store.list_writers()}
    assert list(by_writer) == [A, B]
    assert (by_writer[A].calendars, by_writer[B].calendars) == (2, 0)
    assert by_writer[A].next_free_at == later + timedelta(seconds=10)


def test_lockout_then_one_probe(state_store: PublishStore) -> None:
    assert state_store.admit_writer(A, NOW, probe_s=60) == Admission()  # never locked
    until = NOW + timedelta(hours=3)
    state_store.lock_writer(A, until, NOW, reason="quotaExceeded")
    state_store.lock_writer(A, NOW + timedelta(hours=1), NOW, reason="quotaExceeded")  # the later end is kept
    assert state_store.admit_writer(A, NOW + timedelta(hours=1), probe_s=60) == Admission(wait_until=until)
    assert state_store.admit_writer(B, NOW, probe_s=60) == Admission()  # other writers write on
    # The lockout has run out: the first caller probes, the next waits for the probe's outcome.
    assert state_store.admit_writer(A, until, probe_s=60) == Admission(probe=True)
    assert state_store.admit_writer(A, until, probe_s=60) == Admission(wait_until=until + timedelta(seconds=60))
    (record,) = [w for w in state_store.list_writers() if w.writer == A]
    assert (record.locks, record.probes, record.lock_reason) == (2, 1, "quotaExceeded")
    state_store.unlock_writer(A, until)
    assert state_store.admit_writer(A, until, probe_s=60) == Admission()
    (record,) = [w for w in state_store.list_writers() if w.writer == A]
    assert record.locked_until is None


def test_the_account_itself_is_a_writer(state_store: PublishStore) -> None:
    assert state_store.reserve_writer("", 5.0, NOW, calendars=1) == NOW
    assert [w.writer for w in state_store.list_writers()] == [""]


def test_provision_marks(state_store: PublishStore) -> None:
    assert state_store.get_provision_mark("c1-room-r1") is None
    mark = ProvisionMark(calendar_key="c1-room-r1", writer=B, at=NOW)
    state_store.put_provision_mark(mark)
    assert state_store.get_provision_mark("c1-room-r1") == mark
