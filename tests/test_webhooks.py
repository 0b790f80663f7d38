"""The webhook receiver end to end: the sandbox delivers, the receiver verifies via the API."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Unpack

import aiohttp
import orjson
import pytest
from attrs import define
from conftest import API_KEY, make_client, sandbox
from yarl import URL

from coursepath_async import CoursepathClient, Priority, RetryPolicy
from coursepath_async.testing import SandboxAcademy
from coursepath_async.webhooks import (
    RECEIVER_KEY,
    EventKind,
    ReceiverOptions,
    VerifiedEvent,
    WebhookReceiver,
    webhook_app,
)

SECRET = "s3cret-path-segment-0123456789abcdef"
FORM = "application/x-www-form-urlencoded"
TWO_ATTEMPTS = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
WAIT = 5.0
COURSEMEMBER = "/courses/{courseId}/members/{memberId}/coursemember"

OnEvent = Callable[[VerifiedEvent], Awaitable[None]]


@define
class Harness:
    """A sandbox academy delivering to a live receiver, plus a raw session for forged posts."""

    academy: SandboxAcademy
    client: CoursepathClient
    receiver: WebhookReceiver
    url: str
    session: aiohttp.ClientSession
    events: list[VerifiedEvent]

    async def post(
        self,
        body: bytes | str | Mapping[str, str],
        *,
        content_type: str | None = FORM,
        url: str | None = None,
    ) -> tuple[int, Any]:
        """POST a body as is (a mapping is form-encoded); return status and parsed body."""
        data = body.encode() if isinstance(body, str) else body
        headers = {} if content_type is None else {"Content-Type": content_type}
        skip = ["Content-Type"] if content_type is None else []
        async with self.session.post(
            url or self.url, data=data, headers=headers, skip_auto_headers=skip
        ) as response:
            raw = await response.read()
            is_json = response.content_type == "application/json"
            return response.status, orjson.loads(raw) if is_json else raw.decode()

    async def settle(self) -> None:
        """Wait until every delivery has been answered and every accepted event processed."""
        async with asyncio.timeout(WAIT):
            await self.academy.wait_webhooks()
            await self.receiver.join()

    def api_calls(self) -> int:
        """Verification GETs the academy has served."""
        return self.academy.recorder.count("GET", COURSEMEMBER)


@asynccontextmanager
async def receiving(
    on_event: OnEvent | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
    **options: Unpack[ReceiverOptions],
) -> AsyncIterator[Harness]:
    """Run the receiver on a pre-bound port, an academy delivering to it, and a client."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    secret = options.get("secret")
    url = f"http://127.0.0.1:{port}/webhooks" + (f"/{secret}" if secret else "")
    events: list[VerifiedEvent] = []

    async def record(verified: VerifiedEvent) -> None:
        events.append(verified)

    try:
        async with (
            sandbox(members=12, courses=3, seed=5, webhook_url=url) as a,
            make_client(a, retry=TWO_ATTEMPTS, **(client_options or {})) as client,
            aiohttp.ClientSession() as session,
        ):
            app = webhook_app(client, on_event or record, **options)
            receiver = app[RECEIVER_KEY]
            runner = receiver.runner(app)
            await runner.setup()
            try:
                await receiver.site(runner, sock=sock).start()
                yield Harness(a, client, receiver, url, session, events)
            finally:
                await runner.cleanup()
    finally:
        sock.close()


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop (no timers) until ``condition`` holds; fail if it never does."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def worker_tasks() -> list[asyncio.Task[Any]]:
    """The receiver's worker tasks still alive on this loop."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("coursepath-webhook-worker") and not task.done()
    ]


def open_enrolment(academy: SandboxAcademy, skip: int = 0) -> tuple[int, int]:
    """A (course, member) enrolment without a result yet."""
    open_ = [e for e in academy.state.enrolments() if e.completed is None]
    return open_[skip].course_id, open_[skip].member_id


def not_enrolled(academy: SandboxAcademy) -> tuple[int, int]:
    """An existing course and member that are not enrolled together."""
    course = academy.state.courses()[0].id
    for member in academy.state.members():
        if academy.state.enrolment(course, member.id) is None:
            return course, member.id
    raise AssertionError("every member is enrolled")


def form(event: EventKind | str, course_id: int | str, member_id: int | str) -> dict[str, str]:
    """A delivery as Coursepath sends it."""
    name = event.value if isinstance(event, EventKind) else event
    return {"courseId": str(course_id), "memberId": str(member_id), "event": name}


# -- genuine deliveries ----------------------------------------------------------------


async def test_completion_is_verified_end_to_end() -> None:
    """complete_course → delivery → one API re-fetch → callback gets score, success, date."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member, score=87.5, success=True)
        await h.settle()
        assert len(h.events) == 1
        verified = h.events[0]
        assert (verified.kind, verified.course_id, verified.member_id) == (
            EventKind.COURSEMEMBER_COMPLETED,
            course,
            member,
        )
        assert verified.result is not None
        assert verified.result.score == 87.5
        assert verified.result.success is True
        assert verified.result.completed_date is not None
        assert verified.result.certificate is not None
        assert verified.verified_at >= verified.received_at
        assert h.api_calls() == 1
        assert [d.status for d in h.academy.recorder.webhook_deliveries] == [202]
        stats = h.receiver.stats()
        assert (stats.received, stats.accepted, stats.verified) == (1, 1, 1)


