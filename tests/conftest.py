"""Shared fixtures live in ``tests/fixtures/``, one module per real component the tests talk to."""

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.postgres",
    "tests.fixtures.airflow",
    "tests.fixtures.s3",
]
