"""normalize_window over real lake directories: commits, manifests, the per-window invariant, failures."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.config import Settings
from pipelines.errors import LakeError, NormalizeError
from pipelines.extract import extract_window
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, RAW, Lake
from pipelines.normalize import NormalizeResult, normalize_table, normalize_window
from pipelines.sources.skybiz.client import SkyBizClient
from pipelines.sources.smartacc.client import SmartAccClient
from pipelines.windows import Window, plan_windows
from skysmart_sandbox.data import generate
from skysmart_sandbox.raw import in_window, render, render_terms, write_raw_window
from skysmart_sandbox.server import SandboxServer
from tests.normalize.rows import NOW, raw_table, terms_table

DATA = generate(1_500, 5, history_start=date(2025, 1, 1), history_end=date(2025, 3, 31), dirty_rate=0.1)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.mark.parametrize("source", ["skybiz", "smartacc"])
def test_each_window_accounts_for_every_raw_row(lake: Lake, source: str) -> None:
    windows = plan_windows(source, date(2025, 1, 1), date(2025, 3, 31))
    for window in windows:
        write_raw_window(lake, DATA, window)
    results = [normalize_window(lake, source, window, now=NOW) for window in windows]

    assert sum(r.rows_in for r in results) == 1_500
    for window, result in zip(windows, results, strict=True):
        raw = lake.require_manifest(RAW, source, CUSTOMERS, window)
        normalized = lake.read(NORMALIZED, source, CUSTOMERS, window)
        quarantine = lake.read(QUARANTINE, source, CUSTOMERS, window)
        assert result.rows_in == raw.rows == normalized.num_rows + quarantine.num_rows
        assert (result.normalized, result.quarantined) == (normalized.num_rows, quarantine.num_rows)
        assert set(normalized.column("source_window").to_pylist()) == {window.key}
        assert set(quarantine.column("source_window").to_pylist()) <= {window.key}
        for layer in (NORMALIZED, QUARANTINE):
            extra = lake.require_manifest(layer, source, CUSTOMERS, window).extra
            assert extra["rows_in"] == raw.rows
            assert (extra["normalized"], extra["quarantined"]) == (result.normalized, result.quarantined)
            assert extra["raw_sha256"] == raw.sha256
            assert extra["reasons"] == result.quarantine_reasons
        counted = pc.value_counts(quarantine.column("rule")).to_pylist()
        assert {c["values"]: c["counts"] for c in counted} == result.quarantine_reasons
    assert sum(r.quarantined for r in results) > 0


def test_result_is_small_and_points_at_the_committed_files(lake: Lake) -> None:
    window = Window("skybiz", date(2025, 2, 1), date(2025, 2, 28))
    write_raw_window(lake, DATA, window)
    result = normalize_window(lake, "skybiz", window.key)
    assert isinstance(result, NormalizeResult)
    assert result.window == window.key and result.source == "skybiz"
    assert result.normalized_url == lake.data_url(NORMALIZED, "skybiz", CUSTOMERS, window)
    assert result.quarantine_url == lake.data_url(QUARANTINE, "skybiz", CUSTOMERS, window)
    assert Path(result.normalized_url).is_file() and Path(result.quarantine_url).is_file()
    assert all(isinstance(v, str | int | float | dict) for v in asdict(result).values())


def test_quarantine_is_committed_even_when_empty(lake: Lake) -> None:
    window = Window("skybiz", date(2026, 4, 1), date(2026, 4, 30))
    lake.write_table(RAW, "skybiz", CUSTOMERS, window, raw_table("skybiz", [{}, {"CusCode": "C2"}]))
    result = normalize_window(lake, "skybiz", window)
    assert (result.rows_in, result.normalized, result.quarantined) == (2, 2, 0)
    assert lake.require_manifest(QUARANTINE, "skybiz", CUSTOMERS, window).rows == 0
    assert lake.read(QUARANTINE, "skybiz", CUSTOMERS, window).num_rows == 0


def test_rerun_replaces_the_window_with_the_same_content(lake: Lake) -> None:
    window = Window("smartacc", date(2025, 3, 1), date(2025, 3, 31))
    write_raw_window(lake, DATA, window)
    normalize_window(lake, "smartacc", window, now=NOW)
    first = lake.read(NORMALIZED, "smartacc", CUSTOMERS, window)
    normalize_window(lake, "smartacc", window, now=NOW)
    again = lake.read(NORMALIZED, "smartacc", CUSTOMERS, window)
    assert again.equals(first)
    directory = Path(lake.window_dir(NORMALIZED, "smartacc", CUSTOMERS, window))
    assert len(list(directory.glob("part-*.parquet"))) == 1


def test_missing_raw_window_is_a_lake_error(lake: Lake) -> None:
    with pytest.raises(LakeError, match="raw window not found"):
        normalize_window(lake, "skybiz", Window("skybiz", date(2025, 1, 1), date(2025, 1, 31)))


def test_missing_terms_snapshot_names_it_and_writes_nothing(lake: Lake) -> None:
    window = Window("smartacc", date(2026, 4, 1), date(2026, 4, 30))
    lake.write_table(RAW, "smartacc", CUSTOMERS, window, raw_table("smartacc", [{}]))
    with pytest.raises(NormalizeError, match="entity=terms") as caught:
        normalize_window(lake, "smartacc", window)
    assert caught.value.window == window.key
    assert lake.manifest(NORMALIZED, "smartacc", CUSTOMERS, window) is None
    assert lake.manifest(QUARANTINE, "smartacc", CUSTOMERS, window) is None


def test_window_of_another_source_is_refused(lake: Lake) -> None:
    with pytest.raises(NormalizeError, match="not a skybiz window"):
        normalize_window(lake, "skybiz", Window("smartacc", date(2025, 1, 1), date(2025, 1, 31)))


def test_terms_snapshot_of_the_window_is_the_one_used(lake: Lake) -> None:
    window = Window("smartacc", date(2026, 4, 1), date(2026, 4, 30))
    lake.write_table(RAW, "smartacc", CUSTOMERS, window, raw_table("smartacc", [{"AcTermID": "C45"}]))
    snapshot = terms_table([{"AcTermID": "C45", "AcTermDesc": "45 Days", "TermDays": "45"}])
    lake.write_table(RAW, "smartacc", "terms", window, snapshot)
    normalize_window(lake, "smartacc", window)
    row = lake.read(NORMALIZED, "smartacc", CUSTOMERS, window).to_pylist()[0]
    assert (row["payment_terms_code"], row["payment_terms_days"], row["data_issues"]) == ("C45", 45, None)


# -- against the emulators over HTTP --------------------------------------------------------------------


def _comparable(table: pa.Table) -> pa.Table:
    return table.drop_columns(["extracted_at"]).sort_by("customer_key")


@pytest.mark.parametrize("source", ["skybiz", "smartacc"])
def test_extracted_window_normalizes_like_the_rendered_sandbox_data(
    sandbox: SandboxServer, tmp_path: Path, source: str
) -> None:
    """A real extract over HTTP and this package's own rendering of the same records agree row for row."""
    window = Window(source, date(2024, 3, 1), date(2024, 3, 31))
    lake = Lake(str(tmp_path / "lake"))
    settings = Settings.from_env({**sandbox.endpoints.as_env(), "SKYSMART_HTTP_REQUESTS_PER_SECOND": "0"})
    client: SkyBizClient | SmartAccClient = (
        SkyBizClient(settings.require_skybiz())
        if source == "skybiz"
        else SmartAccClient(settings.require_smartacc())
    )
    with client:
        extract_window(client, window, lake)
    result = normalize_window(lake, source, window, now=NOW)

    data = sandbox.data
    records = in_window(source, data.skybiz if source == "skybiz" else data.smartacc, window)
    rendered = normalize_table(
        source, render(source, records, window), render_terms(data.terms, window), now=NOW
    )
    assert result.rows_in == records.num_rows > 0
    assert result.quarantine_reasons == rendered.reasons
    extracted = lake.read(NORMALIZED, source, CUSTOMERS, window)
    assert _comparable(extracted).equals(_comparable(rendered.normalized))


