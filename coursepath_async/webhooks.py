"""Receive Coursepath webhooks and turn them into verified results.

Coursepath POSTs a form (``courseId``, ``memberId``, ``event``) when an enrolment is
created, completed or deleted — **once, unsigned, never retried**. So this module
trusts nothing in the payload: :func:`parse_webhook` refuses anything malformed with a
4xx before any work, and every accepted event is confirmed by re-fetching the
learner's result through the API (:func:`verify_event`) before the caller's callback
sees it as a :class:`VerifiedEvent`. A :class:`WebhookReceiver` (or :func:`webhook_app`)
answers at once and verifies in the background with a fixed number of workers behind a
bounded queue, processes repeated deliveries once, and can hide behind a secret path
segment::

    async def on_event(verified: VerifiedEvent) -> None:
        if verified.kind is EventKind.COURSEMEMBER_COMPLETED:
            print(verified.member_id, verified.result.score)

    app = webhook_app(client, on_event, secret=os.environ["WEBHOOK_SECRET"])
    receiver = app[RECEIVER_KEY]
    runner = receiver.runner(app)  # no access log (it would print the secret path)
    await runner.setup()
    await receiver.site(runner, host="0.0.0.0", port=8443, ssl_context=tls).start()

The receiver's runner and site close connections that never finish their request head
(``header_timeout``), cap open connections (``max_connections``) and never inflate a
compressed body (refused 415 unread).

Webhooks make results arrive in seconds; they cannot make them complete. A delivery
lost to downtime, a full queue (answered 503 and logged) or the network is gone for
good, so keep running the nightly sync (:mod:`coursepath_async.bulk`), which reads
every result from the API and catches whatever never arrived here.
"""

from ._webhooks._events import (
    MAX_BODY,
    EventKind,
    InvalidWebhookError,
    RejectReason,
    WebhookEvent,
    parse_webhook,
)
from ._webhooks._pool import OnEvent
from ._webhooks._receiver import RECEIVER_KEY, ReceiverOptions, WebhookReceiver, webhook_app
from ._webhooks._stats import WebhookStats
from ._webhooks._verify import Unconfirmed, UnconfirmedReason, VerifiedEvent, verify_event

__all__ = [
    "EventKind",
    "InvalidWebhookError",
    "MAX_BODY",
    "OnEvent",
    "RECEIVER_KEY",
    "ReceiverOptions",
    "RejectReason",
    "Unconfirmed",
    "UnconfirmedReason",
    "VerifiedEvent",
    "WebhookEvent",
    "WebhookReceiver",
    "WebhookStats",
    "parse_webhook",
    "verify_event",
    "webhook_app",
]
