"""Error text reaches the operator whole on every path: CLI lines and tables, logs, pickling (Airflow).

The errors here carry context that looks like rich markup (``[red]``, ``[/]``, ``[link=...]``) and
``:emoji:`` codes next to the usual ``[source=..., record=...]`` tail: any path that interprets markup
would swallow part of it.
"""

from __future__ import annotations

import argparse
import logging
import pickle
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.errors import ApiError, SkysmartError

MARKUP_KEY = "300-[red]T00059[/red]"
MARKUP_NOTE = "[bold]x[/] [link=http://evil]click[/link] :thumbs_up: [/red]"


def _hostile_error() -> ApiError:
    return ApiError(
        "customer [b]row[/b] unreadable",
        source="smartacc",
        window="2024-01-01_2024-01-31",
        record_key=MARKUP_KEY,
        field="EditDate",
        request_id="sa-[i]1[/i]",
        note=MARKUP_NOTE,
    )


def _assert_whole(text: str, error: SkysmartError) -> None:
    assert str(error) in text, text
    for fragment in (MARKUP_KEY, MARKUP_NOTE, "[b]row[/b]", "sa-[i]1[/i]", "field=EditDate"):
        assert fragment in text


def test_error_text_keeps_every_context_fact() -> None:
    error = _hostile_error()
    _assert_whole(str(error), error)
    assert str(error).endswith("]")


def test_error_survives_pickling_with_its_context() -> None:
    error = _hostile_error()
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ApiError
    assert str(again) == str(error)
    assert again.record_key == MARKUP_KEY
    assert again.context["note"] == MARKUP_NOTE


def test_logged_error_is_whole(caplog: pytest.LogCaptureFixture) -> None:
    error = _hostile_error()
    with caplog.at_level(logging.ERROR, logger="skysmart.test"):
        logging.getLogger("skysmart.test").error("window failed: %s", error)
    _assert_whole(caplog.text, error)


def test_cli_prints_a_typed_error_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = _hostile_error()

    def boom(args: argparse.Namespace) -> int:
        raise error

    original = argparse.ArgumentParser.parse_args

    def parse(self: argparse.ArgumentParser, *a: Any, **k: Any) -> argparse.Namespace:
        namespace: argparse.Namespace = original(self, *a, **k)
        namespace.handler = boom  # the dispatcher's own error path, whatever the command
        return namespace

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse)
    code = main(["run", "--from", "2024-01-01", "--to", "2024-01-31"])
    assert code == 1
    _assert_whole(capsys.readouterr().err, error)


def test_run_failure_line_and_tables_keep_markup_like_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any, sandbox: Any
) -> None:
    import pipelines.run as run_module

    error = _hostile_error()

    def failing_extract(settings: Any, window_ref: str) -> dict[str, Any]:
        raise error

    for name, value in sandbox.endpoints.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(run_module._STAGE_FUNCTIONS, "extract", failing_extract)
    code = main(
        [
            "run",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-31",
            "--source",
            "smartacc",
            "--lake",
            str(tmp_path / "lake"),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    _assert_whole(out, error)


def test_table_cells_are_not_markup(capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.cli.ui import print_table, say

    print_table("t", ["rule", "value"], [["name_missing", MARKUP_KEY], ["x", MARKUP_NOTE]])
    say(("w", "red"), f" extract: {MARKUP_NOTE}")
    out = capsys.readouterr().out
    assert MARKUP_KEY in out
    assert MARKUP_NOTE in out
    assert ":thumbs_up:" in out


def test_verbose_extract_log_lines_keep_the_error_whole() -> None:
    """``skysmart extract -v`` shows retries through rich's log handler: it must not read markup either."""
    from rich.logging import RichHandler

    from pipelines.cli.ui import err_console

    error = _hostile_error()
    logger = logging.getLogger("pipelines.test_rich")
    handler = RichHandler(console=err_console, show_path=False)
    logger.addHandler(handler)
    try:
        with err_console.capture() as captured:
            logger.warning("attempt failed (%s)", error)
    finally:
        logger.removeHandler(handler)
    shown = " ".join(captured.get().split())  # the handler wraps long lines at the console width
    for fragment in (MARKUP_KEY, "[b]row[/b]", ":thumbs_up:", "[link=http://evil]click[/link]"):
        assert fragment in shown


def test_control_and_bidi_characters_in_context_are_shown_as_escapes() -> None:
    """A vendor value cannot clear the screen, forge a log line or display as another key."""
    error = ApiError(
        "row unreadable",
        record_key="300-\u202eT00059\u202c",
        field="Edit\x1b[2JDate",
        note="line one\nERROR forged line",
    )
    text = str(error)
    assert "300-\\u202eT00059\\u202c" in text and "Edit\\x1b[2JDate" in text
    assert "line one\\nERROR forged line" in text
    assert not any(ch in text for ch in "\u202e\u202c\x1b\n")
    assert error.record_key == "300-\u202eT00059\u202c"  # the attribute keeps the value as it was


def test_a_huge_context_value_is_cut_and_says_how_long_it_was() -> None:
    error = ApiError("too long", record_key="K" * 100_000)
    text = str(error)
    assert len(text) < 1_000
    assert "(100,000 chars)" in text
    assert error.record_key == "K" * 100_000
