"""The exported names are a contract: pin them."""

from __future__ import annotations

import importlib

import pytest

import coursepath_async

EXPECTED = {
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
    "JobRecord",
    "InvalidInputError",
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
}


def test_all_is_pinned() -> None:
    """``__all__`` is exactly the agreed public names, without duplicates."""
    assert len(coursepath_async.__all__) == len(set(coursepath_async.__all__))
    assert set(coursepath_async.__all__) == EXPECTED


def test_all_is_sorted() -> None:
    """``__all__`` is sorted, so additions show up clearly in review."""
    assert coursepath_async.__all__ == sorted(coursepath_async.__all__)


def test_every_name_is_importable() -> None:
    """Every exported name resolves on a fresh import of the package."""
    module = importlib.import_module("coursepath_async")
    for name in coursepath_async.__all__:
        assert getattr(module, name) is not None, name


def test_star_import_gives_exactly_all() -> None:
    """``from coursepath_async import *`` binds exactly the ``__all__`` names."""
    namespace: dict[str, object] = {}
    exec("from coursepath_async import *", namespace)
    assert set(namespace) - {"__builtins__"} == EXPECTED


def test_public_objects_live_in_private_modules() -> None:
    """Classes are defined in private ``_module`` files behind the package."""
    for name in coursepath_async.__all__:
        obj = getattr(coursepath_async, name)
        module = getattr(obj, "__module__", None)
        if isinstance(obj, type):
            assert module is not None
            assert module.startswith("coursepath_async._"), (name, module)


def test_version() -> None:
    """The package version is a string matching the distribution metadata."""
    from importlib.metadata import version

    assert coursepath_async.__version__ == version("coursepath-async")


@pytest.mark.parametrize(
    "name",
    [
        "coursepath_async.bulk",
        "coursepath_async.bulk.steps",
        "coursepath_async.testing",
        "coursepath_async.webhooks",
    ],
)
def test_subpackages_export_a_sorted_importable_all(name: str) -> None:
    """The public subpackages keep the same contract: a sorted ``__all__`` that resolves."""
    module = importlib.import_module(name)
    exported: list[str] = module.__all__
    assert exported == sorted(set(exported))
    for attribute in exported:
        assert getattr(module, attribute) is not None, attribute
