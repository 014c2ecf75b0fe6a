"""Identity resolution: which SkyBiz and SmartAcc records are the same business (see ``docs/identity.md``).

:mod:`.keys` turns fields into comparable keys, :mod:`.match` blocks, scores and classes pairs (pure), and
:mod:`.store` rebuilds the warehouse's ``customer_matches`` from every SkyBiz record extracted, normalized
or quarantined. The push reads ``customer_matches`` and nothing else to decide what SkyBiz already has.
"""

from __future__ import annotations

from pipelines.identity.match import CLASSES, DIFFERENT, POSSIBLE, SAME, match
from pipelines.identity.store import (
    MatchSummary,
    compute_matches,
    ensure_current,
    is_current,
    links,
    rebuild_matches,
)

__all__ = [
    "CLASSES",
    "DIFFERENT",
    "POSSIBLE",
    "SAME",
    "MatchSummary",
    "compute_matches",
    "ensure_current",
    "is_current",
    "links",
    "match",
    "rebuild_matches",
]
