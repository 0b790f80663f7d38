"""Match request paths to route templates like ``/api/v1/members/{memberId}``.

Placeholders match positive integers only, so ``/members/abc``, ``/members/0`` and
``/members/-1`` are unknown routes (404), exactly like a missing record.  A path that
matches a template but not the method is reported separately so it can answer 405.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

from attrs import frozen

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@frozen
class Match(Generic[T]):
    """A path that matched ``template``; ``route`` is ``None`` when the method did not."""

    template: str
    route: T | None
    ids: Mapping[str, int]
    allowed: tuple[str, ...]


class Router(Generic[T]):
    """A small router over ``(method, template, route)`` triples."""

    def __init__(self, routes: Iterable[tuple[str, str, T]]) -> None:
        self._static: dict[str, dict[str, T]] = {}
        self._dynamic: dict[str, tuple[re.Pattern[str], dict[str, T]]] = {}
        for method, template, route in routes:
            if "{" not in template:
                self._static.setdefault(template, {})[method] = route
                continue
            if template not in self._dynamic:
                # Eighteen digits keep ids within int64 and away from int() limits.
                pattern = _PLACEHOLDER.sub(r"(?P<\1>[0-9]{1,18})", template)
                self._dynamic[template] = (re.compile(pattern), {})
            self._dynamic[template][1][method] = route

    def __repr__(self) -> str:
        return f"<Router templates={len(self._static) + len(self._dynamic)}>"

    def templates(self) -> list[str]:
        """Every template known to the router."""
        return [*self._static, *self._dynamic]

    def match(self, method: str, path: str) -> Match[T] | None:
        """Return the match for a request, or ``None`` for an unknown path (404)."""
        methods = self._static.get(path)
        if methods is not None:
            return Match(path, methods.get(method), {}, tuple(methods))
        for template, (pattern, by_method) in self._dynamic.items():
            found = pattern.fullmatch(path)
            if found is None:
                continue
            ids = {name: int(value) for name, value in found.groupdict().items()}
            if any(value <= 0 for value in ids.values()):
                return None
            return Match(template, by_method.get(method), ids, tuple(by_method))
        return None
