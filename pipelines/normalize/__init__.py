"""Normalization: raw source windows into the common customer model, plus a quarantine.

``normalize_window(lake, source, window)`` is the step; ``normalize_frame`` / ``normalize_table`` are the
pure cores. Each vendor's quirks live in its source package (``pipelines/sources/<vendor>/normalize.py``,
named by its ``SourceSpec.normalizer``); here are ``common`` (field mappings), ``clean`` (the shared
vectorized cleaners) and ``model`` (quarantine rules, de-duplication, extras, issues, record hash).
"""

from __future__ import annotations

from pipelines.normalize.core import (
    NormalizeResult,
    normalize_frame,
    normalize_table,
    normalize_window,
    to_frame,
)

__all__ = ["NormalizeResult", "normalize_frame", "normalize_table", "normalize_window", "to_frame"]
