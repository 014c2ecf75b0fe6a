"""Benchmarks: ``make bench`` or ``python -m bench AREA [AREA ...] [-- ARGS]``; figures, not assertions."""

import os

#: The environment the bench was started in, before ``pipelines`` is imported (it sets Arrow's memory pool
#: for the processes it starts): a command run as a subprocess gets this, as from an operator's shell, so an
#: older checkout (``--before``) runs as it would there.
STARTED_ENV: dict[str, str] = dict(os.environ)
