"""Every Coursepath endpoint of the sandbox academy, driven over raw HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from sandbox_raw import RawApi, running

from coursepath_async.testing import SandboxAcademy

Env = tuple[SandboxAcademy, RawApi]

MEMBER_KEYS = {
    "id",
    "email",
    "name",
    "company",
    "department",
    "country",
    "externalId",
    "association",
    "identification",
    "registration",
    "createdDate",
}
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with running() as pair:
        yield pair


# -- members ---------------------------------------------------------------------------


async def test_me_answers_for_the_acting_member(env: Env) -> None:
    """GET /members/me returns the member named by the token's email."""
    academy, api = env
    admin = await api.get("/members/me")
    learner = academy.state.members()[3]
    mine = await api.get("/members/me", email=learner.email.upper())
    assert admin.status == 200
    assert admin.json()["email"] == academy.admin_email
    assert mine.json()["id"] == learner.id


async def test_member_json_has_the_documented_camelcase_fields(env: Env) -> None:
    """A member is the camelCase object of Part B with an ISO 8601 Z date."""
    academy, api = env
    member = academy.state.members()[2]
    response = await api.get(f"/members/{member.id}")
    body = response.json()
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert set(body) == MEMBER_KEYS
    assert body["email"] == member.email
    assert body["company"] == member.company
    assert body["externalId"] == member.external_id
    assert ISO_Z.fullmatch(body["createdDate"])


@pytest.mark.parametrize("path", ["/members/9999", "/members/abc", "/members/0", "/members/-3"])
async def test_unknown_or_invalid_member_ids_are_404_json(env: Env, path: str) -> None:
    """Unknown, non-integer and non-positive ids all answer a JSON 404."""
    _, api = env
    response = await api.get(path)
    assert response.status == 404
    assert response.json()["error"] == "not_found"
    assert "message" in response.json()


async def test_unknown_route_is_404_json(env: Env) -> None:
    """A path outside the API answers a JSON 404 too."""
    _, api = env
    response = await api.get("/api/v2/whatever")
    assert response.status == 404
    assert response.json() == {"error": "not_found", "message": "no route for GET /api/v2/whatever"}


async def test_wrong_method_is_405_with_allow(env: Env) -> None:
    """A known path with an unsupported method answers 405 and lists the allowed ones."""
    _, api = env
    response = await api.delete("/members")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, POST"


async def test_list_members_is_a_bare_array_by_id(env: Env) -> None:
    """GET /members returns every member as a bare array in ascending id order."""
    academy, api = env
    body = (await api.get("/members")).json()
    assert [m["id"] for m in body] == [m.id for m in academy.state.members()]
    assert len(body) == 12


async def test_create_member_from_json_derives_the_name(env: Env) -> None:
    """POST /members with a JSON body creates a member (201), naming them from the email."""
    academy, api = env
    response = await api.post("/members", json={"email": "john.smith@x.com", "company": "X"})
    body = response.json()
    assert response.status == 201
    assert body["name"] == "John Smith"
    assert body["company"] == "X"
    stored = academy.state.member_by_email("john.smith@x.com")
    assert stored is not None
    assert stored.id == body["id"]
    assert stored.role == "learner"


async def test_create_member_from_a_form_body(env: Env) -> None:
    """POST /members also accepts application/x-www-form-urlencoded."""
    academy, api = env
    form = {"email": "ana.lopez@x.com", "name": "Ana L.", "externalId": "E-9"}
    response = await api.post("/members", data=form)
    assert response.status == 201
    assert response.json()["name"] == "Ana L."
    assert response.json()["externalId"] == "E-9"
    assert academy.state.member_by_email("ana.lopez@x.com") is not None


async def test_duplicate_email_is_409_case_insensitive(env: Env) -> None:
    """Creating a member whose email exists in any case answers 409 ``conflict``."""
    academy, api = env
    existing = academy.state.members()[4].email
    count = academy.state.member_count
    response = await api.post("/members", json={"email": existing.upper()})
    assert response.status == 409
    assert response.json()["error"] == "conflict"
    assert academy.state.member_count == count


