"""An item of a vendor's record list that is not a JSON object is one hostile record, not a broken answer.

Both clients keep it (under ``_record``, as its JSON text, which extraction stores in ``_unknown_fields``),
the window is extracted whole, and normalization quarantines that row as ``id_missing``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np

from pipelines.config import Settings
from pipelines.extract import extract_window
from pipelines.lake import CUSTOMERS, QUARANTINE, RAW, Lake
from pipelines.normalize import normalize_window
from pipelines.sources import NOT_A_RECORD, record_row
from pipelines.steps import make_client
from pipelines.windows import Window

HOSTILE = ["garbage", None, 42, [1, {"a": 2}], True]


def test_record_row_keeps_any_item_as_its_json() -> None:
    assert record_row({"A": "1"}) == {"A": "1"}
    assert [record_row(item)[NOT_A_RECORD] for item in HOSTILE] == [
        '"garbage"',
        "null",
        "42",
        '[1,{"a":2}]',
        "true",
    ]


def _extract_and_normalize(server: Any, window: Window, tmp: Any) -> tuple[Any, Any, Any]:
    lake = Lake(str(tmp))
    client = make_client(Settings.from_env(server.endpoints.as_env()), window.source)
    extracted = extract_window(client, window, lake)
    normalized = normalize_window(lake, window.source, window)
    raw = lake.read(RAW, window.source, CUSTOMERS, window)
    quarantine = lake.read(QUARANTINE, window.source, CUSTOMERS, window).to_pylist()
    return extracted, normalized, (raw, quarantine)


def test_skybiz_window_keeps_items_that_are_not_records(sandbox_factory: Any, tmp_path: Any) -> None:
    server = sandbox_factory()
    window = Window("skybiz", date(2024, 3, 1), date(2024, 3, 31))
    state = server.skybiz
    honest = state.read_window

    def hostile_read(*args: Any, **kwargs: Any) -> list[Any]:
        return [*honest(*args, **kwargs), *HOSTILE]

    clean_rows = len(honest(window.start, window.end))
    state.read_window = hostile_read
    extracted, normalized, (raw, quarantine) = _extract_and_normalize(server, window, tmp_path)

    assert extracted.rows == clean_rows + len(HOSTILE)
    kept = [json.loads(u)[NOT_A_RECORD] for u in raw.column("_unknown_fields").to_pylist() if u]
    assert sorted(kept) == sorted(json.dumps(h, separators=(",", ":")) for h in HOSTILE)
    assert normalized.rows_in == normalized.normalized + normalized.quarantined
    id_missing = [q for q in quarantine if q["rule"] == "id_missing"]
    assert len(id_missing) >= len(HOSTILE)
    assert all(NOT_A_RECORD in q["raw_record"] for q in id_missing[-len(HOSTILE) :])


def test_smartacc_window_keeps_an_item_that_is_not_a_record_in_its_place(
    sandbox_factory: Any, tmp_path: Any
) -> None:
    server = sandbox_factory()
    window = Window("smartacc", date(2024, 3, 1), date(2024, 3, 31))
    clean, _, (clean_raw, _) = _extract_and_normalize(server, window, tmp_path / "clean")
    state = server.smartacc
    honest = state._render_slots
    replaced: list[str] = []

    def hostile_render(slots: np.ndarray, **kwargs: Any) -> list[str]:
        rendered: list[str] = honest(slots, **kwargs)
        ids = [state._id_of(int(slot)) for slot in slots]
        for i, ident in enumerate(ids):
            if ident in clean_raw.column("AcCustomerID").to_pylist()[3:4]:
                rendered[i] = '"not a record"'
                replaced.append(ident)
        return rendered

    state._render_slots = hostile_render
    extracted, normalized, (raw, quarantine) = _extract_and_normalize(server, window, tmp_path / "bad")

    assert replaced, "the chosen customer was never served"
    assert extracted.rows == clean.rows  # the item holds its customer's place in the window
    assert replaced[0] not in raw.column("AcCustomerID").to_pylist()
    assert any(NOT_A_RECORD in (u or "") for u in raw.column("_unknown_fields").to_pylist())
    assert [q["rule"] for q in quarantine if NOT_A_RECORD in q["raw_record"]] == ["id_missing"]
    assert normalized.rows_in == normalized.normalized + normalized.quarantined
