"""The lake on an S3-compatible store (moto over HTTP on 127.0.0.1): the same contract as on a local disk.

What a reader trusts is the manifest; on S3 the manifest is one PUT, the data object is written whole
before it, and nothing the lake stores or says carries the store's credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.errors import LakeError
from pipelines.lake import (
    CUSTOMERS,
    MANIFEST,
    NORMALIZED,
    QUALITY,
    RAW,
    Lake,
    configure_object_store,
    object_store_options,
)
from pipelines.windows import Window
from tests.fixtures.s3 import S3Store

SCHEMA = pa.schema([("id", pa.string()), ("n", pa.int64())])
JAN = Window("skybiz", date(2024, 1, 1), date(2024, 1, 31))
FEB = Window("skybiz", date(2024, 2, 1), date(2024, 2, 29))


def _batch(ids: list[str]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(ids), pa.array(range(len(ids)), pa.int64())], schema=SCHEMA)


@pytest.fixture
def configured(s3_store: S3Store) -> Iterator[S3Store]:
    """The store's credentials configured for this process, as the Airflow lake hook does; reset after."""
    configure_object_store(s3_store.storage_options())
    try:
        yield s3_store
    finally:
        configure_object_store(None)


def _prefix(store: S3Store, window: Window, layer: str = RAW) -> str:
    return f"lake/{layer}/source={window.source}/entity={CUSTOMERS}/window={window.key}/"


def test_write_commit_read_and_list_on_s3(configured: S3Store) -> None:
    lake = Lake(configured.url())
    assert not lake.is_local
    with lake.writer(RAW, "skybiz", CUSTOMERS, JAN, SCHEMA) as writer:
        writer.write(_batch(["a", "b"]))
        writer.write(_batch(["c"]))
        manifest = writer.commit(pages=2)
    lake.write_table(RAW, "skybiz", CUSTOMERS, FEB, pa.Table.from_batches([_batch(["z"])]))

    assert lake.read(RAW, "skybiz", CUSTOMERS, JAN).column("id").to_pylist() == ["a", "b", "c"]
    batches = list(lake.iter_batches(RAW, "skybiz", CUSTOMERS, JAN, batch_size=2))
    assert [b.num_rows for b in batches] == [2, 1]
    assert lake.windows(RAW, "skybiz") == [JAN, FEB]
    assert lake.windows(NORMALIZED, "skybiz") == []
    # The bucket holds exactly the data object and its manifest: no temporary object survives a commit.
    assert configured.object_keys(_prefix(configured, JAN)) == [
        _prefix(configured, JAN) + MANIFEST,
        _prefix(configured, JAN) + manifest.file,
    ]
    stored = json.loads(configured.read(_prefix(configured, JAN) + MANIFEST))
    assert stored["rows"] == 3 and stored["extra"] == {"pages": 2} and stored["file"] == manifest.file
    assert lake.manifest(RAW, "skybiz", CUSTOMERS, JAN) == manifest
    url = lake.data_url(RAW, "skybiz", CUSTOMERS, JAN)
    assert url == f"s3://{configured.bucket}/{_prefix(configured, JAN)}{manifest.file}"


def test_rewrite_replaces_the_window_and_its_old_object(configured: S3Store) -> None:
    lake = Lake(configured.url())
    first = lake.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["a"])]))
    second = lake.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["x", "y"])]))
    assert first.file != second.file
    assert lake.read(RAW, "skybiz", CUSTOMERS, JAN).column("id").to_pylist() == ["x", "y"]
    assert configured.object_keys(_prefix(configured, JAN)) == [
        _prefix(configured, JAN) + MANIFEST,
        _prefix(configured, JAN) + second.file,
    ]


def test_a_writer_that_fails_leaves_the_committed_window_alone(configured: S3Store) -> None:
    lake = Lake(configured.url())
    first = lake.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["a"])]))
    with pytest.raises(RuntimeError), lake.writer(RAW, "skybiz", CUSTOMERS, JAN, SCHEMA) as writer:
        writer.write(_batch(["x", "y"]))
        raise RuntimeError("vendor went away")
    assert lake.manifest(RAW, "skybiz", CUSTOMERS, JAN) == first
    assert lake.read(RAW, "skybiz", CUSTOMERS, JAN).column("id").to_pylist() == ["a"]
    assert configured.object_keys(_prefix(configured, JAN)) == [
        _prefix(configured, JAN) + MANIFEST,
        _prefix(configured, JAN) + first.file,
    ]


