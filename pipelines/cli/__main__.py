"""``python -m pipelines.cli``: the ``skysmart`` command without the console script (used by the demo)."""

from __future__ import annotations

from pipelines.cli import main

raise SystemExit(main())
