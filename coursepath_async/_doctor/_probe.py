"""The doctor's probes: a few requests, each signed afresh and sent once through the client's pool.

Everything goes through the client's own scheduler slots (so ``--max-rate`` holds),
transport (its TLS settings, timeouts and body caps) and signer, but around the retry
policy: the doctor wants every answer as it came, a 401's ``Date`` included. Only a
refusal for the rate (429, or 503 with ``Retry-After``) is waited out and asked again,
and kept as seen. Tokens are signed on the academy's clock as the client learns it from
``Date`` headers, and a 401 whose ``Date`` shows our token was dated over a minute off
is sent once more signed on that clock, as the client does; the refusal is kept.
Nothing is written unless ``write_check``: then one update of the acting member with
its own current name, as JSON and, after a 415, once more as a form.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Final

from .._config import Priority, WireFormat
from .._core import Core
from .._cursor import page_body_limit
from .._exceptions import APIConnectionError, APIResponseValidationError
from .._retry import parse_retry_after
from .._sansio import encode_body
from .._skew import measure
from ._lists import first_ids, page_count
from ._observed import Exchange, ListProbe, Observations

#: What every list endpoint is asked for: above every documented cap, so a cap shows.
LIMIT: Final = 1000
#: Refusals for the rate waited out per probe before its last answer is taken as is.
MAX_REFUSALS: Final = 4
#: The longest wait for one refusal: the doctor is a quick check, not a bulk job.
MAX_WAIT: Final = 5.0
#: Learners whose course result is fetched to see the result fields.
RESULTS: Final = 3

#: The top-level list endpoints, probed after ``/members/me``.
TOP_LISTS: Final = ("/members", "/courses", "/groups")


def refusal_wait(exchange: Exchange, attempt: int) -> float | None:
    """Seconds to wait before asking again after a refusal for the rate; None: not one."""
    if exchange.status not in (429, 503):
        return None
    retry_after = parse_retry_after(exchange.headers, now=exchange.received_at)
    if retry_after is None:
        if exchange.status == 503:
            return None  # a plain 503 is a failure, reported as it is
        retry_after = 0.5 * 2**attempt
    return min(retry_after, MAX_WAIT)


class Prober:
    """Sends the probes as ``user`` and keeps the refusals it waited out."""

    def __init__(self, core: Core, user: str) -> None:
        self._core = core
        self._user = user
        self.refusals: list[Exchange] = []
        #: 401s to tokens dated on our clock, each resent once on the academy's.
        self.skew_refusals: list[Exchange] = []

    async def send(
        self,
        method: str,
        path: str,
        target: str,
        *,
        body: Mapping[str, Any] | None = None,
        body_format: WireFormat = "json",
        max_body: int | None = None,
    ) -> Exchange:
        """One probe, asked again after a refusal for the rate or of a token's clock."""
        attempt = 0
        resigned = False
        while True:
            exchange = await self._attempt(method, path, target, body, body_format, max_body)
            if not resigned and self._misdated(exchange):
                resigned = True
                self.skew_refusals.append(exchange)
                continue
            wait = refusal_wait(exchange, attempt)
            if wait is None or attempt == MAX_REFUSALS:
                return exchange
            self.refusals.append(exchange)
            attempt += 1
            await asyncio.sleep(wait)

    def _misdated(self, exchange: Exchange) -> bool:
        """Whether a 401's ``Date`` shows our token's clock was over a minute off its own.

        The client's own rule (``ClockSkew.misdated``), which then dates the next token on
        the academy's clock.
        """
        if exchange.status != 401:
            return False
        sample = measure(
            exchange.headers.get("date"), sent=exchange.sent_at, received=exchange.received_at
        )
        return self._core.skew.misdated(sample, signed_with=exchange.signed_with)

    async def _attempt(
        self,
        method: str,
        path: str,
        target: str,
        body: Mapping[str, Any] | None,
        body_format: WireFormat,
        max_body: int | None,
    ) -> Exchange:
        core = self._core
        data, content_type = (None, None) if body is None else encode_body(body, body_format)
        headers = core.transport.call_headers(content_type)
        scheduler = core.scheduler
        # A slot of the client's budget, so that --max-rate paces the doctor too.
        if not scheduler.try_acquire(Priority.INTERACTIVE):
            await scheduler.acquire(Priority.INTERACTIVE)
        try:
            offset = core.skew.offset
            headers["Authorization"] = "Bearer " + core.signer.sign(self._user, offset)
            sent_at = time.time()
            try:
                raw = await core.transport.request(
                    method, core.url_for(target), headers=headers, data=data, max_body=max_body
                )
            except (APIConnectionError, APIResponseValidationError) as exc:
                return Exchange(
                    method=method,
                    path=path,
                    target=target,
                    sent_at=sent_at,
                    received_at=time.time(),
                    signed_with=offset,
                    error=core.redact(str(exc)),
                )
        finally:
            scheduler.release()
        received_at = time.time()
        core.skew.observe(raw.headers.get("date"), sent=sent_at, received=received_at)
        return Exchange(
            method=method,
            path=path,
            target=target,
            status=raw.status,
            headers={name.lower(): value for name, value in raw.headers.items()},
            body=raw.body,
            sent_at=sent_at,
            received_at=received_at,
            signed_with=offset,
        )

    async def list(self, path: str, prefix: str) -> ListProbe:
        """Ask ``prefix`` for LIMIT records; if fewer came, ask for the page after them."""
        first = await self._page(path, prefix, 0)
        count = page_count(first)
        if not count or count >= LIMIT:
            return ListProbe(path=path, limit=LIMIT, first=first)
        return ListProbe(
            path=path, limit=LIMIT, first=first, following=await self._page(path, prefix, count)
        )

    async def _page(self, path: str, prefix: str, offset: int) -> Exchange:
        target = f"{prefix}?offset={offset}&limit={LIMIT}"
        return await self.send("GET", path, target, max_body=page_body_limit(LIMIT))


