"""The implementation of :mod:`coursepath_async.webhooks`, one small module per job.

``_events`` parses a delivery, ``_verify`` confirms it through the API, ``_dedupe``
remembers recent events, ``_stats`` counts outcomes, ``_receiver`` is the aiohttp
endpoint with its bounded queue and workers, ``_command`` the ``webhooks serve`` CLI.
"""

from ._command import add_webhooks_command

__all__ = ["add_webhooks_command"]
