"""Benchmarks: ``make bench`` (all) or ``python -m bench AREA [AREA ...] [-- ARGS]``; figures, never assertions."""
