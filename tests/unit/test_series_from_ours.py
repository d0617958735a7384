"""A series a person made of one of our events: one conflict on our id; instances are never written."""

from __future__ import annotations

from datetime import timedelta

from calsync.model import GoogleEvent
from calsync.services.classify import classify_event
from calsync.services.plan import R_SERIES, _guard
from tests.unit.test_classify import NOW, T0, TAGS, published_mirror, wire


def instance(n: int, *, status: str = "confirmed") -> GoogleEvent:
    start = T0 + timedelta(weeks=n)
    event = wire(f"ev1_{start:%Y%m%dT%H%M%SZ}", start, tags=TAGS, status=status)
    return event.model_copy(update={"recurring_event_id": "ev1"})


def classify(event: GoogleEvent):  # type: ignore[no-untyped-def]
    return classify_event(event, None, calendar_key="k", google_calendar_id="g", env="dev", now=NOW)


def test_every_tagged_instance_names_one_conflict_on_the_series_id() -> None:
    decisions = [classify(instance(n)) for n in range(4)]
    opened = {(a.kind, a.event_id, a.allocation_id) for d in decisions for a in d.open}
    assert opened == {("series_from_ours", "ev1", "alloc-1")}
    assert {a.suggestion for d in decisions for a in d.open} == {decisions[0].open[0].suggestion}
    mirror = decisions[0].mirror
    assert mirror is not None
    assert (mirror.origin, mirror.recurring_event_id, mirror.published) == ("system", "ev1", None)


def test_a_tagged_master_with_recurrence_is_the_same_divergence() -> None:
    master = wire(tags=TAGS).model_copy(update={"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]})
    decision = classify_event(master, published_mirror(), calendar_key="k", google_calendar_id="g", env="dev", now=NOW)
    assert [(a.kind, a.event_id) for a in decision.open] == [("series_from_ours", "ev1")]


def test_our_id_listed_alone_again_resolves_it() -> None:
    decision = classify_event(
        wire(tags=TAGS, etag='"9"'), published_mirror(), calendar_key="k", google_calendar_id="g", env="dev", now=NOW
    )
    assert "series_from_ours" in decision.resolve


def test_the_planner_never_writes_an_instance() -> None:
    mirror = classify(instance(1)).mirror
    assert mirror is not None
    assert _guard(mirror, "dev", "c1", "c1", conflicted=frozenset(), now=NOW) == R_SERIES