async def test_failed_completion_is_verified_too() -> None:
    """A learner who completed without success is still a verified COMPLETED event."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member, score=12.0, success=False)
        await h.settle()
        [verified] = h.events
        assert verified.result is not None
        assert (verified.result.score, verified.result.success) == (12.0, False)
        assert verified.result.certificate is None


async def test_enrolment_is_verified_as_created() -> None:
    """Enrolling through the API delivers CREATED, confirmed by the enrolment existing."""
    async with receiving() as h:
        course, member = not_enrolled(h.academy)
        await h.client.courses.enroll(course, member)
        await h.settle()
        [verified] = h.events
        assert verified.kind is EventKind.COURSEMEMBER_CREATED
        assert (verified.course_id, verified.member_id) == (course, member)
        assert verified.result is not None
        assert verified.result.completed_date is None


async def test_unenrolment_is_verified_as_deleted() -> None:
    """Unenrolling delivers DELETED, confirmed by the API answering 404."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy)
        await h.client.courses.unenroll(course, member)
        await h.settle()
        [verified] = h.events
        assert verified.kind is EventKind.COURSEMEMBER_DELETED
        assert verified.result is None


@pytest.mark.parametrize(
    ("priority", "client_lane", "lane"),
    [
        (Priority.INTERACTIVE, Priority.NORMAL, "interactive"),
        (Priority.NORMAL, Priority.BULK, "normal"),
        (None, Priority.BULK, "bulk"),
    ],
    ids=["interactive", "normal-over-a-bulk-client", "none-keeps-the-client-lane"],
)
async def test_verification_waits_in_the_chosen_lane(
    priority: Priority | None, client_lane: Priority, lane: str
) -> None:
    """Verification calls queue in the ``priority`` lane; ``None`` keeps the client's."""
    options: ReceiverOptions = {} if priority is Priority.NORMAL else {"priority": priority}
    client_options = {"max_concurrency": 1, "interactive_reserve": 0, "priority": client_lane}
    async with receiving(client_options=client_options, **options) as h:
        h.academy.script("GET", "/members/me", "hang")
        hog = asyncio.create_task(h.client.members.me())  # holds the only slot
        async with asyncio.timeout(WAIT):
            await h.academy.recorder.wait_for(lambda r: r.in_flight == 1)
        course, member = open_enrolment(h.academy)
        assert (await h.post(form(EventKind.COURSEMEMBER_CREATED, course, member)))[0] == 202
        for _ in range(1000):  # no I/O between the 202 and the worker reaching the scheduler
            if sum(h.client.scheduler_stats().pending.values()):
                break
            await asyncio.sleep(0)
        assert h.client.scheduler_stats().pending == {
            name: int(name == lane) for name in ("interactive", "normal", "bulk")
        }
        hog.cancel()
        await asyncio.gather(hog, return_exceptions=True)
        await h.settle()
        assert len(h.events) == 1


