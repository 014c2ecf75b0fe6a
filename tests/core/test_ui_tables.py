"""Summary tables on a terminal: keys are never cut, whatever the width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from pipelines.cli import ui

KEYS = [f"smartacc:2024-0{m}-01_2024-0{m}-28" for m in (1, 2, 3)]
PATH = "file:///srv/lake/reports/smartacc/2024-01/index.html"  # fits every width tried
COLUMNS = ["window", "extracted", "normalized", "quarantined", "inserted", "updated", "status", "report"]


def _printed(monkeypatch: pytest.MonkeyPatch, width: int) -> list[str]:
    out = io.StringIO()
    terminal = Console(file=out, width=width, force_terminal=True, color_system=None, highlight=False)
    monkeypatch.setattr(ui, "console", terminal)
    rows = [[key, 1234, 1200, 34, 1000, 200, "ok", PATH] for key in KEYS]
    ui.print_table("skysmart run", COLUMNS, rows)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [60, 80, 100])
def test_a_narrow_terminal_keeps_every_key_and_path_whole(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    lines = _printed(monkeypatch, width)

    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    for key in KEYS:
        assert sum(key in line for line in lines) == 1, text
    assert sum(PATH in line for line in lines) == len(KEYS), text
    assert text.count("quarantined 34") == len(KEYS)


def test_a_wide_terminal_gets_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _printed(monkeypatch, 220)

    header = next(line for line in lines if "window" in line and "report" in line)
    assert all(name in header for name in COLUMNS)
    rows = [line for line in lines if any(key in line for key in KEYS)]
    assert len(rows) == len(KEYS) and all(PATH in row and "1,234" in row for row in rows)
