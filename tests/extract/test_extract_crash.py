"""A process killed in the middle of a window leaves the window exactly as the last commit left it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from pipelines.extract import extract_window
from pipelines.lake import CUSTOMERS, RAW, Lake
from pipelines.sources.smartacc.client import SmartAccClient
from pipelines.windows import Window
from skysmart_sandbox.server import SandboxServer
from tests.extract.extract_oracles import settings_for

pytestmark = pytest.mark.slow

WINDOW = Window("smartacc", date(2024, 3, 1), date(2024, 3, 31))

# The child extracts WINDOW with one row group per page; after the first page has gone into the temporary
# file it reports the window directory and blocks, so the parent can kill it at a known point mid-window.
CHILD = """
import json, sys, time
from pathlib import Path
from pipelines.config import Settings
from pipelines.extract import extract_window
from pipelines.lake import Lake
from pipelines.sources.smartacc.client import SmartAccClient
from pipelines.windows import Window

marker, key = Path(sys.argv[1]), sys.argv[2]
window = Window.parse("smartacc", key)
settings = Settings.from_env()
lake = Lake(settings.lake_url)
directory = Path(lake.window_dir("raw", "smartacc", "customers", window))

def on_page(event):
    if event.pages == 1 and not event.done:
        listing = sorted(p.name for p in directory.iterdir())
        tmp = Path(marker.as_posix() + ".tmp")
        tmp.write_text(json.dumps({"listing": listing, "rows": event.rows}))
        tmp.rename(marker)
        time.sleep(600)

extract_window(SmartAccClient(settings.require_smartacc()), window, lake, progress=on_page, batch_rows=1)
"""


def test_kill_mid_window_keeps_the_previous_version(sandbox: SandboxServer, tmp_path: Path) -> None:
    lake_path = tmp_path / "lake"
    lake = Lake(str(lake_path))
    with SmartAccClient(settings_for(sandbox).require_smartacc()) as client:
        first = extract_window(client, WINDOW, lake)
    before = lake.require_manifest(RAW, "smartacc", CUSTOMERS, WINDOW)
    table_before = lake.read(RAW, "smartacc", CUSTOMERS, WINDOW)
    assert first.pages >= 2  # so that page 1 is truly "mid-window"

    marker = tmp_path / "page-one-written.json"
    env = {
        **os.environ,
        **sandbox.endpoints.as_env(),
        "SKYSMART_LAKE": str(lake_path),
        "SKYSMART_HTTP_REQUESTS_PER_SECOND": "0",
    }
    log = tmp_path / "child.log"  # a file, not a pipe: a chatty child must never block on a full pipe
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(marker), WINDOW.key], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if child.poll() is not None:
                raise AssertionError(f"child ended before the kill point: {log.read_text()[-3000:]}")
            assert time.monotonic() < deadline, "child never reached the kill point"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == -signal.SIGKILL
    seen = json.loads(marker.read_text())
    temp_files = [name for name in seen["listing"] if name.startswith(".part-") and name.endswith(".tmp")]
    assert len(temp_files) == 1 and seen["rows"] > 0  # it really was writing a new version when killed

    assert lake.require_manifest(RAW, "smartacc", CUSTOMERS, WINDOW) == before
    assert lake.read(RAW, "smartacc", CUSTOMERS, WINDOW).equals(table_before)
    directory = lake_path / "raw/source=smartacc/entity=customers" / f"window={WINDOW.key}"
    visible = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    assert visible == sorted(["_manifest.json", before.file])  # no partial Parquet file a reader could find
    assert lake.windows(RAW, "smartacc") == [WINDOW]

    # The next run simply replaces the window.
    with SmartAccClient(settings_for(sandbox).require_smartacc()) as client:
        again = extract_window(client, WINDOW, lake)
    assert lake.require_manifest(RAW, "smartacc", CUSTOMERS, WINDOW).file != before.file
    assert again.rows == first.rows