# -- forged and stale deliveries -------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "pick", "reason"),
    [
        (EventKind.COURSEMEMBER_COMPLETED, "open", "not_completed"),
        (EventKind.COURSEMEMBER_COMPLETED, "none", "not_enrolled"),
        (EventKind.COURSEMEMBER_CREATED, "none", "not_enrolled"),
        (EventKind.COURSEMEMBER_DELETED, "open", "still_enrolled"),
    ],
)
async def test_forged_event_is_unconfirmed_and_not_passed_on(
    event: EventKind, pick: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A post the API contradicts is accepted, checked once, counted by reason and dropped."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy) if pick == "open" else not_enrolled(h.academy)
        assert await h.post(form(event, course, member)) == (202, {"status": "accepted"})
        await h.settle()
        assert h.events == []
        assert h.receiver.stats().unconfirmed == {reason: 1}
        assert h.api_calls() == 1
    assert any(reason in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_forgery_does_not_shadow_the_genuine_delivery() -> None:
    """An unconfirmed event is forgotten, so the real delivery that follows still counts."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy)
        await h.post(form(EventKind.COURSEMEMBER_COMPLETED, course, member))
        await h.settle()
        h.academy.complete_course(course, member, score=55.0)
        await h.settle()
        [verified] = h.events
        assert verified.result is not None
        assert verified.result.score == 55.0
        stats = h.receiver.stats()
        assert (stats.unconfirmed, stats.verified, stats.duplicates) == ({"not_completed": 1}, 1, 0)


@pytest.mark.parametrize("first_check", [(404,), (500, 500)], ids=["unconfirmed", "api-error"])
async def test_a_copy_answered_duplicate_is_rechecked_when_the_pending_one_fails(
    first_check: tuple[int, ...],
) -> None:
    """A delivery answered "duplicate" behind a pending early one that then fails is not lost."""
    seen: list[VerifiedEvent] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_first(verified: VerifiedEvent) -> None:
        seen.append(verified)
        if len(seen) == 1:
            entered.set()
            await release.wait()

    async with receiving(slow_first, workers=1) as h:
        busy, (course, member) = open_enrolment(h.academy), open_enrolment(h.academy, skip=1)
        h.academy.complete_course(*busy)  # its callback holds the only worker
        async with asyncio.timeout(WAIT):
            await entered.wait()
        early = form(EventKind.COURSEMEMBER_COMPLETED, course, member)
        assert await h.post(early) == (202, {"status": "accepted"})  # pending, not completed
        h.academy.complete_course(course, member)  # the genuine delivery, sent once
        async with asyncio.timeout(WAIT):
            await h.academy.wait_webhooks()
        assert h.academy.recorder.webhook_deliveries[-1].status == 200  # "duplicate"
        h.academy.script("GET", COURSEMEMBER, *first_check)  # the pending check fails
        release.set()
        await h.settle()
        assert [(e.course_id, e.member_id) for e in seen] == [busy, (course, member)]
        stats = h.receiver.stats()
        assert (stats.accepted, stats.duplicates, stats.verified) == (2, 1, 2)
        assert (stats.unconfirmed, stats.verify_errors) == ({}, 0)  # only the last check counts


async def test_api_failure_is_a_verify_error_and_forgotten() -> None:
    """When the API keeps failing the event is counted, not passed on, and may come again."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member)
        h.academy.script("GET", COURSEMEMBER, 500, 500)
        await h.settle()
        assert h.events == []
        assert h.receiver.stats().verify_errors == 1
        status, _ = await h.post(form(EventKind.COURSEMEMBER_COMPLETED, course, member))
        await h.settle()
        assert status == 202
        assert len(h.events) == 1


# -- malformed posts -------------------------------------------------------------------

VALID = "courseId=1&memberId=4&event=COURSEMEMBER_COMPLETED"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        pytest.param(VALID, "application/json", 415, "unsupported_content_type", id="json"),
        pytest.param(VALID, None, 415, "unsupported_content_type", id="no-content-type"),
        pytest.param(VALID, f"{FORM}; charset=latin-1", 415, "unsupported_content_type", id="cs"),
        pytest.param(VALID + "&pad=" + "x" * 5000, FORM, 413, "body_too_large", id="oversized"),
        pytest.param(VALID.encode() + b"&x=\xff", FORM, 400, "invalid_encoding", id="raw-bytes"),
        pytest.param(VALID + "&x=%FF", FORM, 400, "invalid_encoding", id="percent-ff"),
        pytest.param("courseId", FORM, 400, "malformed_form", id="no-equals"),
        pytest.param("", FORM, 400, "missing_field", id="empty"),
        pytest.param("courseId=1&memberId=4", FORM, 400, "missing_field", id="no-event"),
        pytest.param(VALID + "&courseId=2", FORM, 400, "repeated_field", id="repeated"),
        pytest.param(VALID.replace("COMPLETED", "PASSED"), FORM, 400, "unknown_event", id="ev"),
        pytest.param(
            VALID.replace("COURSEMEMBER", "coursemember"), FORM, 400, "unknown_event", id="lc"
        ),
        pytest.param(VALID.replace("=1&", "=../1&"), FORM, 400, "invalid_id", id="traversal"),
        pytest.param(VALID.replace("=1&", "=-1&"), FORM, 400, "invalid_id", id="negative"),
        pytest.param(VALID.replace("=1&", "=0&"), FORM, 400, "invalid_id", id="zero"),
        pytest.param(VALID.replace("=1&", "=1.0&"), FORM, 400, "invalid_id", id="float"),
        pytest.param(VALID.replace("=1&", "=+1+&"), FORM, 400, "invalid_id", id="spaces"),
        pytest.param(VALID.replace("=4&", "=1e3&"), FORM, 400, "invalid_id", id="exponent"),
        pytest.param(VALID.replace("=4&", "=" + "9" * 20 + "&"), FORM, 400, "invalid_id", id="big"),
    ],
)
async def test_malformed_post_is_refused_without_an_api_call(
    body: str | bytes, content_type: str | None, status: int, reason: str
) -> None:
    """Every kind of malformed post gets its 4xx and a JSON reason; the API is never called."""
    async with receiving() as h:
        answer = await h.post(body, content_type=content_type)
        assert answer[0] == status
        assert answer[1]["error"] == reason
        assert answer[1]["message"]
        await h.settle()
        assert h.academy.recorder.total == 0
        stats = h.receiver.stats()
        assert (stats.rejected, stats.accepted) == ({reason: 1}, 0)


