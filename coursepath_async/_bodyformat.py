"""Which encoding a client's request bodies travel in, and the switch a 415 answer makes.

Under ``"auto"`` a client sends JSON until a server answers a JSON body with 415
(Unsupported Media Type: refused before any work), then sends form encoding from that
call on, for itself and all its views. A 415 to a form body is final: the server took
neither format.
"""

from __future__ import annotations

import logging

from ._config import BodyFormat, WireFormat

logger = logging.getLogger("coursepath_async")


class BodyFormats:
    """The wire format of one client's bodies; under ``"auto"``, JSON until a 415 says form."""

    __slots__ = ("_auto", "current")

    def __init__(self, setting: BodyFormat) -> None:
        self._auto = setting == "auto"
        #: The format new request bodies are encoded in.
        self.current: WireFormat = "form" if setting == "form" else "json"

    def __repr__(self) -> str:
        mode = "auto" if self._auto else "fixed"
        return f"<BodyFormats {self.current} ({mode})>"

    def refused(self, sent: WireFormat) -> bool:
        """A 415 answered a body sent as ``sent``: whether to resend it at once, as form.

        Only under ``"auto"`` and only for a JSON body, so a call is resent once at
        most; the first such answer switches the client (logged once).
        """
        if not self._auto or sent != "json":
            return False
        if self.current == "json":
            self.current = "form"
            logger.warning(
                "the academy answered a JSON body with 415 Unsupported Media Type: "
                "sending form-encoded bodies from now on (body_format='form' skips this)"
            )
        return True