@pytest.mark.parametrize("source", ["skybiz", "smartacc"])
def test_batches_give_what_one_pass_gives_even_with_duplicates_across_batches(
    lake: Lake, source: str
) -> None:
    """Rules and duplicates are decided window-wide, so the batch size changes nothing in the output."""
    window = Window(source, date(2025, 3, 1), date(2025, 3, 31))
    records = (DATA.skybiz if source == "skybiz" else DATA.smartacc).slice(0, 60)
    raw = render(source, records, window)
    # Five clean customers again at the end, edited later: the copies in the first batches are superseded.
    dirty = {d["id"] for d in DATA.defects.to_pylist() if d["system"] == source}
    ids = raw.column("CusCode" if source == "skybiz" else "AcCustomerID").to_pylist()
    clean = [i for i, key in enumerate(ids) if key not in dirty][:5]
    edited = raw.take(clean).set_column(
        raw.schema.get_field_index("CusName" if source == "skybiz" else "AcCustomerName"),
        "CusName" if source == "skybiz" else "AcCustomerName",
        pa.array([f"Renamed {i}" for i in range(5)]),
    )
    modified = "DateTimeModified" if source == "skybiz" else "EditDate"
    later = "2025-03-31 23:00:00" if source == "skybiz" else "/Date(1743433200000-0000)/"
    edited = edited.set_column(edited.schema.get_field_index(modified), modified, pa.array([later] * 5))
    raw = pa.concat_tables([raw, edited])
    lake.write_table(RAW, source, CUSTOMERS, window, raw)
    lake.write_table(RAW, source, "terms", window, render_terms(DATA.terms, window))

    result = normalize_window(lake, source, window, now=NOW, batch_rows=7)
    whole = normalize_table(source, raw, render_terms(DATA.terms, window), now=NOW)
    assert lake.read(NORMALIZED, source, CUSTOMERS, window).equals(whole.normalized)
    assert lake.read(QUARANTINE, source, CUSTOMERS, window).equals(whole.quarantine)
    assert result.quarantine_reasons.get("duplicate_superseded") == 5
    names = lake.read(NORMALIZED, source, CUSTOMERS, window).column("name").to_pylist()
    assert [n for n in names if n.startswith("Renamed")] == [f"Renamed {i}" for i in range(5)]
