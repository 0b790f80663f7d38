"""``coursepath-async doctor``: a read-only check of an academy, for first contact and support.

``_observed`` holds what was sent and what came back, ``_probe`` sends the probes
(the only module doing I/O), ``_lists`` and ``_findings`` judge the answers without
I/O, ``_report`` turns the findings into a verdict and JSON, ``_render`` into text, and
``_command`` is the CLI (imported by the CLI only).
"""
