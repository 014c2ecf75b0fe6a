"""``python -m pipelines.cli``: the ``skysmart`` command without the console script (used by the demo)."""

from __future__ import annotations

from pipelines.cli import main

if __name__ == "__main__":  # a spawned worker imports this module again, as __mp_main__
    raise SystemExit(main())
