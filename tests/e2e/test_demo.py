"""``make demo`` in CI: the whole demo on its own stack with a small dataset, and its dataset and audit.

The demo runs in-process (``devstack.demo.run_demo``) exactly as ``python -m devstack demo`` does, on
2 clinics with 2 professionals and 1 room each over 4 days, and a batch size of 10 so the paced
publish takes seconds instead of a minute; every convergence check of the full demo must hold. The
full-size run (``make demo``) is not part of the suite: its figures are measured by hand.
"""

from __future__ import annotations

import io
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from rich.console import Console

from calsync.model import has_started
from devstack import demo, demo_data

SMALL = demo_data.DatasetSpec(professionals_per_clinic=2, rooms_per_clinic=1, days=4, shifts_per_professional=2)
CHECKS = {
    "publish done, no errors",
    "every calendar watched",
    "every edit in the mirror",
    "expected conflicts, once each",
    "overlap names the shift",
    "personal edit: no conflict, never touched",
    "no duplicate event per allocation",
    "every published allocation on its 3 calendars",
    "mirror equals Google, every calendar",
    "busy elsewhere: one conflict per colliding allocation",
    "keyless delegation",
    "no usage-limit rejection",
    "log audit: no content, e-mails or tokens",
    "stack stopped",
}


@pytest.fixture(scope="module")
def ran() -> tuple[demo.DemoResult, str]:
    """One small demo run and its printed report."""
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    result = demo.run_demo(console, spec=SMALL, batch_size=10)
    demo.report(result, console)
    return result, out.getvalue()


def test_the_demo_converges_with_every_check(ran: tuple[demo.DemoResult, str]) -> None:
    result, output = ran

    failed = {c.name: c.detail for c in result.checks if not c.ok}
    assert result.error is None, result.error + "\n" + output
    assert failed == {}, output
    assert {c.name for c in result.checks} == CHECKS
    assert result.ok


def test_the_people_edits_left_exactly_the_expected_conflicts(ran: tuple[demo.DemoResult, str]) -> None:
    result, _ = ran

    edits = [c for c in result.conflicts if c["kind"] != "busy_elsewhere"]  # those come from own calendars
    open_kinds = Counter(c["kind"] for c in edits if c["status"] == "open")
    assert open_kinds == {"moved_in_google": 1, "deleted_in_google": 1, "overlap_manual": 1}
    assert {c["calendar_id"] for c in edits} == {"clinica-1-prof-p01"}
    busy = [c for c in result.conflicts if c["kind"] == "busy_elsewhere"]
    assert len(busy) >= 3  # a weekly block, a day off and an out-of-office, each over an allocation
    assert all(c["suggestion"] for c in result.conflicts)
    assert [e.name.split()[1] for e in result.edits] == ["moves", "deletes", "adds", "edits"]
    assert all(e.latency_s is not None and e.latency_s > 0 for e in result.edits)


def test_the_publish_wrote_every_reviewed_future_allocation_three_times(ran: tuple[demo.DemoResult, str]) -> None:
    result, _ = ran
    writes = skips = expected_writes = expected_skips = 0
    for clinic in result.dataset.clinics:
        plan, progress = result.plans[clinic.id], result.progress[clinic.id]
        # Expectations from the instant the publish function's planner judged "past" at, not a second clock.
        planned_at = datetime.fromisoformat(plan["planned_at"])
        mine = [a for a in result.dataset.published() if a.clinic_id == clinic.id]
        started = [a for a in mine if has_started(a.start, planned_at)]
        writes += progress["done"]
        skips += plan["totals"]["skip"]
        expected_writes += 3 * (len(mine) - len(started))
        expected_skips += 3 * len(started)  # started allocations are skipped on each of their calendars
        past_reasons = Counter(
            item["reason"] for section in plan["calendars"] for item in section["items"] if item["action"] == "skip"
        )
        assert set(past_reasons) <= {"past_event"}, past_reasons
    assert (writes, skips) == (expected_writes, expected_skips)
    assert result.publish_s is not None
    assert sum(phase.calls["calendar.events.insert"] for phase in result.phases) == writes


def test_the_report_shows_every_section(ran: tuple[demo.DemoResult, str]) -> None:
    _, output = ran

    for title in (
        "Calendars (GET /health",
        "Events published per calendar",
        "Conflicts (GET /conflicts)",
        "Timings",
        "publish wall time",
        "edit → mirror",
        "Calendar API calls made by calsync",
        "Convergence checks",
    ):
        assert title in output


