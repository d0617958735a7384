"""The demo's dataset: clinics, professionals, rooms and a week of allocations in America/Sao_Paulo.

Deterministic for a given ``now`` and ``DatasetSpec`` (a seeded ``random.Random``), realistic in shape:

- each clinic opens Monday to Friday 08:00-18:00 and Saturday 08:00-12:00 (local time); a room has a
  morning shift (08:00-12:00) and an afternoon shift (13:00-18:00), each worked by at most one
  professional, so a room is never double-booked;
- a professional works a few shifts a week, seeing patients in 30, 45 or 60 minute slots with short
  gaps; statuses are mostly ``reviewed``, some ``adjusted``, some ``draft`` (never published) and some
  ``cancelled`` (never published, nothing to delete);
- a few allocations lie in the past (yesterday and earlier today): the publish skips them;
- the first professional of each clinic (``person``) works tomorrow and the two days after with only
  reviewed allocations, so the demo always has future events of theirs to move, delete and overlap.

Each appointment has its patient as attendee (``sendUpdates=none``: nobody is e-mailed). The local
stack's Calendar identity is the delegated Workspace user, as in production, so Google accepts them.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calsync.model import has_started

TZ = ZoneInfo("America/Sao_Paulo")
SLOT_MINUTES = (30, 45, 60)
GAP_MINUTES = (0, 0, 15, 30)
SHIFTS: dict[str, tuple[time, time]] = {"morning": (time(8), time(12)), "afternoon": (time(13), time(18))}
SATURDAY_SHIFTS = ("morning",)
# Never generate an allocation starting this close after ``now``: it could become past between the
# plan and the apply, which would (rightly) make the plan stale.
NEAR_FUTURE = timedelta(minutes=15)
PUBLISHED_STATUSES = ("reviewed", "adjusted")
# Status mix of the generated allocations (the person's are always reviewed).
STATUS_WEIGHTS = {"reviewed": 70, "adjusted": 12, "draft": 10, "cancelled": 8}

FIRST_NAMES = (
    "Ana", "Bruno", "Carla", "Diego", "Elisa", "Felipe", "Gabriela", "Heitor", "Isabela", "João",
    "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael", "Sofia", "Tiago", "Vitória", "Yuri",
)  # fmt: skip
LAST_NAMES = (
    "Almeida", "Barbosa", "Cardoso", "Duarte", "Esteves", "Ferreira", "Gomes", "Lima", "Martins",
    "Nogueira", "Oliveira", "Pereira", "Ribeiro", "Santos", "Teixeira", "Vieira",
)  # fmt: skip
SERVICES = ("Consulta", "Retorno", "Avaliação", "Fisioterapia", "Nutrição", "Psicoterapia")


@dataclass(frozen=True)
class DatasetSpec:
    """How big the dataset is (the demo's default: 2 clinics, 20 professionals, 8 rooms, a week)."""

    clinics: int = 2
    professionals_per_clinic: int = 10
    rooms_per_clinic: int = 4
    days: int = 7
    shifts_per_professional: int = 3
    seed: int = 8


@dataclass(frozen=True)
class Professional:
    """A professional of a clinic (the e-mail is the Google identity their calendar is shared with)."""

    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Room:
    """A room of a clinic."""

    id: str
    name: str


@dataclass(frozen=True)
class Allocation:
    """One professional in one room at one time (times are aware, in America/Sao_Paulo)."""

    id: str
    clinic_id: str
    professional_id: str
    room_id: str
    start: datetime
    end: datetime
    status: str
    title: str
    attendees: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        """The item of ``PUT /allocations``."""
        return {
            "id": self.id,
            "clinic_id": self.clinic_id,
            "professional_id": self.professional_id,
            "room_id": self.room_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "status": self.status,
            "title": self.title,
            "attendees": list(self.attendees),
            "revision": 1,
        }


@dataclass
class Clinic:
    """A clinic's directory and allocations."""

    id: str
    name: str
    professionals: list[Professional] = field(default_factory=list)
    rooms: list[Room] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)

    @property
    def person(self) -> Professional:
        """The professional whose edits in Google the demo plays."""
        return self.professionals[0]

    def own_calendar_targets(self, after: datetime) -> tuple[Professional, list[Allocation]]:
        """Who marks busy time on their own calendar in the demo, and over which 3 published allocations.

        The professional other than the ``person`` with published allocations on the most days after
        ``after`` (the person when no other has 3 ahead, e.g. late on the week's last working day); one
        allocation per day first (each kind of busy time on its own day), then others.
        """

        def future(p: Professional) -> list[Allocation]:
            mine = [a for a in self.allocations if a.professional_id == p.id and a.status in PUBLISHED_STATUSES]
            return sorted((a for a in mine if a.start > after), key=lambda a: a.start)

        def days(p: Professional) -> int:
            return len({a.start.astimezone(UTC).date() for a in future(p)})

        candidates = [p for p in self.professionals if p.id != self.person.id and len(future(p)) >= 3]
        candidates = candidates or [self.person]
        chosen = max(candidates, key=lambda p: (days(p), -self.professionals.index(p)))
        first_of_day: dict[date, Allocation] = {}
        for allocation in future(chosen):
            first_of_day.setdefault(allocation.start.astimezone(UTC).date(), allocation)
        picked = list(first_of_day.values())[:3]
        picked += [a for a in future(chosen) if a not in picked][: 3 - len(picked)]
        return chosen, sorted(picked, key=lambda a: a.start)


