"""Every member field of the table travels through the real client and sandbox intact."""

from __future__ import annotations

from typing import Any

from _support import serving

from coursepath_async._fields import MEMBER_TEXT_FIELDS


async def test_every_field_is_created_read_back_and_filterable() -> None:
    """A member created with every field reads back with them; each filterable one finds it."""
    values: dict[str, Any] = {f.name: f"v-{f.name}-7" for f in MEMBER_TEXT_FIELDS}
    async with serving() as (_academy, client):
        created = await client.members.create("fields@example.com", **values)
        fetched = await client.members.get(created.id)
        assert {name: getattr(fetched, name) for name in values} == values
        for field in MEMBER_TEXT_FIELDS:
            if field.filterable:
                found = await client.members.list(**{field.name: values[field.name]}).collect()
                assert [m.id for m in found] == [created.id], field.name