def test_a_second_process_sees_a_commit_made_after_its_first_look(configured: S3Store) -> None:
    """Two machines share the bucket: a lake opened earlier must not answer from a stale listing."""
    reader = Lake(configured.url())
    assert reader.windows(RAW, "skybiz") == []
    assert reader.manifest(RAW, "skybiz", CUSTOMERS, JAN) is None
    writer = Lake(configured.url())
    writer.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["a"])]))
    assert reader.windows(RAW, "skybiz") == [JAN]
    writer.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["a", "bb", "ccc"])]))
    assert reader.read(RAW, "skybiz", CUSTOMERS, JAN).num_rows == 3


def test_side_files_are_written_whole(configured: S3Store) -> None:
    lake = Lake(configured.url())
    url = lake.write_file(QUALITY, "skybiz", CUSTOMERS, JAN, "report.html", b"<p>ok</p>")
    assert url.startswith(f"s3://{configured.bucket}/")
    assert lake.read_file(QUALITY, "skybiz", CUSTOMERS, JAN, "report.html") == b"<p>ok</p>"
    assert configured.object_keys(_prefix(configured, JAN, QUALITY)) == [
        _prefix(configured, JAN, QUALITY) + "report.html"
    ]
    with pytest.raises(LakeError, match=r"missing\.html not found"):
        lake.read_file(QUALITY, "skybiz", CUSTOMERS, JAN, "missing.html")


def test_the_aws_environment_is_used_when_nothing_is_configured(
    s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's way: botocore's own variables, with ``AWS_ENDPOINT_URL`` for MinIO or moto."""
    configure_object_store(None)
    for key, value in s3_store.env().items():
        monkeypatch.setenv(key, value)
    assert object_store_options()["endpoint_url"] == s3_store.endpoint_url
    lake = Lake(s3_store.url("cli"))
    lake.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["a"])]))
    assert Lake(s3_store.url("cli")).windows(RAW, "skybiz") == [JAN]


def test_credentials_never_reach_objects_urls_or_errors(configured: S3Store) -> None:
    lake = Lake(configured.url())
    manifest = lake.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["a"])]))
    lake.write_file(QUALITY, "skybiz", CUSTOMERS, JAN, "report.html", b"<p>ok</p>")
    everything = b"".join(configured.read(key) for key in configured.object_keys())
    for secret in (configured.key, configured.secret):
        assert secret.encode() not in everything
        assert secret not in repr(lake) and secret not in lake.data_url(RAW, "skybiz", CUSTOMERS, JAN)
        assert secret not in manifest.to_json()
    parquet_key = _prefix(configured, JAN) + manifest.file
    metadata = pq.ParquetFile(pa.BufferReader(configured.read(parquet_key))).metadata
    assert configured.secret not in str(metadata.metadata)

    # A failure of the store itself (here: a bucket that does not exist) is a LakeError whose text says
    # what failed, and never holds the key pair, even when the store's own message would.
    missing = Lake(f"s3://no-such-bucket-{configured.bucket}/lake")
    with pytest.raises(LakeError) as caught:
        missing.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["a"])]))
    text = f"{caught.value} {caught.value!r} {caught.value.args}"
    assert "no-such-bucket" in text
    assert configured.secret not in text and configured.key not in text
    from pipelines.errors import redact

    assert redact(f"key={configured.key} secret {configured.secret}").count("***") == 2


def test_memory_lakes_still_take_no_object_store_options(configured: S3Store) -> None:
    lake = Lake("memory://skysmart-lake-test")
    lake.write_table(RAW, "skybiz", CUSTOMERS, JAN, pa.Table.from_batches([_batch(["a"])]))
    assert lake.windows(RAW, "skybiz") == [JAN]
    assert lake.data_url(RAW, "skybiz", CUSTOMERS, JAN).startswith("memory://")
