"""``normalize_windows`` (what ``skysmart run`` normalizes with) commits what ``normalize_window`` commits.

Small windows are drafted and assembled as one table and split back; the lake must not be able to tell:
every window's normalized and quarantine files are compared byte for byte (their manifests' sha256) with
the files of the window-by-window path, on dirty data (quarantines, duplicates) of both sources.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.errors import LakeError, NormalizeError
from pipelines.lake import CUSTOMERS, NORMALIZED, QUARANTINE, Lake
from pipelines.normalize import normalize_window
from pipelines.normalize.core import normalize_windows
from pipelines.windows import Window, plan_windows
from skysmart_sandbox.data import generate
from skysmart_sandbox.raw import write_raw_window

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DATA = generate(600, 7, history_start=date(2024, 1, 1), history_end=date(2024, 9, 30), dirty_rate=0.15)


def _lakes(tmp_path: Path, source: str) -> tuple[Lake, Lake, list[Window]]:
    windows = plan_windows(source, date(2024, 1, 1), date(2024, 9, 30))
    one, joint = Lake(str(tmp_path / "one")), Lake(str(tmp_path / "joint"))
    for number, window in enumerate(windows):
        at = NOW - timedelta(hours=number)  # each Terms snapshot fetched at its own time, as in real runs
        for lake in (one, joint):
            write_raw_window(lake, DATA, window, extracted_at=at)
    return one, joint, windows


@pytest.mark.parametrize("source", ["skybiz", "smartacc"])
def test_joint_normalize_commits_the_files_of_one_by_one(tmp_path: Path, source: str) -> None:
    one, joint, windows = _lakes(tmp_path, source)
    expected = [normalize_window(one, source, w, now=NOW) for w in windows]
    got = normalize_windows(joint, source, windows, now=NOW)

    assert len(got) == len(windows) == 9
    assert sum(r.quarantined for r in expected) > 0
    for window, want, have in zip(windows, expected, got, strict=True):
        assert not isinstance(have, Exception), have
        drop = {"seconds", "normalized_url", "quarantine_url"}
        assert {k: v for k, v in dataclasses.asdict(have).items() if k not in drop} == {
            k: v for k, v in dataclasses.asdict(want).items() if k not in drop
        }
        for layer in (NORMALIZED, QUARANTINE):
            a = one.require_manifest(layer, source, CUSTOMERS, window)
            b = joint.require_manifest(layer, source, CUSTOMERS, window)
            assert (b.sha256, b.rows, b.extra) == (a.sha256, a.rows, a.extra), (window.key, layer)


def test_small_raw_batches_and_a_broken_window_still_match(tmp_path: Path) -> None:
    """Raw files read in several batches keep their row numbers; a window that cannot be read fails alone."""
    one, joint, windows = _lakes(tmp_path, "skybiz")
    missing = Window("skybiz", date(2023, 1, 1), date(2023, 1, 31))
    expected = [normalize_window(one, "skybiz", w, now=NOW, batch_rows=7) for w in windows]
    got = normalize_windows(joint, "skybiz", [windows[0], missing, *windows[1:]], now=NOW, batch_rows=7)

    assert isinstance(got[1], LakeError) and not isinstance(got[1], NormalizeError)
    del got[1]
    for window, want, have in zip(windows, expected, got, strict=True):
        assert not isinstance(have, Exception), have
        assert have.quarantine_reasons == want.quarantine_reasons
        for layer in (NORMALIZED, QUARANTINE):
            a = one.require_manifest(layer, "skybiz", CUSTOMERS, window)
            b = joint.require_manifest(layer, "skybiz", CUSTOMERS, window)
            assert (b.sha256, b.rows) == (a.sha256, a.rows), (window.key, layer)