async def test_duplicate_status_can_be_422() -> None:
    """``duplicate_status=422`` makes the same conflict answer 422."""
    async with running(duplicate_status=422) as (academy, api):
        response = await api.post("/members", json={"email": academy.admin_email})
    assert response.status == 422
    assert response.json()["error"] == "conflict"


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"json": {"name": "No Email"}}, 400, "missing_parameter"),
        ({"json": {"email": "  "}}, 400, "missing_parameter"),
        ({"json": {"email": "not-an-email"}}, 422, "invalid_email"),
        ({"json": {"email": "a@b.c", "company": ["x"]}}, 422, "invalid_parameter"),
        ({"json": ["email", "a@b.c"]}, 400, "invalid_body"),
        (
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        (
            {"data": b"email=a@b.c", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
    ],
)
async def test_create_member_rejects_bad_bodies(
    env: Env, kwargs: dict[str, object], status: int, error: str
) -> None:
    """Missing email → 400, malformed email/field → 422, bad JSON → 400, odd type → 415."""
    _, api = env
    response = await api.post("/members", **kwargs)
    assert response.status == status
    assert response.json()["error"] == error


async def test_update_member(env: Env) -> None:
    """POST /members/{id} changes the given fields and answers the updated member."""
    academy, api = env
    member = academy.state.members()[5]
    response = await api.post(
        f"/members/{member.id}", json={"department": "Research", "email": "new.mail@x.com"}
    )
    assert response.status == 200
    assert response.json()["department"] == "Research"
    assert response.json()["company"] == member.company
    assert academy.state.member(member.id).email == "new.mail@x.com"
    assert academy.state.member_by_email(member.email) is None


async def test_update_member_errors(env: Env) -> None:
    """Updating an unknown member is 404; taking another member's email is 409."""
    academy, api = env
    member = academy.state.members()[5]
    unknown = await api.post("/members/999", json={"company": "X"})
    taken = await api.post(f"/members/{member.id}", json={"email": academy.admin_email})
    assert unknown.status == 404
    assert taken.status == 409
    assert academy.state.member(member.id).email == member.email


async def test_update_with_empty_name_derives_it_again(env: Env) -> None:
    """An empty name on update falls back to the name derived from the email."""
    academy, api = env
    member = academy.state.add_member("mia.rossi@x.com", name="Boss")
    response = await api.post(f"/members/{member.id}", json={"name": ""})
    assert response.json()["name"] == "Mia Rossi"


# -- courses and enrolments ------------------------------------------------------------


async def test_course_reads(env: Env) -> None:
    """GET /courses, /courses/{id}, /members/{id}/courses and /courses/{id}/members."""
    academy, api = env
    member = academy.state.add_member("reader@x.com")
    academy.state.enrol(2, member.id)
    academy.state.enrol(4, member.id)
    courses = (await api.get("/courses")).json()
    one = await api.get("/courses/2")
    mine = (await api.get(f"/members/{member.id}/courses")).json()
    enrolled = (await api.get("/courses/2/members")).json()
    assert [c["id"] for c in courses] == [1, 2, 3, 4]
    assert set(courses[0]) == {"id", "name", "description", "createdDate"}
    assert one.json()["name"] == academy.state.course(2).name
    assert [c["id"] for c in mine] == [2, 4]
    assert [m["id"] for m in enrolled] == [
        m.id for m in academy.state.page_members(0, 500, course_id=2)
    ]
    assert member.id in [m["id"] for m in enrolled]
    assert (await api.get("/courses/99")).status == 404
    assert (await api.get("/courses/99/members")).status == 404


async def test_coursemember_lifecycle(env: Env) -> None:
    """Enrol 201 then 200 (idempotent), result null until completed, unenrol deletes it."""
    academy, api = env
    member = academy.state.add_member("learner.one@x.com")
    path = f"/courses/3/members/{member.id}/coursemember"
    assert (await api.get(path)).status == 404
    first = await api.post(path)
    again = await api.post(path)
    assert first.status == 201
    assert again.status == 200
    assert again.json() == first.json()
    assert first.json()["score"] is None
    assert first.json()["success"] is None
    assert first.json()["completedDate"] is None
    assert first.json()["certificate"] is None
    academy.complete_course(3, member.id, score=88.5, success=True)
    result = (await api.get(path)).json()
    assert result["score"] == 88.5
    assert result["success"] is True
    assert ISO_Z.fullmatch(result["completedDate"])
    assert result["certificate"].startswith("https://")
    assert (await api.delete(path)).status == 204
    assert (await api.get(path)).status == 404
    assert (await api.delete(path)).status == 404
    assert (await api.post(path)).json()["score"] is None


async def test_create_course_member_creates_and_enrols(env: Env) -> None:
    """POST /courses/{id}/members creates the member (201) and enrols them."""
    academy, api = env
    response = await api.post("/courses/2/members", json={"email": "new.hire@x.com"})
    assert response.status == 201
    assert academy.state.enrolment(2, response.json()["id"]) is not None
    duplicate = await api.post("/courses/3/members", json={"email": "NEW.HIRE@x.com"})
    assert duplicate.status == 409
    assert academy.state.enrolment(3, response.json()["id"]) is None
    assert (await api.post("/courses/77/members", json={"email": "x@y.z"})).status == 404


async def test_program_member_endpoints(env: Env) -> None:
    """Create-and-enrol in a program, enrol 201/200, unenrol 204/404."""
    academy, api = env
    created = await api.post("/programs/1/members", json={"email": "prog.ram@x.com"})
    assert created.status == 201
    assert academy.state.program_enrolment(1, created.json()["id"]) is not None
    member = academy.state.add_member("other.one@x.com")
    path = f"/programs/2/members/{member.id}/programmember"
    first = await api.post(path)
    again = await api.post(path)
    assert (first.status, again.status) == (201, 200)
    assert set(first.json()) == {"programId", "memberId", "createdDate"}
    assert (await api.delete(path)).status == 204
    assert (await api.delete(path)).status == 404
    assert (await api.post(f"/programs/9/members/{member.id}/programmember")).status == 404


# -- invitations -----------------------------------------------------------------------


async def test_invites_on_all_three_routes_with_overrides(env: Env) -> None:
    """The three invite routes answer ``{"invited": true}`` and record scope and mail."""
    academy, api = env
    member = academy.state.add_member("invitee@x.com")
    academy.state.enrol(1, member.id)
    academy.state.enrol_program(2, member.id)
    plain = await api.post(f"/members/{member.id}/invite")
    course = await api.post(
        f"/courses/1/members/{member.id}/invite",
        json={"mail": {"subject": "Welcome", "body": "Hi!", "action": "Start"}},
    )
    program = await api.post(
        f"/programs/2/members/{member.id}/invite", data={"mail[subject]": "Track"}
    )
    assert [r.status for r in (plain, course, program)] == [200, 200, 200]
    assert plain.json() == {"invited": True}
    assert academy.recorder.invitations[member.id] == 3
    log = academy.recorder.invitation_log
    assert [(i.scope, i.scope_id) for i in log] == [("member", None), ("course", 1), ("program", 2)]
    assert (log[1].subject, log[1].body, log[1].action) == ("Welcome", "Hi!", "Start")
    assert (log[2].subject, log[2].body) == ("Track", None)


async def test_invites_need_an_enrolment_and_valid_mail(env: Env) -> None:
    """Course/program invites of a non-enrolled member are 404; a non-object mail is 422."""
    academy, api = env
    member = academy.state.add_member("stranger@x.com")
    assert (await api.post(f"/courses/1/members/{member.id}/invite")).status == 404
    assert (await api.post(f"/programs/1/members/{member.id}/invite")).status == 404
    assert (await api.post("/members/999/invite")).status == 404
    bad = await api.post(f"/members/{member.id}/invite", json={"mail": "hello"})
    assert bad.status == 422
    assert academy.recorder.invitations[member.id] == 0


# -- groups ----------------------------------------------------------------------------


async def test_group_endpoints(env: Env) -> None:
    """Join (creating the group), idempotent re-join, list both ways, leave one, leave all."""
    academy, api = env
    member = academy.state.add_member("grouper@x.com")
    path = f"/members/{member.id}/groups"
    joined = await api.post(path, json={"name": "Climbers"})
    again = await api.post(path, data={"name": "Climbers"})
    existing = await api.post(path, json={"name": academy.state.groups()[0].name})
    assert (joined.status, again.status, existing.status) == (201, 200, 201)
    group_id = joined.json()["id"]
    assert joined.json() == {"id": group_id, "name": "Climbers"}
    groups = (await api.get("/groups")).json()
    assert groups[-1] == {"id": group_id, "name": "Climbers"}
    assert [g["id"] for g in (await api.get(path)).json()] == [1, group_id]
    members = (await api.get(f"/groups/{group_id}/members")).json()
    assert [m["id"] for m in members] == [member.id]
    assert (await api.delete(path, json={"name": "Climbers"})).status == 204
    assert (await api.delete(path, json={"name": "Climbers"})).status == 404
    assert (await api.delete(path, params={"name": "Nowhere"})).status == 404
    assert (await api.delete(path)).status == 204
    assert academy.state.member_group_ids(member.id) == []
    assert (await api.post(path, json={})).status == 400
    assert (await api.get("/groups/999/members")).status == 404


# -- pagination and filters --------------------------------------------------------------


async def test_page_sizes_are_silently_capped() -> None:
    """Members cap at 500, courses at 250, groups at 100, whatever ``limit`` asks."""
    async with running(members=520, courses=260, groups=105) as (academy, api):
        member = academy.state.add_member("busy@x.com")
        for course in academy.state.courses():
            academy.state.enrol(course.id, member.id)
        for group in academy.state.groups():
            academy.state.join_group(member.id, group.name)
        sizes = {
            path: len((await api.get(path, params={"limit": "1000"})).json())
            for path in (
                "/members",
                "/courses",
                "/groups",
                f"/members/{member.id}/courses",
                f"/members/{member.id}/groups",
            )
        }
        default = len((await api.get("/members")).json())
        rest = len((await api.get("/members", params={"offset": "500"})).json())
        course_members = len((await api.get("/courses/1/members")).json())
    assert sizes == {
        "/members": 500,
        "/courses": 250,
        "/groups": 100,
        f"/members/{member.id}/courses": 250,
        f"/members/{member.id}/groups": 100,
    }
    assert (default, rest) == (500, 21)
    assert course_members == len(academy.state.enrolments(1))


async def test_page_sizes_are_configurable() -> None:
    """``member_page_size`` and friends change the caps, for fast pagination tests."""
    async with running(member_page_size=5, course_page_size=2, group_page_size=1) as (_, api):
        members = (await api.get("/members", params={"limit": "50"})).json()
        courses = (await api.get("/courses")).json()
        groups = (await api.get("/groups")).json()
    assert (len(members), len(courses), len(groups)) == (5, 2, 1)


async def test_offset_and_limit_walk_every_member_once(env: Env) -> None:
    """Advancing ``offset`` by what arrived visits every member exactly once."""
    academy, api = env
    seen: list[int] = []
    while True:
        page = (await api.get("/members", params={"offset": str(len(seen)), "limit": "5"})).json()
        seen.extend(m["id"] for m in page)
        if len(page) < 5:
            break
    assert seen == [m.id for m in academy.state.members()]


@pytest.mark.parametrize("params", [{"offset": "-1"}, {"limit": "abc"}, {"offset": "1.5"}])
async def test_invalid_offset_or_limit_is_400(env: Env, params: dict[str, str]) -> None:
    """Negative or non-integer ``offset``/``limit`` answer 400."""
    _, api = env
    response = await api.get("/members", params=params)
    assert response.status == 400
    assert response.json()["error"] == "invalid_parameter"


async def test_newest_first_lets_inserts_shift_pages() -> None:
    """With ``list_order="newest_first"`` an insert during a listing repeats a record."""
    async with running(list_order="newest_first") as (academy, api):
        first = [m["id"] for m in (await api.get("/members", params={"limit": "4"})).json()]
        academy.state.add_member("late.comer@x.com")
        second = [
            m["id"]
            for m in (await api.get("/members", params={"offset": "4", "limit": "4"})).json()
        ]
    assert first == [12, 11, 10, 9]
    assert second == [9, 8, 7, 6]


async def test_member_filters(env: Env) -> None:
    """Filters match exactly (email case-insensitively) and combine; unknown ones are ignored."""
    academy, api = env
    target = academy.state.members()[6]
    by_email = (await api.get("/members", params={"email": target.email.upper()})).json()
    assert [m["id"] for m in by_email] == [target.id]
    assert target.company is not None
    by_company = (await api.get("/members", params={"company": target.company})).json()
    expected = [m.id for m in academy.state.members() if m.company == target.company]
    assert [m["id"] for m in by_company] == expected
    assert target.country is not None
    both = (
        await api.get(
            "/members",
            params={"company": target.company, "country": target.country, "colour": "blue"},
        )
    ).json()
    assert [m["id"] for m in both] == [
        m.id
        for m in academy.state.members()
        if (m.company, m.country) == (target.company, target.country)
    ]
    none = (await api.get("/members", params={"externalId": "nobody"})).json()
    assert none == []


async def test_filters_apply_to_course_and_group_member_lists(env: Env) -> None:
    """Course and group member lists accept the same filters."""
    academy, api = env
    member = academy.state.add_member("filtered@x.com", company="Filter Co")
    academy.state.enrol(1, member.id)
    group, _ = academy.state.join_group(member.id, "Filtered")
    in_course = (await api.get("/courses/1/members", params={"company": "Filter Co"})).json()
    in_group = (
        await api.get(f"/groups/{group.id}/members", params={"email": "FILTERED@x.com"})
    ).json()
    not_in = (await api.get("/courses/2/members", params={"email": "filtered@x.com"})).json()
    assert [m["id"] for m in in_course] == [member.id]
    assert [m["id"] for m in in_group] == [member.id]
    assert not_in == []


# -- permissions -----------------------------------------------------------------------


async def test_learners_may_only_read_their_own_records(env: Env) -> None:
    """A learner reads me, their member, courses, groups and results; anything else is 403."""
    academy, api = env
    learner = academy.state.members()[1]
    other = academy.state.members()[2]
    academy.state.enrol(1, learner.id)
    allowed = [
        "/members/me",
        f"/members/{learner.id}",
        f"/members/{learner.id}/courses",
        f"/members/{learner.id}/groups",
        f"/courses/1/members/{learner.id}/coursemember",
    ]
    denied = [
        f"/members/{other.id}",
        f"/members/{other.id}/courses",
        "/members",
        "/courses",
        "/courses/1",
        "/groups",
    ]
    for path in allowed:
        assert (await api.get(path, email=learner.email)).status == 200, path
    for path in denied:
        response = await api.get(path, email=learner.email)
        assert response.status == 403, path
        assert response.json()["error"] == "forbidden"
    write = await api.post(f"/members/{learner.id}", email=learner.email, json={"company": "Mine"})
    assert write.status == 403
    assert academy.state.member(learner.id).company == learner.company