async def test_oversized_chunked_body_is_refused_after_the_limit() -> None:
    """Without a Content-Length the receiver stops reading one byte past the limit: 413."""

    async def endless() -> AsyncIterator[bytes]:
        yield VALID.encode()
        for _ in range(64):
            yield b"&pad=" + b"x" * 1024

    async with receiving() as h:
        async with h.session.post(
            h.url, data=endless(), headers={"Content-Type": FORM}
        ) as response:
            assert response.status == 413
            assert "Content-Length" not in response.request_info.headers
        assert h.receiver.stats().rejected == {"body_too_large": 1}
        assert h.academy.recorder.total == 0


async def test_other_methods_get_405_and_reach_nothing() -> None:
    """Only POST is a delivery: a GET is answered 405 with ``Allow: POST`` and counted."""
    async with receiving() as h:
        async with h.session.get(h.url) as response:
            assert response.status == 405
            assert response.headers["Allow"] == "POST"
        assert h.receiver.stats().rejected == {"method_not_allowed": 1}
        assert h.academy.recorder.total == 0


async def test_a_body_that_never_arrives_times_out() -> None:
    """A client that stalls mid-body gets 408 after ``read_timeout``, not a hung handler."""
    async with receiving(read_timeout=0.05) as h:
        url = URL(h.url)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(
            f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
            f"Content-Length: 100\r\n\r\ncourseId=1".encode()
        )
        await writer.drain()
        async with asyncio.timeout(WAIT):
            status_line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        assert status_line.split()[1] == b"408"
        assert h.receiver.stats().rejected == {"read_timeout": 1}