async def examine(core: Core, user: str, *, write_check: bool) -> Observations:
    """Probe the academy as ``user``: who we are, every list endpoint, a few results."""
    prober = Prober(core, user)
    me = await prober.send("GET", "/members/me", "/members/me")
    if not me.ok:
        return Observations(
            me=me,
            refusals=tuple(prober.refusals),
            skew_refusals=tuple(prober.skew_refusals),
            write_check=write_check,
        )
    me_data = me.json()
    me_id = _int_field(me_data, "id")
    lists = [await prober.list(path, path) for path in TOP_LISTS]
    members, courses, groups = (first_ids(probe.first) for probe in lists)
    # Someone other than the acting admin, whose sub-lists are likelier not to be empty.
    member_id = next((m for m in members if m != me_id), me_id)
    if member_id is not None:
        lists.append(await prober.list("/members/{id}/courses", f"/members/{member_id}/courses"))
        lists.append(await prober.list("/members/{id}/groups", f"/members/{member_id}/groups"))
    results: list[Exchange] = []
    if courses:
        course = courses[0]
        learners = await prober.list("/courses/{id}/members", f"/courses/{course}/members")
        lists.append(learners)
        for learner in first_ids(learners.first)[:RESULTS]:
            target = f"/courses/{course}/members/{learner}/coursemember"
            results.append(
                await prober.send("GET", "/courses/{id}/members/{id}/coursemember", target)
            )
    if groups:
        lists.append(await prober.list("/groups/{id}/members", f"/groups/{groups[0]}/members"))
    writes = await _write_check(prober, me_id, me_data) if write_check else []
    return Observations(
        me=me,
        lists=tuple(lists),
        results=tuple(results),
        writes=tuple(writes),
        refusals=tuple(prober.refusals),
        skew_refusals=tuple(prober.skew_refusals),
        write_check=write_check,
    )


async def _write_check(prober: Prober, me_id: int | None, me_data: Any) -> list[Exchange]:
    """Update the acting member with its own current name: JSON, then a form after a 415."""
    name = me_data.get("name") if isinstance(me_data, dict) else None
    if me_id is None or not isinstance(name, str):
        return []  # nothing harmless to write: reported as not checked
    body = {"name": name}
    target = f"/members/{me_id}"
    writes = [await prober.send("POST", "/members/{id}", target, body=body)]
    if writes[0].status == 415:  # a refusal of the encoding: nothing was applied
        form = await prober.send("POST", "/members/{id}", target, body=body, body_format="form")
        writes.append(form)
    return writes


def _int_field(data: Any, name: str) -> int | None:
    value = data.get(name) if isinstance(data, dict) else None
    return value if type(value) is int else None
