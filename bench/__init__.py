"""Benchmarks: ``make bench`` or ``python -m bench AREA [AREA ...] [-- ARGS]``; figures, not assertions."""