async def test_a_body_cut_off_is_a_counted_400_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client gone mid-body is counted as ``malformed_body``; nothing is logged as an error."""
    async with receiving(secret=SECRET) as h:
        url = URL(h.url)
        head = f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
        _, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(f"{head}Content-Length: 100\r\n\r\ncourseId=1".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await until(lambda: h.receiver.stats().rejected_total == 1)
        assert h.receiver.stats().rejected == {"malformed_body": 1}
        assert h.academy.recorder.total == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert SECRET not in caplog.text


# -- duplicates ------------------------------------------------------------------------


async def test_repeated_deliveries_are_processed_once() -> None:
    """The same (event, course, member) again within the window is answered 200, not re-verified."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member)
        await h.settle()
        for _ in range(3):
            answer = await h.post(form(EventKind.COURSEMEMBER_COMPLETED, course, member))
            assert answer == (200, {"status": "duplicate"})
        await h.settle()
        assert len(h.events) == 1
        assert h.api_calls() == 1
        assert h.receiver.stats().duplicates == 3


async def test_concurrent_duplicates_are_queued_once() -> None:
    """Copies arriving together while the first is still pending are all but one refused."""
    async with receiving() as h:
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member)
        await h.settle()
        data = form(EventKind.COURSEMEMBER_CREATED, course, member)
        answers = await asyncio.gather(*(h.post(data) for _ in range(8)))
        assert sorted(status for status, _ in answers) == [200] * 7 + [202]
        await h.settle()
        assert h.api_calls() == 2


async def test_duplicate_window_expires() -> None:
    """After ``dedupe_ttl`` seconds the same event is processed again."""
    now = [1000.0]
    async with receiving(dedupe_ttl=60.0, clock=lambda: now[0]) as h:
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member)
        await h.settle()
        data = form(EventKind.COURSEMEMBER_COMPLETED, course, member)
        now[0] += 59.0
        assert (await h.post(data))[0] == 200
        now[0] += 1.0
        assert (await h.post(data))[0] == 202
        await h.settle()
        assert len(h.events) == 2


# -- the secret path -------------------------------------------------------------------


async def test_secret_path_is_enforced_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """Wrong or missing secret: plain 404, no API call; the right one works; no leaks."""
    caplog.set_level(logging.DEBUG)
    async with receiving(secret=SECRET) as h:
        base = h.url.rsplit("/", 1)[0]
        data = form(EventKind.COURSEMEMBER_COMPLETED, *open_enrolment(h.academy))
        for wrong in (f"{base}/{SECRET[:-1]}x", f"{base}/{SECRET}x", base, f"{base}/é"):
            assert await h.post(data, url=wrong) == (404, "404: Not Found")
        async with h.session.get(f"{base}/guess-{SECRET}") as response:
            assert response.status == 404  # not 405: nothing tells a guesser the route exists
        await h.settle()
        assert h.academy.recorder.total == 0
        course, member = open_enrolment(h.academy, skip=1)
        h.academy.complete_course(course, member)
        await h.settle()
        assert [(e.course_id, e.member_id) for e in h.events] == [(course, member)]
        assert h.receiver.stats().rejected == {"wrong_secret": 4}
        assert SECRET not in repr(h.receiver)
        assert "/webhooks/<secret>" in repr(h.receiver)
    assert SECRET not in caplog.text


