"""What every resource shares: sending through the core, paging, body and id helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, TypeVar

from .._core import CallContext, Core, decode_model
from .._cursor import Page, PageRequest, check_page_length, page_body_limit
from .._exceptions import InvalidInputError, NotFoundError
from .._fields import api_names, filter_names
from .._models import Course, Group, Member
from .._pagination import Paginator
from .._sansio import ApiRequest, RequestKind, decode_json, list_total, unwrap_list
from .._validation import validate_count, validate_email, validate_id

T = TypeVar("T", Member, Course, Group)
M = TypeVar("M")

# Silent per-endpoint page caps (coursepath-api.md, Part B).
MEMBER_PAGE_CAP = 500
COURSE_PAGE_CAP = 250
GROUP_PAGE_CAP = 100

# Member fields accepted by create/update, snake_case → the API's camelCase.
MEMBER_FIELDS = api_names()
# Member-list filters (coursepath-api.md): the member fields plus email, minus name.
MEMBER_FILTERS = filter_names()


class _FilterableFields(TypedDict, total=False):
    """The member fields both create/update and listings take (``_fields.py``, filterable)."""

    company: str
    department: str
    country: str
    external_id: str
    association: str
    identification: str
    registration: str


class MemberFilters(_FilterableFields, total=False):
    """Filters accepted by member listings (exact match; email case-insensitive)."""

    email: str


class MemberFields(_FilterableFields, total=False):
    """Optional member fields for create/update; ``extra`` passes other API fields as-is."""

    name: str
    extra: Mapping[str, Any]


class Resource:
    """Base of the resource namespaces; holds the shared core and this view's context."""

    __slots__ = ("_core", "_ctx")

    def __init__(self, core: Core, ctx: CallContext) -> None:
        self._core = core
        self._ctx = ctx

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        kind: RequestKind = RequestKind.READ,
        missing_ok_after_retry: bool = False,
    ) -> None:
        """Send a call whose answer carries nothing we need.

        With ``missing_ok_after_retry``, a 404 on a retry after an attempt that may have
        been applied means that attempt did the removal: success, not an error.
        """
        request = ApiRequest(
            method=method, path=path, body=body, params=tuple((params or {}).items()), kind=kind
        )
        try:
            await self._core.send(request, self._ctx)
        except NotFoundError as exc:
            if not (missing_ok_after_retry and exc.after_unknown_outcome):
                raise

    async def _one(
        self,
        method: str,
        path: str,
        cls: type[M],
        *,
        body: Mapping[str, Any] | None = None,
        kind: RequestKind = RequestKind.READ,
    ) -> M:
        request = ApiRequest(method=method, path=path, body=body, kind=kind)
        url, response = await self._core.send(request, self._ctx)
        redact = self._core.redact
        data = decode_json(request, url, response, redact=redact)
        return decode_model(request, url, data, response.body, cls, redact=redact)

    async def _first_page(
        self, path: str, cls: type[T], *, cap: int, params: Mapping[str, str]
    ) -> list[T]:
        """One page of a filtered listing, for filters that select a handful of records."""
        return await self._list(
            path, cls, cap=cap, page_size=None, window=1, params=params
        ).first_page()

    def _list(
        self,
        path: str,
        cls: type[T],
        *,
        cap: int,
        page_size: int | None,
        window: int | None,
        params: Mapping[str, str] | None = None,
    ) -> Paginator[T]:
        size = cap if page_size is None else validate_id(page_size, field="page_size")
        win = self._core.page_window if window is None else window  # checked by Paginator
        fixed: tuple[tuple[str, str], ...] = tuple((params or {}).items())
        redact = self._core.redact

        async def fetch(offset: int, limit: int) -> Page[T]:
            request = ApiRequest(
                method="GET",
                path=path,
                params=(*fixed, ("offset", str(offset)), ("limit", str(limit))),
                max_body=page_body_limit(limit),
            )
            url, response = await self._core.send(request, self._ctx)
            body = response.body
            data = decode_json(request, url, response, redact=redact)
            records = unwrap_list(request, url, data, body, redact=redact)
            # Counted before decoding: a page of far more records than asked for would
            # cost far more to turn into models than the page it claims to be.
            check_page_length(len(records), PageRequest(offset, limit), url=url)
            models = [decode_model(request, url, r, body, cls, redact=redact) for r in records]
            return Page(models, list_total(data))

        url = self._core.url_for(path)
        return Paginator(
            fetch,
            page_size=size,
            cap=cap,
            window=win,
            key=_record_id,
            url=url,
            max_records=self._core.config.max_listing_records,
        )


def _record_id(record: Member | Course | Group) -> int:
    return record.id


def _camel_strings(
    values: Mapping[str, Any], names: Mapping[str, str], what: str
) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in values.items():
        if name not in names:
            raise InvalidInputError(
                f"unknown {what} {name!r}; expected one of {', '.join(sorted(names))}",
                argument=name,
            )
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInputError(
                f"{what} {name} must be a string, got {type(value).__name__}", argument=name
            )
        out[names[name]] = value
    return out


def new_member_body(email: object, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body for a member create: the email is required and checked."""
    email = validate_email(email)  # first: a bad email is reported before a bad field
    body = member_body(None, fields)
    body["email"] = email
    return body


def member_body(email: str | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body for a member create/update; ``None`` values are left out."""
    fields = dict(fields)
    extra = fields.pop("extra", None) or {}
    if not isinstance(extra, Mapping):
        raise InvalidInputError(
            f"extra must be a mapping, got {type(extra).__name__}", argument="extra"
        )
    body: dict[str, Any] = {**extra, **_camel_strings(fields, MEMBER_FIELDS, "member field")}
    if email is not None:
        body["email"] = validate_email(email)
    return body


def member_filters(filters: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters for a member-list filter; ``None`` filters are dropped."""
    return _camel_strings(filters, MEMBER_FILTERS, "member filter")


def invite_body(subject: str | None, body: str | None, action: str | None) -> dict[str, Any] | None:
    """The optional ``mail`` overrides of an invitation, each a string when given."""
    given = (("subject", subject), ("body", body), ("action", action))
    mail: dict[str, str] = {}
    for name, value in given:
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInputError(
                f"invitation {name} must be a string, got {type(value).__name__}", argument=name
            )
        mail[name] = value
    return {"mail": mail} if mail else None


def ident(value: object, field: str) -> int:
    """Validate an id argument (a positive integer) and return it."""
    return validate_count(value, field=field)