@dataclass
class Dataset:
    """Every clinic, the window the allocations lie in, and the time it was built for."""

    now: datetime
    clinics: list[Clinic]
    window_start: datetime
    window_end: datetime

    @property
    def allocations(self) -> list[Allocation]:
        """All clinics' allocations."""
        return [a for clinic in self.clinics for a in clinic.allocations]

    def status_counts(self) -> dict[str, int]:
        """Allocations per status."""
        counts = dict.fromkeys(STATUS_WEIGHTS, 0)
        for allocation in self.allocations:
            counts[allocation.status] += 1
        return counts

    def published(self) -> list[Allocation]:
        """The allocations a publish writes (``reviewed`` or ``adjusted``)."""
        return [a for a in self.allocations if a.status in PUBLISHED_STATUSES]

    def started(self, at: datetime) -> list[Allocation]:
        """Published allocations that have started at ``at`` (calsync's one rule for the past).

        ``at`` is the instant the system decided with (a plan's ``planned_at``), never a second reading
        of the wall clock: the publish skips exactly these, on each of their three calendars.
        """
        return [a for a in self.published() if has_started(a.start, at)]

    def upcoming(self, at: datetime) -> list[Allocation]:
        """Published allocations that have not started at ``at``: the publish writes each three times."""
        return [a for a in self.published() if not has_started(a.start, at)]


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=TZ)


