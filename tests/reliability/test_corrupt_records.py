"""Hostile records on the wire: each loads with a data issue or is quarantined; nothing else moves.

Two sandboxes serve the same customers; one corrupts a seeded share of the records it sends (every kind
of :data:`skysmart_sandbox.switches.CORRUPTIONS`, truth in ``Switches.corrupted``). ``skysmart run`` over
the same months against each must end without an error, and window by window:

* every record not hit is normalized (or quarantined) exactly as in the clean run;
* every hit record is in the same window, either normalized with a ``data_issues`` code the clean run's
  row lacks, or quarantined with a rule.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.extract import LINEAGE
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake
from pipelines.sources.skybiz import normalize as skybiz_norm
from pipelines.sources.smartacc import normalize as smartacc_norm
from pipelines.windows import plan_windows
from skysmart_sandbox.faults import SKYBIZ_SHAPE, SMARTACC_SHAPE
from skysmart_sandbox.server import SandboxServer
from skysmart_sandbox.switches import CORRUPTIONS, Switches
from tests.fixtures.sandbox import sandbox_data

START, END = "2024-01-01", "2024-06-30"
RATE = 0.10
SOURCES = ("skybiz", "smartacc")
ID_FIELD = {"skybiz": skybiz_norm.ID_FIELD, "smartacc": smartacc_norm.ID_FIELD}
SHAPE = {"skybiz": SKYBIZ_SHAPE, "smartacc": SMARTACC_SHAPE}
# Columns that differ between two runs by design: when a row was received and loaded.
RUN_COLUMNS = frozenset({"extracted_at"})


@dataclass
class RunResult:
    lake: Lake
    code: int
    truth: dict[str, dict[str, tuple[str, str]]]
    commands: dict[str, tuple[int, str]]


def _command(argv: list[str]) -> tuple[int, str]:
    """Run one ``skysmart`` command in-process: its exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


