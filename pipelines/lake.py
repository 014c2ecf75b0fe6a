"""The Parquet lake: window-keyed partitions, committed by a manifest.

Layout (``layer`` is ``raw``, ``normalized``, ``quarantine`` or ``quality``)::

    {lake}/{layer}/source={source}/entity={entity}/window={YYYY-MM-DD_YYYY-MM-DD}/
        _manifest.json              <- the commit: the only file readers trust
        part-{run_id}.parquet       <- the data it points at
        (reports, for the quality layer)

A writer streams record batches into a hidden temporary file, renames it to its final ``part-`` name,
then replaces ``_manifest.json`` in one atomic step and removes the parts no manifest points at. A crash
at any point leaves the previous manifest, and so the previous data, exactly as it was; readers never list
data files. On object stores (``s3://`` through fsspec/s3fs) the manifest's single PUT is the atomic step.

Object-store credentials come from :func:`configure_object_store` (the Airflow lake hook calls it in the task
process) or, for the CLI, from the standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``). They are registered as secrets when a lake opens
and live only in the filesystem object: never in a manifest, a URL the lake hands out, or an error's text.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Final

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import __version__
from pipelines.errors import LakeError, redact, register_secret
from pipelines.windows import Window

RAW: Final = "raw"
NORMALIZED: Final = "normalized"
QUARANTINE: Final = "quarantine"
QUALITY: Final = "quality"
LAYERS: Final = (RAW, NORMALIZED, QUARANTINE, QUALITY)
CUSTOMERS: Final = "customers"
#: How every lake file is written: no dictionary pages (customer columns are mostly distinct strings, where
#: dictionaries only cost: a 10k-row window writes 2.7x faster, reads faster and is 9 % smaller), compressed
#: with :data:`SMALL_FILE_CODEC` or :data:`LARGE_FILE_CODEC` (see :func:`parquet_options`).
PARQUET_OPTIONS: Final[dict[str, Any]] = {"use_dictionary": False}
#: Files whose first batch holds fewer rows than this take the small files' codec. zstd costs some 3 ms more
#: per file than LZ4 to write and 1-3 ms more to read, whatever the size (a cost per column chunk): for a
#: window of 40 rows by 57 columns, 2.6 and 3.6 ms against 1.2 and 2.3 ms, for 44 kB against 50 kB (the
#: footer is most of it). From a few hundred rows zstd's files are a third smaller and more (2,000 rows:
#: 555 kB against 950 kB), which is worth those milliseconds. A month of 2,000 customers is ~40 rows.
SMALL_FILE_ROWS: Final = 500
SMALL_FILE_CODEC: Final = "lz4"
LARGE_FILE_CODEC: Final = "zstd"
MANIFEST: Final = "_manifest.json"
STALE_TMP_SECONDS: Final = 3600
OBJECT_STORE_PROTOCOLS: Final = ("s3", "s3a")
"""Protocols that take :func:`configure_object_store`'s options (s3fs; MinIO, Ceph, R2 and moto speak it)."""


def parquet_options(first_rows: int) -> dict[str, Any]:
    """The writer options of a lake file whose first batch holds ``first_rows`` rows.

    The first batch is the whole window for most files: writers buffer up to tens of thousands of rows.
    """
    codec = SMALL_FILE_CODEC if first_rows < SMALL_FILE_ROWS else LARGE_FILE_CODEC
    return {**PARQUET_OPTIONS, "compression": codec}


_STORE_LOCK = threading.Lock()
_STORE_OPTIONS: dict[str, Any] = {}


def configure_object_store(options: Mapping[str, Any] | None) -> None:
    """Set this process's object-store options; ``None`` goes back to the AWS environment variables.

    The options are s3fs keywords: ``key``, ``secret``, ``token``, ``endpoint_url``, ``client_kwargs``.

    Process-wide on purpose: the steps open lakes by URL deep inside the library, and one Airflow task
    process (or one CLI run) talks to one lake. The credentials are registered as secrets at once.
    """
    values = dict(options or {})
    for name in ("key", "secret", "token"):
        if values.get(name):
            register_secret(str(values[name]))
    with _STORE_LOCK:
        _STORE_OPTIONS.clear()
        _STORE_OPTIONS.update(values)


def is_object_store(url: str) -> bool:
    """Whether a lake URL names an object store that takes :func:`configure_object_store`'s options."""
    return "://" in url and url.split("://", 1)[0].lower() in OBJECT_STORE_PROTOCOLS


