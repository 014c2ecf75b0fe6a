from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.errors import LakeError
from pipelines.lake import (
    CUSTOMERS,
    LARGE_FILE_CODEC,
    MANIFEST,
    NORMALIZED,
    RAW,
    SMALL_FILE_CODEC,
    SMALL_FILE_ROWS,
    Lake,
)
from pipelines.windows import Window

SCHEMA = pa.schema([("id", pa.string()), ("n", pa.int64())])
WINDOW = Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))


def _batch(ids: list[str]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(ids), pa.array(range(len(ids)), pa.int64())], schema=SCHEMA)


def _visible_files(lake: Lake) -> list[str]:
    return sorted(os.listdir(lake.window_dir(RAW, "skybiz", CUSTOMERS, WINDOW)))


def test_commit_writes_data_and_manifest(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    with lake.writer(RAW, "skybiz", CUSTOMERS, WINDOW, SCHEMA) as writer:
        writer.write(_batch(["a", "b"]))
        writer.write(_batch(["c"]))
        manifest = writer.commit(pages=2)
    assert manifest.rows == 3
    assert manifest.extra == {"pages": 2}
    assert lake.read(RAW, "skybiz", CUSTOMERS, WINDOW).column("id").to_pylist() == ["a", "b", "c"]
    assert lake.windows(RAW, "skybiz") == [WINDOW]
    on_disk = json.loads((Path(lake.window_dir(RAW, "skybiz", CUSTOMERS, WINDOW)) / MANIFEST).read_text())
    assert on_disk["sha256"] == manifest.sha256 and len(manifest.sha256) == 64
    assert _visible_files(lake) == [MANIFEST, manifest.file]


def test_rewrite_replaces_the_window_whole(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    lake.write_table(RAW, "skybiz", CUSTOMERS, WINDOW, pa.Table.from_batches([_batch(["a", "b"])]))
    second = lake.write_table(RAW, "skybiz", CUSTOMERS, WINDOW, pa.Table.from_batches([_batch(["z"])]))
    assert lake.read(RAW, "skybiz", CUSTOMERS, WINDOW).column("id").to_pylist() == ["z"]
    assert _visible_files(lake) == [MANIFEST, second.file]


def test_exception_before_commit_keeps_previous_version(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    first = lake.write_table(RAW, "skybiz", CUSTOMERS, WINDOW, pa.Table.from_batches([_batch(["a"])]))
    with pytest.raises(RuntimeError), lake.writer(RAW, "skybiz", CUSTOMERS, WINDOW, SCHEMA) as writer:
        writer.write(_batch(["x", "y"]))
        raise RuntimeError("vendor went away")
    assert lake.read(RAW, "skybiz", CUSTOMERS, WINDOW).column("id").to_pylist() == ["a"]
    assert _visible_files(lake) == [MANIFEST, first.file]


def test_killed_writer_leaves_previous_version_and_no_visible_part(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    lake.write_table(RAW, "skybiz", CUSTOMERS, WINDOW, pa.Table.from_batches([_batch(["old"])]))
    script = textwrap.dedent(
        f"""
        import sys, time, pyarrow as pa
        from datetime import date
        from pipelines.lake import Lake, RAW, CUSTOMERS
        from pipelines.windows import Window
        schema = pa.schema([("id", pa.string()), ("n", pa.int64())])
        lake = Lake({str(tmp_path)!r})
        window = Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))
        batch = pa.record_batch([pa.array(["new"] * 1000), pa.array(range(1000), pa.int64())], schema=schema)
        with lake.writer(RAW, "skybiz", CUSTOMERS, window, schema) as w:
            w.write(batch)
            print("written", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert lake.read(RAW, "skybiz", CUSTOMERS, WINDOW).column("id").to_pylist() == ["old"]
    visible = [f for f in _visible_files(lake) if not f.startswith(".")]
    assert len(visible) == 2 and MANIFEST in visible


def test_schema_mismatch_is_a_lake_error(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    bad = pa.record_batch([pa.array([1.5])], names=["id"])
    with (
        pytest.raises(LakeError, match="does not fit"),
        lake.writer(RAW, "skybiz", CUSTOMERS, WINDOW, SCHEMA) as writer,
    ):
        writer.write(bad)


def test_missing_window_names_itself(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    assert lake.manifest(NORMALIZED, "skybiz", CUSTOMERS, WINDOW) is None
    with pytest.raises(LakeError, match="normalized window not found") as info:
        lake.read(NORMALIZED, "skybiz", CUSTOMERS, WINDOW)
    assert info.value.window == WINDOW.key


def test_side_files_and_batches(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    lake.write_table(
        RAW, "skybiz", CUSTOMERS, WINDOW, pa.Table.from_batches([_batch([str(i) for i in range(10)])])
    )
    assert sum(b.num_rows for b in lake.iter_batches(RAW, "skybiz", CUSTOMERS, WINDOW, batch_size=3)) == 10
    url = lake.write_file(RAW, "skybiz", CUSTOMERS, WINDOW, "note.txt", b"hello")
    assert Path(url).read_bytes() == b"hello"
    assert lake.read_file(RAW, "skybiz", CUSTOMERS, WINDOW, "note.txt") == b"hello"
    assert lake.data_url(RAW, "skybiz", CUSTOMERS, WINDOW).endswith(".parquet")


def test_memory_filesystem_url_works() -> None:
    lake = Lake("memory://skysmart-test-lake")
    lake.write_table(RAW, "skybiz", CUSTOMERS, WINDOW, pa.Table.from_batches([_batch(["m"])]))
    assert lake.read(RAW, "skybiz", CUSTOMERS, WINDOW).column("id").to_pylist() == ["m"]
    assert lake.data_url(RAW, "skybiz", CUSTOMERS, WINDOW).startswith("memory://")


def test_commit_sweeps_stale_temporary_files_but_not_fresh_ones(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    lake.write_table(RAW, "skybiz", CUSTOMERS, WINDOW, pa.Table.from_batches([_batch(["a"])]))
    directory = Path(lake.window_dir(RAW, "skybiz", CUSTOMERS, WINDOW))
    stale, fresh = directory / ".part-old.parquet.tmp", directory / ".part-new.parquet.tmp"
    stale.write_bytes(b"left by a killed writer")
    fresh.write_bytes(b"a writer still running")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    lake.write_table(RAW, "skybiz", CUSTOMERS, WINDOW, pa.Table.from_batches([_batch(["b"])]))
    assert not stale.exists()
    assert fresh.exists()


def _codecs(lake: Lake) -> set[str]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(lake.data_url(RAW, "skybiz", CUSTOMERS, WINDOW)).metadata
    return {
        meta.row_group(g).column(c).compression
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    }


@pytest.mark.parametrize(
    ("rows", "codec"),
    [(0, SMALL_FILE_CODEC), (SMALL_FILE_ROWS - 1, SMALL_FILE_CODEC), (SMALL_FILE_ROWS, LARGE_FILE_CODEC)],
)
def test_a_window_is_compressed_by_its_size_and_reads_back_the_same(
    tmp_path: Path, rows: int, codec: str
) -> None:
    lake = Lake(str(tmp_path))
    batch = _batch([f"id-{n}" for n in range(rows)])
    with lake.writer(RAW, "skybiz", CUSTOMERS, WINDOW, SCHEMA) as writer:
        writer.write(batch)
        writer.write(_batch(["later"]))  # later batches keep the file's codec
        writer.commit()

    assert _codecs(lake) == {codec.upper()}
    assert lake.read(RAW, "skybiz", CUSTOMERS, WINDOW).column("id").to_pylist() == [
        *batch.column(0).to_pylist(),
        "later",
    ]
