"""Push settings from ``SKYSMART_PUSH_*``: what the CLI and the DAG both read."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.errors import ConfigError
from pipelines.push import PushSettings


def test_unset_variables_keep_the_defaults() -> None:
    settings = PushSettings.from_env({})
    assert settings == PushSettings()
    assert (settings.currencies, settings.batch_size) == (None, 500)


def test_every_variable_is_read() -> None:
    settings = PushSettings.from_env(
        {
            "SKYSMART_PUSH_CURRENCIES": "rm, SGD,EUR",
            "SKYSMART_PUSH_DEFAULTS": "AccountCode=AR-002, CategoryCode=TRADE",
            "SKYSMART_PUSH_BATCH_SIZE": "250",
            "SKYSMART_PUSH_INCLUDE_INACTIVE": "yes",
            "SKYSMART_PUSH_SKYBIZ_COVERED_FROM": "2021-01-01",
            "SKYSMART_PUSH_MAX_STALENESS_DAYS": "7",
        }
    )
    assert settings.currencies == ("RM", "SGD", "EUR")
    assert dict(settings.defaults) == {"AccountCode": "AR-002", "CategoryCode": "TRADE"}
    assert (settings.batch_size, settings.include_inactive) == (250, True)
    assert (settings.skybiz_covered_from, settings.max_staleness_days) == (date(2021, 1, 1), 7)


def test_the_start_of_skybiz_history_has_no_default_and_staleness_defaults_to_two_days() -> None:
    settings = PushSettings.from_env({"SKYSMART_PUSH_SKYBIZ_COVERED_FROM": ""})
    assert (settings.skybiz_covered_from, settings.max_staleness_days) == (None, 2)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"SKYSMART_PUSH_BATCH_SIZE": "501"}, "batch_size"),
        ({"SKYSMART_PUSH_BATCH_SIZE": "many"}, None),
        ({"SKYSMART_PUSH_DEFAULTS": "AccountCode"}, "DEFAULTS"),
        ({"SKYSMART_PUSH_SKYBIZ_COVERED_FROM": "01/01/2021"}, "SKYBIZ_COVERED_FROM"),
        ({"SKYSMART_PUSH_MAX_STALENESS_DAYS": "two"}, "MAX_STALENESS_DAYS"),
        ({"SKYSMART_PUSH_MAX_STALENESS_DAYS": "-1"}, "max_staleness_days"),
    ],
    ids=[
        "over-500",
        "not-a-number",
        "not-field-value",
        "covered-from-not-iso",
        "staleness-not-a-number",
        "staleness-negative",
    ],
)
def test_bad_values_are_configuration_errors(env: dict[str, str], field: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        PushSettings.from_env(env)
    assert caught.value.field == field