async def test_options_are_checked_and_a_bad_secret_is_not_echoed() -> None:
    """Bad options raise ValueError at construction; the secret never appears in it."""
    async with CoursepathClient(
        "http://127.0.0.1:9", api_key=API_KEY, user="a@b.example", allow_http=True
    ) as client:

        async def ignore(_: VerifiedEvent) -> None:
            return None

        with pytest.raises(ValueError, match="secret must be") as caught:
            WebhookReceiver(client, ignore, secret="short/secret!")
        assert "short" not in str(caught.value)
        for options in ({"workers": 0}, {"queue_size": True}, {"path": "webhooks"}, {"path": "/"}):
            with pytest.raises(ValueError, match="must"):
                WebhookReceiver(client, ignore, **options)
        with pytest.raises(ValueError, match="ttl"):
            WebhookReceiver(client, ignore, dedupe_ttl=float("nan"))


# -- load: the queue bound ---------------------------------------------------------------


async def test_full_queue_answers_503_and_bounds_api_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the worker busy, posts beyond the queue get 503, are counted and logged once."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(_: VerifiedEvent) -> None:
        entered.set()
        await release.wait()

    async with receiving(slow, workers=1, queue_size=2) as h:
        course, member = open_enrolment(h.academy)
        h.academy.complete_course(course, member)
        async with asyncio.timeout(WAIT):
            await entered.wait()
        statuses = [
            (await h.post(form(EventKind.COURSEMEMBER_CREATED, 1, 1000 + n)))[0] for n in range(20)
        ]
        assert statuses == [202] * 2 + [503] * 18
        release.set()
        await h.settle()
        assert h.api_calls() == 3
        assert h.academy.recorder.peak_in_flight == 1
        stats = h.receiver.stats()
        assert (stats.dropped_queue_full, stats.unconfirmed) == (18, {"not_enrolled": 2})
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # the first drop at once, the 17 others at shutdown
    assert "queue full" in errors[0]
    assert errors[1].startswith("17 more")


async def test_forged_flood_never_exceeds_the_worker_bound() -> None:
    """200 concurrent valid-looking forgeries: calls ≤ accepted, in flight ≤ workers."""
    async with receiving(workers=2, queue_size=5) as h:
        answers = await asyncio.gather(
            *(h.post(form(EventKind.COURSEMEMBER_COMPLETED, 2, 5000 + n)) for n in range(200))
        )
        await h.settle()
        stats = h.receiver.stats()
        assert {status for status, _ in answers} <= {202, 503}
        assert stats.accepted + stats.dropped_queue_full == 200
        assert h.api_calls() == stats.accepted == stats.unconfirmed_total
        assert h.academy.recorder.peak_in_flight <= 2
        assert h.events == []


# -- callbacks and shutdown ------------------------------------------------------------


async def _raise_runtime_error() -> None:
    raise RuntimeError("downstream is down")


async def _leak_someone_elses_cancellation() -> None:
    other = asyncio.create_task(asyncio.Event().wait())
    other.cancel()
    await other  # someone else's cancellation surfaces here, the worker's is not pending


