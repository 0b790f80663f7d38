"""Deterministic, realistic-looking seed data for a sandbox academy.

Everything comes from one ``random.Random(seed)`` and small built-in word lists (no
faker dependency), so the same arguments always build the same academy, down to ids,
emails and dates.  Seeding 100,000 members takes well under a second: one pass, ids in
increasing order so every sorted index is appended to, never re-sorted.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from ._records import Enrolment, name_from_email
from ._state import AcademyState

_FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Anna", "Ben", "Carla", "Chen", "Dara", "David", "Elena",
    "Emma", "Farah", "Finn", "Grace", "Hugo", "Ines", "Isaac", "Jana", "John", "Kai",
    "Lars", "Lea", "Liam", "Lina", "Maria", "Mateo", "Mia", "Noah", "Nora", "Omar",
    "Paula", "Pieter", "Priya", "Rosa", "Sam", "Sara", "Sofia", "Tom", "Yusuf", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Adams", "Berg", "Claes", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen",
    "Ito", "Jansen", "Kowalski", "Laurent", "Martin", "Meyer", "Moreau", "Nakamura",
    "Novak", "Okafor", "Peeters", "Petrov", "Rossi", "Santos", "Schmidt", "Silva",
    "Smith", "Tanaka", "Visser", "Wagner", "Wouters", "Young", "Zhang",
)  # fmt: skip
_COMPANIES = (
    ("Acme Logistics", "acme-logistics.test"),
    ("Brightwave Energy", "brightwave.test"),
    ("Northwind Foods", "northwind.test"),
    ("Globex Health", "globex-health.test"),
    ("Initech Software", "initech.test"),
    ("Umbrella Retail", "umbrella-retail.test"),
    ("Vandelay Industries", "vandelay.test"),
    ("Stark Engineering", "stark-eng.test"),
)
_DEPARTMENTS = (
    "Sales", "Support", "Engineering", "Finance", "Operations", "Marketing", "HR", "Legal",
)  # fmt: skip
_COUNTRIES = ("BE", "NL", "DE", "FR", "GB", "ES", "IT", "US", "PL", "SE")
_ASSOCIATIONS = ("Retail Guild", "Engineers Union", "Care Network", "Logistics Forum")
_TOPICS = (
    "Workplace Safety", "Data Protection", "Customer Service", "First Aid",
    "Leadership", "Time Management", "Product Knowledge", "Fire Prevention",
    "Anti-Bribery", "Cyber Security", "Onboarding", "Negotiation",
    "Project Management", "Diversity and Inclusion", "Forklift Operation",
)  # fmt: skip
_LEVELS = ("Fundamentals", "Advanced", "Refresher")
_TRACKS = ("New Starter", "Team Lead", "Compliance", "Sales Academy", "Field Technician")
_GROUP_NAMES = (
    "Antwerp Office", "Berlin Office", "Night Shift", "Managers", "Interns",
    "Warehouse Team", "Key Accounts", "Remote Workers", "Safety Officers", "Trainers",
)  # fmt: skip

#: When the seeded academy's history starts; seeded dates are spread after it.
T = TypeVar("T")

SEED_EPOCH = datetime(2021, 1, 4, 8, 0, 0, tzinfo=UTC)


def seed_state(
    state: AcademyState,
    *,
    members: int,
    courses: int,
    programs: int,
    groups: int,
    seed: int,
    admin_email: str,
    completion_rate: float,
) -> None:
    """Fill an empty ``state`` with a deterministic academy.

    ``members`` counts every member, the admin (always id 1) included, so a listing of
    ``/members`` returns exactly that many (at least one: the admin).  Learners get a
    few course enrolments, group memberships and sometimes a program; about
    ``completion_rate`` of the enrolments carry a completed result.
    """
    # Cyclic GC passes over the growing heap took about as long as the seeding itself;
    # nothing seeded forms cycles, so pause the collector for the bulk load.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _seed(
            state,
            members=members,
            courses=courses,
            programs=programs,
            groups=groups,
            seed=seed,
            admin_email=admin_email,
            completion_rate=completion_rate,
        )
    finally:
        if collecting:
            gc.enable()


def _seed(
    state: AcademyState,
    *,
    members: int,
    courses: int,
    programs: int,
    groups: int,
    seed: int,
    admin_email: str,
    completion_rate: float,
) -> None:
    rng = random.Random(seed)
    course_ids = [
        state.add_course(
            _course_name(index),
            description=f"{_course_name(index)}: what every team member should know.",
            created=SEED_EPOCH + timedelta(days=index),
        ).id
        for index in range(courses)
    ]
    program_ids = [
        state.add_program(
            _numbered(_TRACKS, index, suffix="Program"),
            description="A track of courses.",
            created=SEED_EPOCH + timedelta(days=index),
        ).id
        for index in range(programs)
    ]
    group_names = [_numbered(_GROUP_NAMES, index) for index in range(groups)]
    for name in group_names:
        state.add_group(name)

    created = SEED_EPOCH + timedelta(days=30)
    state.add_member(admin_email, name="Sandbox Admin", role="admin", created=created)
    # rng.random() is a C call; choice/randint/sample are Python-level and made seeding
    # 100,000 members several times slower.
    draw = rng.random

    def pick(items: Sequence[T]) -> T:
        return items[int(draw() * len(items))]

    def some(items: Sequence[T], most: int) -> list[T]:
        # A run of up to ``most`` neighbours from a random start: distinct, and cheap.
        count = min(len(items), int(draw() * (most + 1)))
        if not count:
            return []
        start = int(draw() * len(items))
        chosen = list(items[start : start + count])
        if len(chosen) < count:
            chosen = list(items[: count - len(chosen)]) + chosen
        return chosen

    for index in range(2, members + 1):
        created += timedelta(seconds=60 + int(draw() * 7_140))
        first = pick(_FIRST_NAMES)
        last = pick(_LAST_NAMES)
        company, domain = _COMPANIES[int(draw() * len(_COMPANIES))]
        email = f"{first}.{last}@{domain}".lower()
        if state.member_by_email(email) is not None:
            email = f"{first}.{last}{index}@{domain}".lower()
        member = state.add_member(
            email,
            name=name_from_email(email) if draw() < 0.1 else f"{first} {last}",
            company=company,
            department=pick(_DEPARTMENTS),
            country=pick(_COUNTRIES),
            external_id=f"E{100_000 + index}" if draw() < 0.8 else None,
            association=pick(_ASSOCIATIONS) if draw() < 0.3 else None,
            identification=f"ID-{int(draw() * 1_000_000):06d}" if draw() < 0.5 else None,
            registration=f"R{int(draw() * 100_000):05d}" if draw() < 0.2 else None,
            created=created,
        )
        enrolled_at = created + timedelta(hours=1)
        for course_id in some(course_ids, 3):
            if draw() < completion_rate:
                score = float(20 + int(draw() * 81))
                success = score >= 60.0
                enrolment = Enrolment(
                    course_id=course_id,
                    member_id=member.id,
                    created=enrolled_at,
                    score=score,
                    success=success,
                    completed=enrolled_at + timedelta(days=1 + int(draw() * 60)),
                    certificate=state.certificate_url(course_id, member.id) if success else None,
                )
            else:
                enrolment = Enrolment(course_id=course_id, member_id=member.id, created=enrolled_at)
            state.restore_enrolment(enrolment)
        for name in some(group_names, 2):
            state.join_group(member.id, name)
        if program_ids and draw() < 0.3:
            state.enrol_program(pick(program_ids), member.id, created=enrolled_at)


def _course_name(index: int) -> str:
    topic = _TOPICS[index % len(_TOPICS)]
    level = _LEVELS[(index // len(_TOPICS)) % len(_LEVELS)]
    round_ = index // (len(_TOPICS) * len(_LEVELS))
    return f"{topic} {level}" + (f" {round_ + 1}" if round_ else "")


def _numbered(names: tuple[str, ...], index: int, *, suffix: str = "") -> str:
    """Pick a name from the list, numbering repeats so names stay unique."""
    base = names[index % len(names)] + (f" {suffix}" if suffix else "")
    round_ = index // len(names)
    return base + (f" {round_ + 1}" if round_ else "")
