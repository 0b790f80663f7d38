"""coursepath_async: an asyncio SDK for the Coursepath e-learning REST API.

A :class:`CoursepathClient` signs a fresh single-use JWT for every attempt, runs
calls through one bounded, prioritised scheduler, retries per a :class:`RetryPolicy`,
streams listings through :class:`Paginator` and returns attrs models; :class:`Hooks`
see every attempt, call and bulk job as a frozen record.
"""

from ._client import ClientView, CoursepathAPI, CoursepathClient
from ._config import Priority
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    ConfigurationError,
    ConflictError,
    CoursepathError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UncertainOutcomeError,
    UnprocessableEntityError,
)
from ._hooks import Hooks, Instrumentation
from ._models import Course, CourseMember, Group, Member, ProgramMember
from ._pagination import Paginator
from ._records import AttemptRecord, CallRecord, CallStart, JobRecord
from ._retry import RetryPolicy
from ._scheduler import SchedulerStats

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AttemptRecord",
    "AuthenticationError",
    "BadRequestError",
    "CallRecord",
    "CallStart",
    "ClientStateError",
    "ClientView",
    "ConfigurationError",
    "ConflictError",
    "Course",
    "CourseMember",
    "CoursepathAPI",
    "CoursepathClient",
    "CoursepathError",
    "Group",
    "Hooks",
    "Instrumentation",
    "InvalidInputError",
    "JobRecord",
    "Member",
    "NotFoundError",
    "Paginator",
    "PermissionDeniedError",
    "Priority",
    "ProgramMember",
    "RateLimitError",
    "RetryPolicy",
    "SchedulerStats",
    "ServerError",
    "UncertainOutcomeError",
    "UnprocessableEntityError",
    "__version__",
]
