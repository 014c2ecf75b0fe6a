"""ServiceStack JSON dates (shared/api/SMARTACC.md §6): the scalar parser and its vectorized twin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.sources.smartacc.dates import MIN_VALUE_MS, parse_servicestack_date, parse_servicestack_dates

# 2024-05-01 10:30 Malaysia wall time, written by a server on UTC+08:00 (SMARTACC.md §6 example).
MAY_1_1030_UTC = datetime(2024, 5, 1, 2, 30, tzinfo=UTC)
MAY_1_0000_UTC = datetime(2024, 4, 30, 16, 0, tzinfo=UTC)
LAST_MS_1969 = datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

CASES = [
    pytest.param("/Date(1714492800000-0000)/", MAY_1_0000_UTC, id="unspecified-midnight"),
    pytest.param("/Date(1714530600000-0000)/", MAY_1_1030_UTC, id="unspecified-kind"),
    pytest.param("\\/Date(1714530600000-0000)\\/", MAY_1_1030_UTC, id="escaped-slashes"),
    pytest.param("/Date(1714530600000)/", MAY_1_1030_UTC, id="utc-kind"),
    pytest.param("/Date(1714530600000+0800)/", MAY_1_1030_UTC, id="local-kind-offset"),
    pytest.param("/Date(1714530600123-0000)/", MAY_1_1030_UTC + timedelta(milliseconds=123), id="millis"),
    pytest.param("/Date(-86400000)/", datetime(1969, 12, 31, tzinfo=UTC), id="negative-ms"),
    pytest.param("/Date(-1-0000)/", LAST_MS_1969, id="negative-1ms"),
    pytest.param("  /Date(0)/ ", datetime(1970, 1, 1, tzinfo=UTC), id="epoch-padded"),
    pytest.param(f"/Date({MIN_VALUE_MS}-0000)/", None, id="minvalue-sentinel"),
    pytest.param(f"\\/Date({MIN_VALUE_MS}-0000)\\/", None, id="minvalue-escaped"),
    pytest.param(None, None, id="null"),
    pytest.param("", None, id="empty"),
]

INVALID = [
    pytest.param("2024-05-01", id="iso"),
    pytest.param("/Date(abc)/", id="not-digits"),
    pytest.param("/Date(123+08)/", id="short-offset"),
    pytest.param("Date(123)", id="no-slashes"),
    pytest.param("0001-01-01", id="jsv-minvalue"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_scalar_parse(text: str | None, expected: datetime | None) -> None:
    got = parse_servicestack_date(text)
    assert got == expected
    if got is not None:
        offset = got.utcoffset()
        assert offset is not None and offset.total_seconds() == 0


@pytest.mark.parametrize("text", INVALID)
def test_scalar_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="ServiceStack"):
        parse_servicestack_date(text)


def test_wall_time_round_trip_malaysia() -> None:
    # Decode rule of §6: ms -> UTC instant -> +8 h recovers the wall time the server stored.
    got = parse_servicestack_date("/Date(1714530600000-0000)/")
    assert got is not None
    assert got.replace(tzinfo=None) + timedelta(hours=8) == datetime(2024, 5, 1, 10, 30)


def test_vectorized_agrees_with_scalar_on_the_table() -> None:
    texts = [cast("str | None", case.values[0]) for case in CASES]
    got = parse_servicestack_dates(pa.array(texts, pa.string()))
    assert got.type == pa.timestamp("ms", tz="UTC")
    assert got.to_pylist() == [parse_servicestack_date(t) for t in texts]


def test_vectorized_invalid_becomes_null_unless_strict() -> None:
    texts = ["/Date(0)/", "2024-05-01", None]
    assert parse_servicestack_dates(texts).to_pylist() == [datetime(1970, 1, 1, tzinfo=UTC), None, None]
    with pytest.raises(ValueError, match="2024-05-01"):
        parse_servicestack_dates(texts, strict=True)


def test_vectorized_accepts_pandas_chunked_and_large_strings() -> None:
    rng = np.random.default_rng(7)
    ms = rng.integers(-5_000_000_000_000, 5_000_000_000_000, size=20_000)
    suffix = rng.choice(["-0000", "", "+0800", "-0500"], size=ms.size)
    texts = [f"/Date({m}{s})/" for m, s in zip(ms.tolist(), suffix.tolist(), strict=True)]
    texts[5] = f"/Date({MIN_VALUE_MS}-0000)/"
    texts[6] = None  # type: ignore[call-overload]
    expected = [parse_servicestack_date(t) for t in texts]

    series = pd.Series(texts, dtype="str")
    chunked = pa.chunked_array([pa.array(texts[:7_000]), pa.array(texts[7_000:])])
    large = pa.array(texts, pa.large_string())
    for values in (series, chunked, large):
        assert parse_servicestack_dates(values).to_pylist() == expected


def test_vectorized_handles_all_null_input() -> None:
    assert parse_servicestack_dates(pa.nulls(3)).to_pylist() == [None, None, None]
