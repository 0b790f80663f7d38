"""Run ``coursepath-async ARGS...`` and SIGKILL it inside a journal commit (crash tests).

Usage: python tests/kill_in_commit.py CLAIMS RECORD ARGS... — once the run has started
CLAIMS invitation claims, the next group commit executes its batch and the process kills
itself before the COMMIT, after writing the member ids of every claim it started to
RECORD (fsynced). The claims of that batch are then in no durable state at all.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import orjson

from coursepath_async._cli import main as cli
from coursepath_async.bulk._ledger import InvitationLedger
from coursepath_async.bulk._writer import JournalWriter


def main() -> int:
    """Patch the ledger and the writer, then run the CLI."""
    after, record = int(sys.argv[1]), sys.argv[2]
    claimed: list[int] = []
    claim = InvitationLedger.claim_durably
    commit = JournalWriter._commit

    async def counted_claim(self: InvitationLedger, member_id: int, **options: Any) -> None:
        claimed.append(member_id)
        await claim(self, member_id, **options)

    def commit_or_die(self: JournalWriter) -> None:
        self._drain()
        if len(claimed) >= after and self._conn.in_transaction:
            with open(record, "wb") as out:
                out.write(orjson.dumps(claimed))
                out.flush()
                os.fsync(out.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        commit(self)

    InvitationLedger.claim_durably = counted_claim  # type: ignore[method-assign]
    JournalWriter._commit = commit_or_die  # type: ignore[method-assign]
    return cli(sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
