"""Journals as older versions wrote them, for migration tests: a new file rewritten by SQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def rewrite(path: Path, script: str) -> None:
    """Run ``script`` on the closed journal file at ``path``, committed."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()
