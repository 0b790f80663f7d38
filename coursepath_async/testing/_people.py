"""Realistic member CSV files for demos, benchmarks and tests, with planted bad rows.

Deterministic from a seed, built from the sandbox's own word lists. The bad rows are
the kinds real HR exports contain (a malformed or missing email, a duplicate, a bad
course id, bytes that are not UTF-8, a stray comma) and their line numbers are returned
so a caller can check that each one was reported.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

from ._seed import _COMPANIES, _COUNTRIES, _DEPARTMENTS, _FIRST_NAMES, _GROUP_NAMES, _LAST_NAMES

_COLUMNS = ("email", "name", "company", "department", "country", "externalId", "groups", "courses")
_BAD_ROWS: tuple[tuple[str, bytes], ...] = (
    ("malformed email", b"not-an-email,No Email,Acme,Sales,BE,,,\r\n"),
    ("empty email", b",Nobody,Acme,Sales,BE,,,\r\n"),
    ("bad course id", b"bad.course@example.test,Bad Course,Acme,Sales,BE,,,../1\r\n"),
    ("not UTF-8", b"latin1.row@example.test,Ren\xe9e Caf\xe9,Acme,Sales,BE,,,\r\n"),
    ("stray comma", b"stray.comma@example.test,Smith, John,Acme,Sales,BE,HR-X,Interns,1\r\n"),
)


@frozen(kw_only=True)
class PeopleFile:
    """A generated CSV: where it is, how many data rows, and which lines are bad (and why)."""

    path: Path
    rows: int
    bad_lines: dict[int, str]


def write_people_csv(
    path: str | Path,
    *,
    rows: int,
    seed: int = 0,
    existing_emails: Sequence[str] = (),
    bad_rows: bool = True,
    groups: int = 3,
    course_ids: Sequence[int] = (),
    domain: str = "people.test",
) -> PeopleFile:
    """Write ``rows`` data rows (Windows line endings and a BOM, as Excel saves them).

    ``existing_emails`` are mixed in as rows for members the academy already has (so an
    import updates some people); with ``bad_rows`` one of each planted bad kind plus a
    duplicate of an earlier row are spread through the file, counted in ``rows``.
    """
    rng = random.Random(seed)
    path = Path(path)
    planted = list(_BAD_ROWS) if bad_rows else []
    if bad_rows and rows > len(planted) + 1:
        planted.append(("duplicate", b""))  # filled in with an earlier row below
    good = max(rows - len(planted), 0)
    slots = sorted(rng.sample(range(2, good + 2), min(len(planted), good))) if good else []
    bad_at = dict(zip(slots, planted, strict=False))
    existing = list(existing_emails)
    bad_lines: dict[int, str] = {}
    written_rows: list[bytes] = []
    line = 1
    with path.open("wb") as out:
        out.write(b"\xef\xbb\xbf" + _csv_line(_COLUMNS))
        for index in range(good):
            line += 1
            if line in bad_at:
                reason, raw = bad_at.pop(line)
                if reason == "duplicate":
                    raw = rng.choice(written_rows)
                out.write(raw)
                bad_lines[line] = reason
                line += 1
            external_id = f"HR-{seed}-{index:06d}"
            if existing and rng.random() < 0.1:
                # Someone the academy already has: no HR id yet, so the email matches.
                email, name, external_id = existing.pop(), "", ""
            else:
                first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
                name = f"{first} {last}"
                email = f"{first}.{last}.{index}@{domain}".lower()
            company, _ = rng.choice(_COMPANIES)
            group = ";".join(rng.sample(_GROUP_NAMES[: max(groups, 1)], k=rng.randint(0, 2)))
            courses = ";".join(
                str(c) for c in rng.sample(list(course_ids), k=min(1, len(course_ids)))
            )
            record = _csv_line(
                (
                    email,
                    name,
                    company,
                    rng.choice(_DEPARTMENTS),
                    rng.choice(_COUNTRIES),
                    external_id,
                    group,
                    courses,
                )
            )
            written_rows.append(record)
            out.write(record)
    return PeopleFile(path=path, rows=line - 1, bad_lines=bad_lines)


def _csv_line(cells: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()
