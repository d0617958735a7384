"""The pure classifier: origins, echoes, each conflict kind, Google wins, overlaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.model import GoogleEvent, MirrorEvent, PublishedSnapshot
from calsync.services.classify import classify_event, conflict_id, overlap_conflict

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
TAGS = {"source": "agendador", "env": "dev", "allocation_id": "alloc-1", "calsync_schema": "1"}


def wire(
    event_id: str = "ev1",
    start: datetime = T0,
    *,
    etag: str = '"2"',
    tags: dict[str, str] | None = None,
    attendees: tuple[str, ...] = (),
    status: str = "confirmed",
) -> GoogleEvent:
    body: dict[str, object] = {
        "id": event_id,
        "etag": etag,
        "status": status,
        "updated": "2026-03-02T11:00:00Z",
        "start": {"dateTime": start.isoformat()},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        "attendees": [{"email": a} for a in attendees],
    }
    if tags is not None:
        body["extendedProperties"] = {"private": tags}
    return GoogleEvent.model_validate(body)


def published_mirror(event_id: str = "ev1", *, etag: str = '"1"', attendees: list[str] | None = None) -> MirrorEvent:
    return MirrorEvent(
        calendar_key="k",
        external_id=event_id,
        google_calendar_id="g",
        etag=etag,
        origin="system",
        allocation_id="alloc-1",
        env="dev",
        start=T0,
        end=T0 + timedelta(hours=1),
        source_of_truth="backend",
        published=PublishedSnapshot(etag=etag, start=T0, end=T0 + timedelta(hours=1), attendees=attendees or []),
    )


def classify(event: GoogleEvent, current: MirrorEvent | None):  # type: ignore[no-untyped-def]
    return classify_event(event, current, calendar_key="k", google_calendar_id="g", env="dev", now=NOW)


def test_untagged_event_is_mirrored_as_manual() -> None:
    decision = classify(wire(), None)
    assert decision.action == "write"
    assert decision.reasons == ("manual_new",)
    assert decision.mirror is not None
    assert decision.mirror.origin == "manual"
    assert decision.mirror.source_of_truth == "google"
    assert not decision.open


def test_other_environment_is_ignored() -> None:
    decision = classify(wire(tags={**TAGS, "env": "prod"}), None)
    assert decision.action == "ignore"
    assert decision.reasons == ("foreign_env",)
    assert decision.mirror is None


def test_same_etag_is_unchanged() -> None:
    current = classify(wire(), None).mirror
    assert classify(wire(), current).action == "unchanged"


def test_own_echo_opens_nothing_and_resolves_event_conflicts() -> None:
    current = published_mirror(etag='"5"')
    decision = classify(wire(etag='"5"', tags=TAGS), current.model_copy(update={"etag": '"4"'}))
    assert decision.reasons == ("own_echo",)
    assert not decision.open
    assert set(decision.resolve) == {
        "moved_in_google",
        "deleted_in_google",
        "attendees_changed",
        "title_changed",
        "series_from_ours",
    }


def test_moved_in_google_wins_with_suggestion() -> None:
    moved = T0 + timedelta(minutes=30)
    decision = classify(wire(start=moved, tags=TAGS), published_mirror())
    assert [c.kind for c in decision.open] == ["moved_in_google"]
    assert decision.mirror is not None
    assert decision.mirror.start == moved  # Google wins
    assert decision.mirror.source_of_truth == "google"
    assert decision.open[0].suggestion == "move allocation alloc-1 to 2026-03-03 14:30-15:30 UTC as in Google"


def test_deleted_in_google_from_bare_tombstone_inherits_origin() -> None:
    tombstone = GoogleEvent(id="ev1", status="cancelled", etag='"9"')
    decision = classify(tombstone, published_mirror())
    assert [c.kind for c in decision.open] == ["deleted_in_google"]
    assert decision.mirror is not None
    assert decision.mirror.status == "cancelled"
    assert decision.mirror.origin == "system"
    assert "re-publish or cancel it" in decision.open[0].suggestion


def test_attendees_changed() -> None:
    decision = classify(wire(tags=TAGS, attendees=("new@example.com",)), published_mirror())
    assert [c.kind for c in decision.open] == ["attendees_changed"]
    assert "moved_in_google" in decision.resolve


def test_unknown_tombstone_writes_nothing() -> None:
    decision = classify(GoogleEvent(id="zz", status="cancelled"), None)
    assert decision.action == "unchanged"
    assert decision.reasons == ("unknown_tombstone",)


def test_conflict_ids_are_deterministic() -> None:
    assert conflict_id("k", "ev1", "moved_in_google") == conflict_id("k", "ev1", "moved_in_google")
    assert conflict_id("k", "ev1", "moved_in_google") != conflict_id("k", "ev1", "attendees_changed")
    assert conflict_id("k", "ev1", "moved_in_google") != conflict_id("k2", "ev1", "moved_in_google")


def test_overlap_manual() -> None:
    system = published_mirror("sys1")
    manual = classify(wire("man1", start=T0 + timedelta(minutes=45)), None).mirror
    assert manual is not None
    action = overlap_conflict(manual, [system])
    assert action is not None
    assert action.kind == "overlap_manual"
    assert action.allocation_id == "alloc-1"
    apart = classify(wire("man2", start=T0 + timedelta(hours=1)), None).mirror
    assert apart is not None
    assert overlap_conflict(apart, [system]) is None  # touching intervals do not overlap


def test_suggestions_speak_the_clinic_time_zone() -> None:
    """Times in a suggestion are the clinic's wall-clock times, named with their zone."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from calsync.services.classify import suggestion

    start = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    end = datetime(2026, 11, 23, 19, 30, tzinfo=UTC)
    local = suggestion("moved_in_google", "a-1", start, end, ZoneInfo("America/Sao_Paulo"))
    assert local == "move allocation a-1 to 2026-11-23 16:00-16:30 America/Sao_Paulo as in Google"
    assert suggestion("moved_in_google", "a-1", start, end).endswith("19:00-19:30 UTC as in Google")
