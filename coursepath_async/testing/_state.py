"""The sandbox academy's in-memory state: members, courses, programs, groups, enrolments.

Everything a handler needs is O(page): records live in dicts keyed by id beside
id-sorted lists (so a page is a slice), emails are indexed case-insensitively, and the
encoded JSON of a member is cached until the record is replaced.  Benchmarks list
100,000+ members thousands of times a second, so no request may scan the academy
unless it filters on a non-indexed field.

Mutations are synchronous: a write is either fully applied or not at all, which is
what lets the fault layer say precisely whether a failed request took effect.
Course-enrolment changes are announced to subscribers (the webhook sender).
"""

from __future__ import annotations

import random
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, cast

import attrs
import orjson

from .._exceptions import CoursepathError, InvalidInputError
from .._fields import MEMBER_TEXT_FIELDS
from ._records import (
    CourseEvent,
    CourseRecord,
    DateStyle,
    Enrolment,
    EventName,
    GroupRecord,
    MemberRecord,
    ProgramEnrolment,
    ProgramRecord,
    Role,
    member_json,
    name_from_email,
)

DEFAULT_CERTIFICATE_BASE = "https://certificates.sandbox.test"

Listener = Callable[[CourseEvent], None]

#: Member attributes that :meth:`AcademyState.update_member` may change.
UPDATABLE_MEMBER_FIELDS = frozenset(
    {"email", *(field.name for field in MEMBER_TEXT_FIELDS), "role"}
)


class SandboxStateError(CoursepathError):
    """Base class of the errors the sandbox state raises to its direct callers."""


class UnknownRecordError(SandboxStateError, LookupError):
    """An id (or an enrolment) that does not exist in the academy."""


class DuplicateEmailError(SandboxStateError, ValueError):
    """Another member already has this email address (compared case-insensitively)."""


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _insert_sorted(ids: list[int], value: int) -> None:
    # Ids are mostly created in increasing order, so appending is the common case.
    if not ids or ids[-1] < value:
        ids.append(value)
    else:
        insort(ids, value)


def _remove_sorted(ids: list[int], value: int) -> None:
    index = bisect_left(ids, value)
    if index < len(ids) and ids[index] == value:
        del ids[index]


def _contains_sorted(ids: list[int], value: int) -> bool:
    index = bisect_left(ids, value)
    return index < len(ids) and ids[index] == value


def _window(ids: list[int], offset: int, limit: int, newest_first: bool) -> list[int]:
    """Return the ids of one page; ``newest_first`` pages from the highest id down."""
    if limit <= 0:
        return []
    if not newest_first:
        return ids[offset : offset + limit]
    end = len(ids) - offset
    if end <= 0:
        return []
    return ids[max(end - limit, 0) : end][::-1]