def patient_email(title: str) -> str:
    """The (made-up) address of the patient named in an appointment's title."""
    name = title.split(" - ", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return ".".join(ascii_name.lower().split()) + "@paciente.example"


def _appointments(
    rng: random.Random, day: date, shift: str, *, now: datetime, service: str
) -> list[tuple[datetime, datetime, str]]:
    """Consecutive slots filling one shift: (start, end, title)."""
    opens, closes = SHIFTS[shift]
    cursor = _local(day, opens) + timedelta(minutes=rng.choice((0, 15, 30)))
    end_of_shift = _local(day, closes)
    out: list[tuple[datetime, datetime, str]] = []
    while True:
        length = timedelta(minutes=rng.choice(SLOT_MINUTES))
        if cursor + length > end_of_shift:
            return out
        patient = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if not (now <= cursor < now + NEAR_FUTURE):
            out.append((cursor, cursor + length, f"{service} - {patient}"))
        cursor += length + timedelta(minutes=rng.choice(GAP_MINUTES))


def build(now: datetime, spec: DatasetSpec | None = None) -> Dataset:
    """The dataset for ``now``: allocations from yesterday to the end of the ``spec.days``-day week."""
    spec = spec or DatasetSpec()
    rng = random.Random(spec.seed)
    today = now.astimezone(TZ).date()
    days = [today + timedelta(days=n) for n in range(spec.days)]
    working = [d for d in days if d.weekday() != 6]  # closed on Sundays
    future_days = [d for d in working if d > today]
    clinics: list[Clinic] = []
    names = [(first, last) for last in LAST_NAMES for first in FIRST_NAMES]
    rng.shuffle(names)
    for c in range(spec.clinics):
        clinic_id = f"clinica-{c + 1}"
        clinic = Clinic(id=clinic_id, name=f"Clínica {('Paulista', 'Pinheiros', 'Moema', 'Lapa')[c % 4]}")
        for p in range(spec.professionals_per_clinic):
            first, last = names[c * spec.professionals_per_clinic + p]
            title = "Dra." if first.endswith("a") else "Dr."
            email = f"{first.lower().replace('ã', 'a').replace('á', 'a').replace('ó', 'o')}.{last.lower()}"
            clinic.professionals.append(
                Professional(id=f"p{p + 1:02d}", name=f"{title} {first} {last}", email=f"{email}@{clinic_id}.example")
            )
        clinic.rooms = [Room(id=f"r{r + 1}", name=f"Sala {r + 1}") for r in range(spec.rooms_per_clinic)]
        free = {(d, s, r.id) for d in working for s in SHIFTS for r in clinic.rooms}
        free -= {(d, "afternoon", r.id) for d in working if d.weekday() == 5 for r in clinic.rooms}
        counter = 0
        for index, professional in enumerate(clinic.professionals):
            service = SERVICES[index % len(SERVICES)]
            person = index == 0
            if person:
                # The person: morning shifts on the next working days, all reviewed.
                wanted = [(d, "morning") for d in future_days[: spec.shifts_per_professional]]
            else:
                candidates = sorted({(d, s) for d, s, _ in free})
                wanted = rng.sample(candidates, min(spec.shifts_per_professional, len(candidates)))
            for day, shift in sorted(wanted):
                rooms = sorted(r for d, s, r in free if (d, s) == (day, shift))
                if not rooms:
                    continue
                room = rooms[0] if person else rng.choice(rooms)
                free.discard((day, shift, room))
                for start, end, title in _appointments(rng, day, shift, now=now, service=service):
                    counter += 1
                    status = "reviewed" if person else rng.choices(*zip(*STATUS_WEIGHTS.items(), strict=True))[0]
                    clinic.allocations.append(
                        Allocation(
                            id=f"{clinic_id}-a{counter:04d}",
                            clinic_id=clinic_id,
                            professional_id=professional.id,
                            room_id=room,
                            start=start,
                            end=end,
                            status=status,
                            title=title,
                            attendees=(patient_email(title),),
                        )
                    )
        # A few past allocations: yesterday afternoon, already reviewed (the publish never writes the past).
        yesterday = today - timedelta(days=1)
        for n, professional in enumerate(clinic.professionals[1:4]):
            counter += 1
            start = _local(yesterday, time(14 + n))
            clinic.allocations.append(
                Allocation(
                    id=f"{clinic_id}-a{counter:04d}",
                    clinic_id=clinic_id,
                    professional_id=professional.id,
                    room_id=clinic.rooms[n % len(clinic.rooms)].id,
                    start=start,
                    end=start + timedelta(minutes=45),
                    status="reviewed",
                    title=f"Consulta - {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                )
            )
        clinics.append(clinic)
    window_start = _local(today - timedelta(days=1), time(0))
    window_end = _local(today + timedelta(days=spec.days), time(0))
    return Dataset(now=now, clinics=clinics, window_start=window_start, window_end=window_end)