def object_store_options() -> dict[str, Any]:
    """The s3fs options a new object-store lake gets: the configured ones, else the AWS environment.

    Listing caches are off: another machine may commit a window between two reads of this process, and a
    cached listing would then hide the new manifest or report the old one's size.
    """
    with _STORE_LOCK:
        configured = dict(_STORE_OPTIONS)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        register_secret(os.environ.get(name, ""))
    options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    if not configured.get("endpoint_url"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
    options.update(configured)
    return options


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a committed window holds; small and secret-free, so it can travel through XCom."""

    layer: str
    source: str
    entity: str
    window: str
    file: str
    rows: int
    sha256: str
    started_at: str
    finished_at: str
    client_version: str = __version__
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise for the manifest file."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest file."""
        data = json.loads(text)
        return cls(**data)


class Lake:
    """A lake rooted at a local path or an fsspec URL (``s3://bucket/prefix``, ``memory://``).

    ``storage_options`` are the filesystem's keywords; for ``s3://`` lakes they default to
    :func:`object_store_options`.
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url.rstrip("/") or "/"
        options = dict(storage_options) if storage_options is not None else {}
        if storage_options is None and is_object_store(self.url):
            options = object_store_options()
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        except (ImportError, ValueError, TypeError) as exc:
            raise LakeError(f"cannot open lake {self.url}: {redact(exc)}") from None
        self.is_local = getattr(self.fs, "protocol", None) in ("file", ("file", "local"), "local") or (
            isinstance(self.fs.protocol, tuple) and "file" in self.fs.protocol
        )

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    # -- paths -----------------------------------------------------------------------------------------
    def window_dir(self, layer: str, source: str, entity: str, window: Window | str) -> str:
        """The directory (or prefix) of one window's partition."""
        if layer not in LAYERS:
            raise LakeError(f"unknown lake layer {layer!r}")
        key = window.key if isinstance(window, Window) else window
        return f"{self.root}/{layer}/source={source}/entity={entity}/window={key}"

    def full_url(self, path: str) -> str:
        """A path as other tools (DuckDB, pandas) can open it: plain for local, with protocol otherwise."""
        if self.is_local:
            return path
        return self.fs.unstrip_protocol(path)  # type: ignore[no-any-return]

    # -- writing ---------------------------------------------------------------------------------------
    @contextmanager
    def writer(
        self, layer: str, source: str, entity: str, window: Window, schema: pa.Schema
    ) -> Iterator[WindowWriter]:
        """Stream batches into a window; commit with :meth:`WindowWriter.commit` or nothing changes.

        Leaving the block without a commit (or with an exception) discards the temporary file.
        """
        writer = WindowWriter(self, layer, source, entity, window, schema)
        try:
            yield writer
        finally:
            writer.discard()

    def write_table(
        self,
        layer: str,
        source: str,
        entity: str,
        window: Window,
        table: pa.Table,
        **extra: Any,
    ) -> Manifest:
        """Replace a window with one in-memory table (for layers that are built whole, like quarantine)."""
        with self.writer(layer, source, entity, window, table.schema) as w:
            w.write(table)
            return w.commit(**extra)

    def write_file(self, layer: str, source: str, entity: str, window: Window, name: str, data: bytes) -> str:
        """Write a side file (a report) into a window directory atomically; returns its URL."""
        directory = self.window_dir(layer, source, entity, window)
        final = f"{directory}/{name}"
        with _guard(self, f"writing {name}", source=source, window=window.key):
            self._put_atomically(final, data)
        return self.full_url(final)

    def write_root_file(self, name: str, data: bytes) -> str:
        """Write a file at the lake's root (the whole-lake report) atomically; returns its URL."""
        final = f"{self.root}/{name}"
        with _guard(self, f"writing {name}"):
            self._put_atomically(final, data)
        return self.full_url(final)

    def _put_atomically(self, final: str, data: bytes) -> None:
        """Replace one small object whole: a rename on local disks, a single PUT on an object store."""
        if not self.is_local and "memory" not in self.fs.protocol:
            self.fs.pipe_file(final, data)
            return
        directory = final.rsplit("/", 1)[0]
        self.fs.makedirs(directory, exist_ok=True)
        tmp = f"{directory}/.{final.rsplit('/', 1)[-1]}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(tmp, "wb") as fh:
            fh.write(data)
        self.fs.mv(tmp, final)

    # -- reading ---------------------------------------------------------------------------------------
    def manifest(self, layer: str, source: str, entity: str, window: Window | str) -> Manifest | None:
        """The committed manifest of a window, or ``None`` if the window was never committed."""
        path = f"{self.window_dir(layer, source, entity, window)}/{MANIFEST}"
        key = window.key if isinstance(window, Window) else window
        try:
            with _guard(self, "reading a manifest", source=source, window=key):
                return Manifest.from_json(self.fs.cat_file(path).decode())
        except FileNotFoundError:
            return None

    def require_manifest(self, layer: str, source: str, entity: str, window: Window | str) -> Manifest:
        """Like :meth:`manifest`, but a missing window is a :class:`LakeError` naming it."""
        found = self.manifest(layer, source, entity, window)
        if found is None:
            key = window.key if isinstance(window, Window) else window
            raise LakeError(
                f"{layer} window not found in lake {self.url}; run the step that writes it first",
                source=source,
                window=key,
                entity=entity,
            )
        return found

    def data_url(self, layer: str, source: str, entity: str, window: Window | str) -> str:
        """The committed Parquet file of a window, as a URL DuckDB or pyarrow can read."""
        found = self.require_manifest(layer, source, entity, window)
        return self.full_url(f"{self.window_dir(layer, source, entity, window)}/{found.file}")

    def read(
        self,
        layer: str,
        source: str,
        entity: str,
        window: Window | str,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Read a committed window whole."""
        found = self.require_manifest(layer, source, entity, window)
        path = f"{self.window_dir(layer, source, entity, window)}/{found.file}"
        with (
            _guard(self, "reading a window", source=source, window=found.window),
            self.fs.open(path, "rb") as fh,
        ):
            # One file: ParquetFile reads it without read_table's dataset discovery (3.0 -> 1.9 ms a window).
            return pq.ParquetFile(fh).read(columns=columns)

    def iter_batches(
        self,
        layer: str,
        source: str,
        entity: str,
        window: Window | str,
        batch_size: int = 65_536,
        columns: list[str] | None = None,
        manifest: Manifest | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Read a committed window in batches, for memory-flat consumers.

        ``manifest``: one the caller already read and checked (the warehouse load does), so the file read
        is the one it names even if the window is committed again meanwhile.
        """
        found = manifest or self.require_manifest(layer, source, entity, window)
        path = f"{self.window_dir(layer, source, entity, window)}/{found.file}"
        with (
            _guard(self, "reading a window", source=source, window=found.window),
            self.fs.open(path, "rb") as fh,
        ):
            yield from pq.ParquetFile(fh).iter_batches(batch_size=batch_size, columns=columns)

    def read_file(self, layer: str, source: str, entity: str, window: Window | str, name: str) -> bytes:
        """Read a side file written by :meth:`write_file`."""
        path = f"{self.window_dir(layer, source, entity, window)}/{name}"
        try:
            with _guard(self, f"reading {name}", source=source, window=str(window)):
                data: bytes = self.fs.cat_file(path)
                return data
        except FileNotFoundError:
            raise LakeError(
                f"{name} not found in the {layer} layer", source=source, window=str(window)
            ) from None

    def windows(self, layer: str, source: str, entity: str = CUSTOMERS) -> list[Window]:
        """Committed windows of one source and entity, oldest first."""
        base = f"{self.root}/{layer}/source={source}/entity={entity}"
        with _guard(self, "listing windows", source=source):
            try:
                entries = self.fs.ls(base, detail=False)
            except FileNotFoundError:
                return []
            found = []
            for entry in entries:
                name = str(entry).rstrip("/").rsplit("/", 1)[-1]
                if name.startswith("window=") and self.fs.exists(f"{base}/{name}/{MANIFEST}"):
                    found.append(Window.parse(source, name.removeprefix("window=")))
        return sorted(found)


class WindowWriter:
    """Appends record batches to one window's temporary Parquet file; see :meth:`Lake.writer`."""

    def __init__(self, lake: Lake, layer: str, source: str, entity: str, window: Window, schema: pa.Schema):
        self.lake = lake
        self.layer, self.source, self.entity, self.window = layer, source, entity, window
        self.schema = schema
        self.rows = 0
        self.started_at = _now()
        self.run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.directory = lake.window_dir(layer, source, entity, window)
        self.file_name = f"part-{self.run_id}.parquet"
        self._tmp = f"{self.directory}/.{self.file_name}.tmp"
        self._committed = False
        self._fh: IO[bytes] | None = None
        self._writer: pq.ParquetWriter | None = None
        with _guard(lake, "opening a window for writing", source=source, window=window.key):
            lake.fs.makedirs(self.directory, exist_ok=True)
            self._fh = lake.fs.open(self._tmp, "wb")

    def _parquet_writer(self, first_rows: int) -> pq.ParquetWriter:
        """The file's Parquet writer, started at the first write, when the file's size can be told."""
        if self._writer is None:
            assert self._fh is not None
            self._writer = pq.ParquetWriter(self._fh, self.schema, **parquet_options(first_rows))
        return self._writer

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows; their schema must equal the window's."""
        if self._fh is None:
            raise LakeError("writer already closed", source=self.source, window=self.window.key)
        if not data.schema.equals(self.schema):
            try:
                data = data.cast(self.schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
                raise LakeError(
                    f"batch does not fit the {self.layer} schema: {exc}",
                    source=self.source,
                    window=self.window.key,
                ) from exc
        with _guard(self.lake, "writing a window", source=self.source, window=self.window.key):
            writer = self._parquet_writer(data.num_rows)
            if isinstance(data, pa.RecordBatch):
                writer.write_batch(data)
            else:
                writer.write_table(data)
        self.rows += data.num_rows

    def commit(self, **extra: Any) -> Manifest:
        """Seal the file and make it the window's data in one atomic manifest swap."""
        if self._fh is None:
            raise LakeError("writer already closed", source=self.source, window=self.window.key)
        with _guard(self.lake, "committing a window", source=self.source, window=self.window.key):
            return self._commit(extra)

    def _commit(self, extra: Mapping[str, Any]) -> Manifest:
        assert self._fh is not None
        self._parquet_writer(0).close()  # an empty window is a file with the schema and no rows
        self._fh.close()
        self._writer, self._fh = None, None
        final = f"{self.directory}/{self.file_name}"
        sha = _sha256(self.lake, self._tmp)
        self.lake.fs.mv(self._tmp, final)
        manifest = Manifest(
            layer=self.layer,
            source=self.source,
            entity=self.entity,
            window=self.window.key,
            file=self.file_name,
            rows=self.rows,
            sha256=sha,
            started_at=self.started_at,
            finished_at=_now(),
            extra=dict(extra),
        )
        self.lake._put_atomically(f"{self.directory}/{MANIFEST}", manifest.to_json().encode())
        self._committed = True
        self._remove_unreferenced(keep=self.file_name)
        return manifest

    def discard(self) -> None:
        """Drop the temporary file if the window was not committed."""
        if self._writer is not None:
            with suppress(Exception):
                self._writer.close()
        if self._fh is not None:
            with suppress(Exception):
                self._fh.close()
        self._writer, self._fh = None, None
        if not self._committed:
            with suppress(FileNotFoundError):
                self.lake.fs.rm(self._tmp)

    def _remove_unreferenced(self, keep: str) -> None:
        """Drop superseded parts, and temporary files a killed writer left behind long ago.

        A temporary file younger than :data:`STALE_TMP_SECONDS` may belong to a writer still running, so it
        stays; readers never see either kind, since they follow the manifest.
        """
        now = datetime.now(UTC).timestamp()
        for entry in self.lake.fs.ls(self.directory, detail=True):
            path = str(entry["name"]).rstrip("/")
            name = path.rsplit("/", 1)[-1]
            if name.startswith("part-") and name.endswith(".parquet") and name != keep:
                with suppress(FileNotFoundError):
                    self.lake.fs.rm(f"{self.directory}/{name}")
            elif name.startswith(".") and name.endswith(".tmp"):
                modified = _mtime(entry)
                if modified is not None and now - modified > STALE_TMP_SECONDS:
                    with suppress(FileNotFoundError):
                        self.lake.fs.rm(f"{self.directory}/{name}")


@contextmanager
def _guard(lake: Lake, action: str, **facts: str) -> Iterator[None]:
    """Turn a storage failure (denied, unreachable, throttled) into a :class:`LakeError` with redacted text.

    ``FileNotFoundError`` passes through: callers decide what a missing object means.
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except LakeError:
        raise
    except Exception as exc:
        if not (isinstance(exc, OSError) or type(exc).__module__.startswith(_STORE_ERROR_MODULES)):
            raise
        raise LakeError(
            f"lake {lake.url}: {action} failed: {type(exc).__name__}: {redact(exc)}", **facts
        ) from None


_STORE_ERROR_MODULES: Final = ("botocore", "aiobotocore", "aiohttp", "s3fs")


def _mtime(entry: Mapping[str, Any]) -> float | None:
    """Modification time of an ``fs.ls(detail=True)`` entry, in epoch seconds, where the store tells."""
    value = entry.get("mtime", entry.get("LastModified", entry.get("created")))
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else None


def _sha256(lake: Lake, path: str) -> str:
    digest = hashlib.sha256()
    with lake.fs.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
