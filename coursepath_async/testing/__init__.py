"""The sandbox academy: a real, stateful, fault-injecting Coursepath server for tests.

``SandboxAcademy`` serves every endpoint of the Coursepath REST API over loopback HTTP
(or HTTPS), checks tokens exactly as Coursepath documents, keeps members, courses,
programs, groups, enrolments and results in memory, and records what clients did::

    async with SandboxAcademy(members=200, seed=7) as academy:
        client = CoursepathClient(academy.url, api_key=academy.api_key,
                                  user=academy.admin_email, allow_http=True)
        ...
        assert academy.recorder.peak_in_flight <= 8

Faults are deterministic: random ones from ``Faults(seed=..., error_rate=..., ...)``,
scripted ones per route with ``academy.script("GET", "/members/me", 503, 503)`` or
``ScriptedFault`` values (``status``, ``rate_limit``, ``hang``, ``delay``,
``applied_then``, ``reset``, ``slow_body``).  Proxy-style faults (``status``,
``rate_limit``, ``hang``) answer before authentication and apply nothing;
``applied_then``, ``reset`` and ``slow_body`` spoil the answer to a request that was
handled, writes included.

``SandboxAcademy(dialect="form_only")`` (or a :class:`Dialect`, or several preset
names of :data:`DIALECTS`) answers the API's open points as another real academy
might: 400 for an existing email, zone-less or missing dates, form-only bodies,
wrapped lists, other page caps, other write statuses, a clock minutes off, text errors.

``printed_forms(exc)`` yields every form an exception (and its chain) can be printed
in, and ``leaked_credentials(text, api_key=..., tokens=...)`` names what of a key or
token shows in a text, for tests proving that no API key or token leaks.

pytest users get the ``coursepath_sandbox`` and ``coursepath_client`` fixtures with
``pytest_plugins = ["coursepath_async.testing.pytest_plugin"]``.
"""

from ._auth import REJECTION_REASONS
from ._dialect import DIALECTS, Dialect
from ._faults import Faults, ScriptedFault
from ._fixture import FixtureError
from ._printed import leaked_credentials, printed_forms
from ._recorder import Invitation, Recorder, RequestRecord, WebhookDelivery
from ._records import (
    CourseEvent,
    CourseRecord,
    Enrolment,
    GroupRecord,
    MemberRecord,
    ProgramEnrolment,
    ProgramRecord,
)
from ._server import DEFAULT_ADMIN_EMAIL, SandboxAcademy
from ._state import AcademyState, DuplicateEmailError, SandboxStateError, UnknownRecordError

__all__ = [
    "AcademyState",
    "CourseEvent",
    "CourseRecord",
    "DEFAULT_ADMIN_EMAIL",
    "DIALECTS",
    "Dialect",
    "DuplicateEmailError",
    "Enrolment",
    "Faults",
    "FixtureError",
    "GroupRecord",
    "Invitation",
    "MemberRecord",
    "ProgramEnrolment",
    "ProgramRecord",
    "REJECTION_REASONS",
    "Recorder",
    "RequestRecord",
    "SandboxAcademy",
    "SandboxStateError",
    "ScriptedFault",
    "UnknownRecordError",
    "WebhookDelivery",
    "leaked_credentials",
    "printed_forms",
]
