"""The implementation of :mod:`coursepath_async.webhooks`, one small module per job.

``_events`` parses a delivery, ``_verify`` confirms it through the API, ``_dedupe``
remembers recent events, ``_stats`` counts outcomes, ``_pool`` is the bounded queue and
its workers, ``_receiver`` the aiohttp endpoint, ``_command`` the ``webhooks serve`` CLI
(imported by the CLI only, so the library never loads argparse machinery).
"""