@pytest.mark.parametrize("fail", [_raise_runtime_error, _leak_someone_elses_cancellation])
async def test_callback_exception_is_counted_and_the_receiver_keeps_working(
    fail: Callable[[], Awaitable[None]], caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises (a stray CancelledError too) is logged and counted; the next works."""
    seen: list[VerifiedEvent] = []

    async def flaky(verified: VerifiedEvent) -> None:
        seen.append(verified)
        if len(seen) == 1:
            await fail()

    async with receiving(flaky, workers=1) as h:
        h.academy.complete_course(*open_enrolment(h.academy))
        await h.settle()
        h.academy.complete_course(*open_enrolment(h.academy))
        await h.settle()
        stats = h.receiver.stats()
        assert (len(seen), stats.verified, stats.callback_errors) == (2, 2, 1)
        assert len(worker_tasks()) == 1
    [failure] = [r for r in caplog.records if r.name == "coursepath_async.webhooks" and r.exc_info]
    assert "callback failed" in failure.getMessage()


async def test_shutdown_drains_what_was_accepted() -> None:
    """App cleanup stops accepting and lets the queued events finish first."""
    async with receiving(workers=1) as h:
        pairs = [open_enrolment(h.academy, skip=n) for n in range(3)]
        for course, member in pairs:
            assert (await h.post(form(EventKind.COURSEMEMBER_CREATED, course, member)))[0] == 202
        await h.receiver.aclose()
        assert len(h.events) == 3
        assert (await h.post(form(EventKind.COURSEMEMBER_CREATED, *pairs[0])))[0] == 503
        assert h.receiver.stats().rejected == {"unavailable": 1}
        await h.receiver.aclose()  # twice is harmless
        with pytest.raises(RuntimeError, match="restarted"):
            await h.receiver.start()


async def test_a_post_still_arriving_at_shutdown_is_refused_not_stranded() -> None:
    """A body that completes after ``aclose()`` gets 503 and is never queued unprocessed."""
    async with receiving(workers=1) as h:
        url = URL(h.url)
        course, member = open_enrolment(h.academy)
        body = f"courseId={course}&memberId={member}&event=COURSEMEMBER_CREATED".encode()
        reader, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(
            f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        await writer.drain()
        await until(lambda: h.receiver.stats().received == 1)  # past the state check
        await h.receiver.aclose(grace=0.05)
        writer.write(body[10:])
        async with asyncio.timeout(WAIT):
            status_line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        assert status_line.split()[1] == b"503"
        stats = h.receiver.stats()
        assert (stats.accepted, stats.rejected, stats.queued) == (0, {"unavailable": 1}, 0)
        assert h.academy.recorder.total == 0


async def test_shutdown_cancels_a_stuck_callback_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hung callback is cancelled (and logged) after the grace; queued events count as dropped."""
    entered = asyncio.Event()

    async def hang(_: VerifiedEvent) -> None:
        entered.set()
        await asyncio.Event().wait()

    async with receiving(hang, workers=1, queue_size=4) as h:
        for skip in range(3):
            course, member = open_enrolment(h.academy, skip=skip)
            await h.post(form(EventKind.COURSEMEMBER_CREATED, course, member))
        async with asyncio.timeout(WAIT):
            await entered.wait()
        await h.receiver.aclose(grace=0.05)
        stats = h.receiver.stats()
        assert (stats.verified, stats.dropped_shutdown, stats.queued, stats.in_flight) == (
            1,
            2,
            0,
            0,
        )
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "callback" in warning
    assert "cancelled at shutdown" in warning
    [summary] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "2 event(s) unprocessed (2 queued, 0 cut short" in summary


async def test_shutdown_logs_events_cut_short_during_verification(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event still being verified at shutdown is counted as dropped, logged by ids, summed."""
    async with receiving(workers=1) as h:
        h.academy.script("GET", COURSEMEMBER, "hang")
        course, member = open_enrolment(h.academy)
        await h.post(form(EventKind.COURSEMEMBER_COMPLETED, course, member))
        async with asyncio.timeout(WAIT):
            await h.academy.recorder.wait_for(lambda r: r.in_flight == 1)
        await h.receiver.aclose(grace=0.05)
        assert h.receiver.stats().dropped_shutdown == 1
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"course {course} member {member}" in warning
    assert "verification" in warning
    [summary] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "1 event(s) unprocessed (0 queued, 1 cut short during verification)" in summary


async def test_cancelling_aclose_still_stops_the_workers() -> None:
    """If ``aclose()`` is cancelled while draining, the workers are cancelled, not leaked."""
    entered = asyncio.Event()

    async def hang(_: VerifiedEvent) -> None:
        entered.set()
        await asyncio.Event().wait()

    async with receiving(hang, workers=2) as h:
        h.academy.complete_course(*open_enrolment(h.academy))
        async with asyncio.timeout(WAIT):
            await entered.wait()
        closing = asyncio.create_task(h.receiver.aclose(grace=3600))
        await asyncio.sleep(0)  # aclose is now waiting for the queue to drain
        assert not closing.done()
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert worker_tasks() == []
        assert (h.receiver.stats().verified, h.receiver.stats().in_flight) == (1, 0)