def _every_command(tmp: Path, run_lake: str, run_warehouse: str) -> dict[str, tuple[int, str]]:
    """Each step alone over two months (its own lake and warehouse), then what reads the run's warehouse."""
    lake, warehouse = str(tmp / "steps-lake"), str(tmp / "steps.duckdb")
    span = ["--from", "2024-02-01", "--to", "2024-03-31"]
    commands = {
        "extract skybiz": ["extract", "skybiz", *span, "--lake", lake],
        "extract smartacc": ["extract", "smartacc", *span, "--lake", lake],
        "normalize": ["normalize", *span, "--lake", lake],
        "validate": ["validate", *span, "--lake", lake],
        "load": ["load", *span, "--lake", lake, "--warehouse", warehouse],
        "status": ["status", "--warehouse", run_warehouse],
        "sql": ["sql", "--warehouse", run_warehouse, "SELECT name, data_issues FROM customers ORDER BY 1"],
        "push --dry-run": ["push", "--dry-run", "--allow-partial-coverage", "--warehouse", run_warehouse],
    }
    return {name: _command(argv) for name, argv in commands.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    """``skysmart run`` against a clean and a corrupting sandbox, once for the module."""
    data = sandbox_data(2_000, 7)
    out: dict[str, RunResult] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for label, rate in (("clean", 0.0), ("corrupt", RATE)):
            server = SandboxServer(
                data=data,
                seed=7,
                skybiz_switches=Switches(corrupt_rate=rate, seed=11),
                smartacc_switches=Switches(corrupt_rate=rate, seed=12),
            )
            with server:
                for name, value in server.endpoints.as_env().items():
                    monkeypatch.setenv(name, value)
                tmp = tmp_path_factory.mktemp(label)
                lake, warehouse = str(tmp / "lake"), str(tmp / "w.duckdb")
                code, _ = _command(
                    ["run", "--from", START, "--to", END, "--lake", lake, "--warehouse", warehouse]
                )
                commands = _every_command(tmp, lake, warehouse) if rate else {}
                truth = {
                    "skybiz": dict(server.skybiz.switches.corrupted),
                    "smartacc": dict(server.smartacc.switches.corrupted),
                }
            out[label] = RunResult(Lake(lake), code, truth, commands)
    return out


def _rows(lake: Lake, layer: str, source: str, window: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = lake.read(layer, source, CUSTOMERS, window).to_pylist()
    return rows


def _vendor(row: dict[str, Any], id_field: str) -> dict[str, Any]:
    # Present vendor fields only: a quarantine's raw_record leaves absent (null) fields out.
    return {k: v for k, v in row.items() if k not in LINEAGE and k != id_field and v is not None}


def test_both_runs_end_without_an_error(runs: dict[str, RunResult]) -> None:
    assert runs["clean"].code == 0
    assert runs["corrupt"].code == 0
    assert not runs["clean"].truth["skybiz"] and not runs["clean"].truth["smartacc"]


@pytest.mark.parametrize(
    "command",
    [
        "extract skybiz",
        "extract smartacc",
        "normalize",
        "validate",
        "load",
        "status",
        "sql",
        "push --dry-run",
    ],
)
def test_no_command_ends_in_an_untyped_error(runs: dict[str, RunResult], command: str) -> None:
    code, printed = runs["corrupt"].commands[command]
    assert code == 0, printed
    assert "unexpected" not in printed


@pytest.mark.parametrize("source", SOURCES)
def test_every_kind_of_corruption_was_served(runs: dict[str, RunResult], source: str) -> None:
    kinds = Counter(kind for kind, _ in runs["corrupt"].truth[source].values())
    assert set(kinds) == set(CORRUPTIONS), kinds


@pytest.mark.parametrize("source", SOURCES)
def test_hit_records_are_flagged_and_the_rest_load_as_without_corruption(
    runs: dict[str, RunResult], source: str
) -> None:
    clean: Lake = runs["clean"].lake
    dirty: Lake = runs["corrupt"].lake
    truth: dict[str, tuple[str, str]] = runs["corrupt"].truth[source]
    id_field = ID_FIELD[source]
    checked: Counter[str] = Counter()
    for window in plan_windows(source, _date(START), _date(END)):
        raw_clean = {r[id_field]: r for r in _rows(clean, RAW, source, window)}
        hits = {i: truth[i] for i in raw_clean if i in truth}
        norm_clean = {r["source_customer_id"]: r for r in _rows(clean, NORMALIZED, source, window)}
        norm_dirty = {r["source_customer_id"]: r for r in _rows(dirty, NORMALIZED, source, window)}
        quar_clean = _rows(clean, QUARANTINE, source, window)
        quar_dirty = _rows(dirty, QUARANTINE, source, window)
        raw_dirty = _rows(dirty, RAW, source, window)
        assert len(raw_dirty) == len(raw_clean), window.key  # nobody lost, nobody gained a window

        # Records not hit: the same normalized row, the same quarantine rule.
        for key, row in norm_clean.items():
            if key in hits:
                continue
            assert key in norm_dirty, (window.key, key)
            assert _comparable(norm_dirty[key]) == _comparable(row), (window.key, key)
        assert set(norm_dirty) - set(hits) == set(norm_clean) - set(hits), window.key
        clean_rules = Counter(
            (q["source_customer_id"], q["rule"]) for q in quar_clean if q["source_customer_id"] not in hits
        )
        dirty_rules = Counter(
            (q["source_customer_id"], q["rule"])
            for q in quar_dirty
            if q["source_customer_id"] is not None and q["source_customer_id"] not in hits
        )
        assert dirty_rules == clean_rules, window.key

        # Records hit: flagged in the same window.
        id_less = [json.loads(q["raw_record"]) for q in quar_dirty if q["source_customer_id"] is None]
        for key, (kind, field) in hits.items():
            checked[kind] += 1
            quarantined = [q for q in quar_dirty if q["source_customer_id"] == key]
            if field == id_field:
                expected = _vendor(raw_clean[key], id_field)
                matches = [r for r in id_less if _vendor(r, id_field) == expected]
                assert matches, (window.key, key, kind)
                continue
            if quarantined:
                assert all(q["rule"] for q in quarantined)
                continue
            assert key in norm_dirty, (window.key, key, kind, field)
            issues = set((norm_dirty[key]["data_issues"] or "").split(";")) - {""}
            before = set(((norm_clean.get(key) or {}).get("data_issues") or "").split(";")) - {""}
            assert issues - before, (window.key, key, kind, field, issues)
            if kind == "control_chars":
                assert "text_control_removed" in issues
    assert sum(checked.values()) >= 10, "too few corrupted records in the range to say anything"
    assert len(checked) >= 5, checked  # nearly every kind met in the range


def test_control_characters_are_gone_and_emoji_stay(runs: dict[str, RunResult]) -> None:
    dirty: Lake = runs["corrupt"].lake
    seen = 0
    for source in SOURCES:
        truth = runs["corrupt"].truth[source]
        for window in plan_windows(source, _date(START), _date(END)):
            for row in _rows(dirty, NORMALIZED, source, window):
                hit = truth.get(row["source_customer_id"])
                if hit is None or hit[0] != "control_chars":
                    continue
                column = "name" if hit[1] == SHAPE[source].name else "address_line1"
                text = row[column]
                seen += 1
                assert "\U0001f600" in text
                assert not any(ch in text for ch in "\x01\x07\x1b\x7f\u202e\u202c\u2066\u2069"), text
    assert seen, "no control_chars corruption reached a normalized row"


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in RUN_COLUMNS}


def _date(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)