class AcademyState:
    """All the data of one sandbox academy, with O(page) listings and O(1) lookups.

    Tests read it to check what a client did and write to it to set a scene; the HTTP
    handlers use the same methods, so both see one consistent academy.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        certificate_base: str = DEFAULT_CERTIFICATE_BASE,
    ) -> None:
        self._clock = clock or _utc_now
        self._certificate_base = certificate_base.rstrip("/")
        self._members: dict[int, MemberRecord] = {}
        self._member_ids: list[int] = []
        self._by_email: dict[str, int] = {}
        self._encoded_members: dict[int, tuple[MemberRecord, DateStyle, bytes]] = {}
        self._courses: dict[int, CourseRecord] = {}
        self._course_ids: list[int] = []
        self._programs: dict[int, ProgramRecord] = {}
        self._groups: dict[int, GroupRecord] = {}
        self._group_ids: list[int] = []
        self._group_by_name: dict[str, int] = {}
        self._course_members: dict[int, dict[int, Enrolment]] = {}
        self._course_member_ids: dict[int, list[int]] = {}
        self._member_course_ids: dict[int, list[int]] = {}
        self._program_members: dict[int, dict[int, ProgramEnrolment]] = {}
        self._group_member_ids: dict[int, list[int]] = {}
        self._member_group_ids: dict[int, list[int]] = {}
        self._next_member = 1
        self._next_course = 1
        self._next_program = 1
        self._next_group = 1
        self._listeners: list[Listener] = []

    def __repr__(self) -> str:
        return (
            f"<AcademyState members={len(self._members)} courses={len(self._courses)} "
            f"programs={len(self._programs)} groups={len(self._groups)}>"
        )

    # -- events ---------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every course-enrolment event; returns an unsubscriber."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, event: EventName, course_id: int, member_id: int) -> None:
        record = CourseEvent(event=event, course_id=course_id, member_id=member_id)
        for listener in list(self._listeners):
            listener(record)

    # -- members --------------------------------------------------------------------

    @property
    def member_count(self) -> int:
        """How many members the academy has."""
        return len(self._members)

    def find_member(self, member_id: int) -> MemberRecord | None:
        """Return the member with this id, or ``None``."""
        return self._members.get(member_id)

    def member(self, member_id: int) -> MemberRecord:
        """Return the member with this id; raise :class:`UnknownRecordError` if none."""
        found = self._members.get(member_id)
        if found is None:
            raise UnknownRecordError(f"no member {member_id}")
        return found

    def member_by_email(self, email: str) -> MemberRecord | None:
        """Return the member with this email (case-insensitive), or ``None``."""
        member_id = self._by_email.get(email.lower())
        return None if member_id is None else self._members[member_id]

    def members(self) -> list[MemberRecord]:
        """Return every member, ordered by id."""
        return [self._members[member_id] for member_id in self._member_ids]

    def encode_member(self, member: MemberRecord, dates: DateStyle = "iso") -> bytes:
        """Return the member's JSON bytes, cached until the record is replaced."""
        cached = self._encoded_members.get(member.id)
        if cached is not None and cached[0] is member and cached[1] == dates:
            return cached[2]
        encoded = orjson.dumps(member_json(member, dates))
        self._encoded_members[member.id] = (member, dates, encoded)
        return encoded

    def add_member(
        self,
        email: str,
        *,
        name: str | None = None,
        role: Role = "learner",
        company: str | None = None,
        department: str | None = None,
        country: str | None = None,
        external_id: str | None = None,
        association: str | None = None,
        identification: str | None = None,
        registration: str | None = None,
        created: datetime | None = None,
        id: int | None = None,  # the record's own field name; fixtures restore ids
    ) -> MemberRecord:
        """Create a member; raise :class:`DuplicateEmailError` if the email is taken."""
        key = email.lower()
        if key in self._by_email:
            raise DuplicateEmailError(f"a member with email {email!r} already exists")
        member_id = self._next_member if id is None else id
        if member_id in self._members:
            raise SandboxStateError(f"member id {member_id} is already in use")
        member = MemberRecord(
            id=member_id,
            email=email,
            name=name or name_from_email(email),
            company=company,
            department=department,
            country=country,
            external_id=external_id,
            association=association,
            identification=identification,
            registration=registration,
            created=created or self._clock(),
            role=role,
        )
        self._members[member_id] = member
        _insert_sorted(self._member_ids, member_id)
        self._by_email[key] = member_id
        self._next_member = max(self._next_member, member_id + 1)
        return member

    def update_member(self, member_id: int, **changes: str | None) -> MemberRecord:
        """Change some attributes of a member (see ``UPDATABLE_MEMBER_FIELDS``)."""
        unknown = set(changes) - UPDATABLE_MEMBER_FIELDS
        if unknown:
            raise InvalidInputError(f"cannot update member fields {sorted(unknown)}")
        if "email" in changes and not changes["email"]:
            raise InvalidInputError("a member's email cannot be empty", argument="email")
        if "role" in changes and changes["role"] not in ("admin", "learner"):
            raise InvalidInputError("role must be 'admin' or 'learner'", argument="role")
        current = self.member(member_id)
        new_email = changes.get("email")
        if isinstance(new_email, str) and new_email.lower() != current.email.lower():
            if new_email.lower() in self._by_email:
                raise DuplicateEmailError(f"a member with email {new_email!r} already exists")
            del self._by_email[current.email.lower()]
            self._by_email[new_email.lower()] = member_id
        if changes.get("name") in ("", None) and "name" in changes:
            # An explicit empty name falls back to the derived one, as on creation.
            email = new_email if isinstance(new_email, str) else current.email
            changes["name"] = name_from_email(email)
        updated = attrs.evolve(current, **cast(dict[str, Any], changes))
        self._members[member_id] = updated
        return updated

    def page_members(
        self,
        offset: int,
        limit: int,
        *,
        filters: Mapping[str, str] | None = None,
        course_id: int | None = None,
        group_id: int | None = None,
        newest_first: bool = False,
    ) -> list[MemberRecord]:
        """Return one page of members, of the academy or of a course or group.

        ``filters`` maps record attribute names to exact values; ``email`` is matched
        case-insensitively through the index, the others by scanning.
        """
        if course_id is not None:
            ids = self._course_member_ids.get(course_id, [])
        elif group_id is not None:
            ids = self._group_member_ids.get(group_id, [])
        else:
            ids = self._member_ids
        if not filters:
            return [self._members[i] for i in _window(ids, offset, limit, newest_first)]
        email = filters.get("email")
        if email is not None:
            found = self.member_by_email(email)
            candidates: Iterable[MemberRecord] = (
                [found] if found is not None and _contains_sorted(ids, found.id) else []
            )
        else:
            ordered = reversed(ids) if newest_first else ids
            candidates = (self._members[i] for i in ordered)
        rest = {attr: value for attr, value in filters.items() if attr != "email"}
        # One C-level attrgetter call per member keeps unindexed scans cheap.
        read = attrgetter(*rest) if rest else None
        wanted: object = None
        if rest:
            wanted = tuple(rest.values()) if len(rest) > 1 else next(iter(rest.values()))
        page: list[MemberRecord] = []
        skipped = 0
        for member in candidates:
            if read is not None and read(member) != wanted:
                continue
            if skipped < offset:
                skipped += 1
                continue
            if len(page) >= limit:
                break
            page.append(member)
        return page

    # -- courses and programs -------------------------------------------------------

    def find_course(self, course_id: int) -> CourseRecord | None:
        """Return the course with this id, or ``None``."""
        return self._courses.get(course_id)

    def course(self, course_id: int) -> CourseRecord:
        """Return the course with this id; raise :class:`UnknownRecordError` if none."""
        found = self._courses.get(course_id)
        if found is None:
            raise UnknownRecordError(f"no course {course_id}")
        return found

    def courses(self) -> list[CourseRecord]:
        """Return every course, ordered by id."""
        return [self._courses[course_id] for course_id in self._course_ids]

    def add_course(
        self,
        name: str,
        *,
        description: str = "",
        created: datetime | None = None,
        id: int | None = None,  # the record's own field name; fixtures restore ids
    ) -> CourseRecord:
        """Create a course (the API has no endpoint for it; tests and seeding do)."""
        course_id = self._next_course if id is None else id
        if course_id in self._courses:
            raise SandboxStateError(f"course id {course_id} is already in use")
        course = CourseRecord(
            id=course_id, name=name, description=description, created=created or self._clock()
        )
        self._courses[course_id] = course
        _insert_sorted(self._course_ids, course_id)
        self._course_members[course_id] = {}
        self._course_member_ids[course_id] = []
        self._next_course = max(self._next_course, course_id + 1)
        return course

    def page_courses(
        self, offset: int, limit: int, *, member_id: int | None = None, newest_first: bool = False
    ) -> list[CourseRecord]:
        """Return one page of courses, of the academy or of one member."""
        ids = self._course_ids if member_id is None else self._member_course_ids.get(member_id, [])
        return [self._courses[i] for i in _window(ids, offset, limit, newest_first)]

    def find_program(self, program_id: int) -> ProgramRecord | None:
        """Return the program with this id, or ``None``."""
        return self._programs.get(program_id)

    def programs(self) -> list[ProgramRecord]:
        """Return every program, ordered by id."""
        return [self._programs[i] for i in sorted(self._programs)]

    def add_program(
        self,
        name: str,
        *,
        description: str = "",
        created: datetime | None = None,
        id: int | None = None,  # the record's own field name; fixtures restore ids
    ) -> ProgramRecord:
        """Create a program (the API has no endpoint for it; tests and seeding do)."""
        program_id = self._next_program if id is None else id
        if program_id in self._programs:
            raise SandboxStateError(f"program id {program_id} is already in use")
        program = ProgramRecord(
            id=program_id, name=name, description=description, created=created or self._clock()
        )
        self._programs[program_id] = program
        self._program_members[program_id] = {}
        self._next_program = max(self._next_program, program_id + 1)
        return program

    # -- course and program enrolments ----------------------------------------------

    def enrolment(self, course_id: int, member_id: int) -> Enrolment | None:
        """Return the member's enrolment (and result) in the course, or ``None``."""
        return self._course_members.get(course_id, {}).get(member_id)

    def enrolments(self, course_id: int | None = None) -> list[Enrolment]:
        """Return the enrolments of one course, or of all, ordered by (course, member)."""
        course_ids = self._course_ids if course_id is None else [course_id]
        result: list[Enrolment] = []
        for cid in course_ids:
            enrolled = self._course_members.get(cid, {})
            result.extend(enrolled[mid] for mid in self._course_member_ids.get(cid, []))
        return result

    def enrol(
        self, course_id: int, member_id: int, *, created: datetime | None = None
    ) -> tuple[Enrolment, bool]:
        """Enrol a member in a course; returns the enrolment and whether it is new."""
        self.course(course_id)
        self.member(member_id)
        existing = self._course_members[course_id].get(member_id)
        if existing is not None:
            return existing, False
        enrolment = Enrolment(
            course_id=course_id, member_id=member_id, created=created or self._clock()
        )
        self._store_enrolment(enrolment)
        self._emit("COURSEMEMBER_CREATED", course_id, member_id)
        return enrolment, True

    def restore_enrolment(self, enrolment: Enrolment) -> None:
        """Store an enrolment as is, result included, announcing nothing (fixtures)."""
        course_id, member_id = enrolment.course_id, enrolment.member_id
        enrolled = self._course_members.get(course_id)
        if enrolled is None or member_id not in self._members:
            raise UnknownRecordError(f"no course {course_id} or no member {member_id}")
        if member_id in enrolled:
            raise SandboxStateError(f"member {member_id} is already enrolled in course {course_id}")
        self._store_enrolment(enrolment)

    def _store_enrolment(self, enrolment: Enrolment) -> None:
        course_id, member_id = enrolment.course_id, enrolment.member_id
        self._course_members[course_id][member_id] = enrolment
        _insert_sorted(self._course_member_ids[course_id], member_id)
        member_courses = self._member_course_ids.get(member_id)
        if member_courses is None:
            self._member_course_ids[member_id] = [course_id]
        else:
            _insert_sorted(member_courses, course_id)

    def unenrol(self, course_id: int, member_id: int) -> bool:
        """Remove a member from a course, deleting their result; False if not enrolled."""
        enrolled = self._course_members.get(course_id, {})
        if enrolled.pop(member_id, None) is None:
            return False
        _remove_sorted(self._course_member_ids[course_id], member_id)
        _remove_sorted(self._member_course_ids[member_id], course_id)
        self._emit("COURSEMEMBER_DELETED", course_id, member_id)
        return True

    def certificate_url(self, course_id: int, member_id: int) -> str:
        """The URL of the certificate of a successful result."""
        return f"{self._certificate_base}/{course_id}/{member_id}.pdf"

    def complete(
        self,
        course_id: int,
        member_id: int,
        *,
        score: float | None = 100.0,
        success: bool = True,
        completed_at: datetime | None = None,
    ) -> Enrolment:
        """Record a completed result for an enrolled member and announce it.

        A successful result gets a certificate URL; a failed one has none.
        """
        current = self.enrolment(course_id, member_id)
        if current is None:
            raise UnknownRecordError(f"member {member_id} is not enrolled in course {course_id}")
        certificate = self.certificate_url(course_id, member_id) if success else None
        completed = attrs.evolve(
            current,
            score=score,
            success=success,
            completed=completed_at or self._clock(),
            certificate=certificate,
        )
        self._course_members[course_id][member_id] = completed
        self._emit("COURSEMEMBER_COMPLETED", course_id, member_id)
        return completed

    def complete_random(
        self, fraction: float, *, seed: int = 0, pass_mark: float = 60.0
    ) -> list[Enrolment]:
        """Complete about ``fraction`` of the open enrolments, deterministically from ``seed``.

        Scores are whole numbers from 0 to 100; a score of at least ``pass_mark`` passes.
        """
        if not 0.0 <= fraction <= 1.0:
            raise InvalidInputError("fraction must be between 0 and 1", argument="fraction")
        rng = random.Random(seed)
        completed: list[Enrolment] = []
        for enrolment in self.enrolments():
            if enrolment.completed is not None or rng.random() >= fraction:
                continue
            score = float(rng.randint(0, 100))
            completed.append(
                self.complete(
                    enrolment.course_id,
                    enrolment.member_id,
                    score=score,
                    success=score >= pass_mark,
                )
            )
        return completed

    def program_enrolment(self, program_id: int, member_id: int) -> ProgramEnrolment | None:
        """Return the member's enrolment in the program, or ``None``."""
        return self._program_members.get(program_id, {}).get(member_id)

    def program_enrolments(self, program_id: int | None = None) -> list[ProgramEnrolment]:
        """Return the enrolments of one program, or of all, ordered by (program, member)."""
        program_ids = sorted(self._programs) if program_id is None else [program_id]
        result: list[ProgramEnrolment] = []
        for pid in program_ids:
            enrolled = self._program_members.get(pid, {})
            result.extend(enrolled[mid] for mid in sorted(enrolled))
        return result

    def enrol_program(
        self, program_id: int, member_id: int, *, created: datetime | None = None
    ) -> tuple[ProgramEnrolment, bool]:
        """Enrol a member in a program; returns the enrolment and whether it is new."""
        if program_id not in self._programs:
            raise UnknownRecordError(f"no program {program_id}")
        self.member(member_id)
        enrolled = self._program_members[program_id]
        existing = enrolled.get(member_id)
        if existing is not None:
            return existing, False
        enrolment = ProgramEnrolment(
            program_id=program_id, member_id=member_id, created=created or self._clock()
        )
        enrolled[member_id] = enrolment
        return enrolment, True

    def unenrol_program(self, program_id: int, member_id: int) -> bool:
        """Remove a member from a program; False if they were not enrolled."""
        return self._program_members.get(program_id, {}).pop(member_id, None) is not None

    # -- groups ---------------------------------------------------------------------

    def find_group(self, group_id: int) -> GroupRecord | None:
        """Return the group with this id, or ``None``."""
        return self._groups.get(group_id)

    def group_by_name(self, name: str) -> GroupRecord | None:
        """Return the group with exactly this name, or ``None``."""
        group_id = self._group_by_name.get(name)
        return None if group_id is None else self._groups[group_id]

    def groups(self) -> list[GroupRecord]:
        """Return every group, ordered by id."""
        return [self._groups[group_id] for group_id in self._group_ids]

    def add_group(
        self,
        name: str,
        *,
        id: int | None = None,  # the record's own field name; fixtures restore ids
    ) -> GroupRecord:
        """Create a group; group names are unique (matched exactly)."""
        if name in self._group_by_name:
            raise SandboxStateError(f"a group named {name!r} already exists")
        group_id = self._next_group if id is None else id
        if group_id in self._groups:
            raise SandboxStateError(f"group id {group_id} is already in use")
        group = GroupRecord(id=group_id, name=name)
        self._groups[group_id] = group
        _insert_sorted(self._group_ids, group_id)
        self._group_by_name[name] = group_id
        self._group_member_ids[group_id] = []
        self._next_group = max(self._next_group, group_id + 1)
        return group

    def group_member_ids(self, group_id: int) -> list[int]:
        """Return the ids of a group's members, ascending."""
        return list(self._group_member_ids.get(group_id, []))

    def member_group_ids(self, member_id: int) -> list[int]:
        """Return the ids of the groups a member belongs to, ascending."""
        return list(self._member_group_ids.get(member_id, []))

    def member_course_ids(self, member_id: int) -> list[int]:
        """Return the ids of the courses a member is enrolled in, ascending."""
        return list(self._member_course_ids.get(member_id, []))

    def page_groups(
        self, offset: int, limit: int, *, member_id: int | None = None, newest_first: bool = False
    ) -> list[GroupRecord]:
        """Return one page of groups, of the academy or of one member."""
        ids = self._group_ids if member_id is None else self._member_group_ids.get(member_id, [])
        return [self._groups[i] for i in _window(ids, offset, limit, newest_first)]

    def join_group(self, member_id: int, name: str) -> tuple[GroupRecord, bool]:
        """Add a member to the named group, creating the group if needed.

        Returns the group and whether the member was newly added.
        """
        self.member(member_id)
        group = self.group_by_name(name) or self.add_group(name)
        members = self._group_member_ids[group.id]
        if _contains_sorted(members, member_id):
            return group, False
        _insert_sorted(members, member_id)
        _insert_sorted(self._member_group_ids.setdefault(member_id, []), group.id)
        return group, True

    def leave_group(self, member_id: int, name: str) -> bool:
        """Remove a member from the named group; False if they were not in it."""
        group = self.group_by_name(name)
        if group is None or not _contains_sorted(self._group_member_ids[group.id], member_id):
            return False
        _remove_sorted(self._group_member_ids[group.id], member_id)
        _remove_sorted(self._member_group_ids[member_id], group.id)
        return True

    def leave_all_groups(self, member_id: int) -> int:
        """Remove a member from every group; returns how many groups they left."""
        group_ids = self._member_group_ids.pop(member_id, [])
        for group_id in group_ids:
            _remove_sorted(self._group_member_ids[group_id], member_id)
        return len(group_ids)