# --- the dataset and the audit, without a stack ----------------------------------------------------

NOW = datetime(2026, 11, 24, 15, 7, tzinfo=UTC)  # a Tuesday, 12:07 in São Paulo


def test_the_full_dataset_is_realistic_and_deterministic() -> None:
    data = demo_data.build(NOW)

    assert data == demo_data.build(NOW)
    assert len(data.clinics) == 2
    assert sum(len(c.professionals) for c in data.clinics) == 20
    assert sum(len(c.rooms) for c in data.clinics) == 8
    assert all(count > 0 for count in data.status_counts().values())
    assert 0 < len(data.started(NOW)) < len(data.allocations) // 4  # yesterday and this morning
    local = [a.start.astimezone(demo_data.TZ) for a in data.allocations]
    assert all(8 <= t.hour < 18 and t.weekday() != 6 for t in local)
    assert all(a.end - a.start in {timedelta(minutes=m) for m in (30, 45, 60)} for a in data.allocations)
    assert all(not (NOW <= a.start < NOW + demo_data.NEAR_FUTURE) for a in data.allocations)


def test_no_room_and_no_professional_is_double_booked() -> None:
    data = demo_data.build(NOW)

    for key in ("room_id", "professional_id"):
        by: dict[tuple[str, str], list[demo_data.Allocation]] = {}
        for a in data.allocations:
            by.setdefault((a.clinic_id, getattr(a, key)), []).append(a)
        for items in by.values():
            items.sort(key=lambda a: a.start)
            assert all(x.end <= y.start for x, y in pairwise(items)), key


def test_the_person_has_reviewed_future_allocations_to_edit() -> None:
    for spec in (demo_data.DatasetSpec(), SMALL):
        data = demo_data.build(NOW, spec)
        for clinic in data.clinics:
            mine = [a for a in clinic.allocations if a.professional_id == clinic.person.id and a.start > NOW]
            assert len(mine) >= 3
            assert {a.status for a in mine} == {"reviewed"}


def test_the_log_audit_finds_a_leaked_summary_and_an_email(tmp_path: Path) -> None:
    clean = tmp_path / "function-sync.log"
    clean.write_text('{"message": "sync.completed", "calendar_key": "clinica-1-prof-p01", "count": 3}\n')
    leaked = tmp_path / "function-publish.log"
    leaked.write_text('{"message": "x", "summary": "Consulta - Ana Lima"}\n{"who": "ana.lima@clinica-1.example"}\n')

    assert demo.audit([clean], {"Consulta - Ana Lima", "ana.lima@clinica-1.example"}) == []
    hits = demo.audit([clean, leaked], {"Consulta - Ana Lima", "ana.lima@clinica-1.example"})
    assert len(hits) >= 2
    assert all("Ana Lima" not in hit for hit in hits)  # findings never repeat the leaked value


# --- failure paths ---------------------------------------------------------------------------------


def test_a_failed_step_still_stops_the_stack_and_keeps_the_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_load(self: demo.Demo) -> None:
        raise demo.DemoError("PUT /allocations answered 503")

    monkeypatch.setattr(demo.Demo, "load", broken_load)
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)

    code = demo.run(console, spec=SMALL)

    output = out.getvalue()
    assert code == 1
    assert "The demo stopped early: DemoError: PUT /allocations answered 503" in output
    assert "processes: stopped" in output
    assert "Logs kept in" in output
    log_dir = Path(output.split("Logs kept in ", 1)[1].split(" (", 1)[0])
    assert (log_dir / "function-publish.log").is_file()
    assert not (log_dir.parent / "pids.json").exists()
    shutil.rmtree(log_dir.parent)


def test_the_exit_code_is_1_when_any_check_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = demo_data.build(NOW, SMALL)
    result = demo.DemoResult(dataset=data, log_dir=tmp_path / "logs")
    result.phases.append(demo.Phase("total", seconds=1.0))
    result.checks = [demo.Check("stack stopped", True, "9 processes: stopped"), demo.Check("no dups", False, "x:a1")]
    monkeypatch.setattr(demo, "run_demo", lambda console, **_: result)
    out = io.StringIO()

    code = demo.run(Console(file=out, width=200, color_system=None))

    assert code == 1
    assert "Not converged: no dups." in out.getvalue()
    result.checks[1].ok = True
    assert demo.run(Console(file=io.StringIO())) == 0
