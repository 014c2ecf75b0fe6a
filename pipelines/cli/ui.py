"""Terminal output shared by every command: one console, one progress style, one table style.

Data never goes through rich markup: vendor values and error texts hold brackets (an error ends in
``[source=..., record=...]``), which markup would swallow or misread as styles. Table cells and
:func:`say` parts are :class:`rich.text.Text`, progress details are shown without markup, and the
consoles replace no ``:emoji:`` codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

T = TypeVar("T")

console = Console(stderr=False, highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)
# Piped output (files, CI logs) keeps whole lines instead of wrapping them at 80 columns, so a printed
# command or path can be copied back; print_table gives tables room for whole cells.
PIPED_WIDTH = 1_000
console.soft_wrap = not console.is_terminal
err_console.soft_wrap = not err_console.is_terminal


def make_progress(*, transient: bool = False) -> Progress:
    """A progress display on stderr, so stdout stays clean for summaries and pipes."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}", markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    )


def track(label: str, items: Sequence[T]) -> Iterator[T]:
    """Yield ``items`` one by one under a progress bar showing the current one (a window, usually)."""
    with make_progress() as progress:
        task = progress.add_task(label, total=len(items), detail="")
        for item in items:
            progress.update(task, detail=str(item))
            yield item
            progress.advance(task)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A summary table on stdout; numbers are right-aligned.

    A terminal too narrow for the whole table gets the rows as records instead: the row's key (its first
    cell: a window, a rule, a customer key) on a line of its own, never cut, then ``column value`` pairs
    that wrap between pairs. So two rows never look alike because their keys were shortened, and a path
    is never broken in the middle.
    """
    rows = [list(r) for r in rows]
    cells = [[Text("" if v is None else f"{v:,}" if isinstance(v, int) else str(v)) for v in r] for r in rows]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float) for r in rows if r[i] is not None)
        for i in range(len(columns))
    ]
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if numeric[i] else "left")
    for row in cells:
        table.add_row(*row)
    if console.is_terminal:
        natural = sum(max([len(name), *(c[i].cell_len for c in cells)]) for i, name in enumerate(columns))
        if natural + 3 * len(columns) + 1 <= console.width:
            console.print(table)
        else:
            _print_records(title, columns, cells)
    else:  # a console of its own: rich never widens past a console's width, which may be pinned at 80
        wide = Console(file=console.file, width=PIPED_WIDTH, highlight=False, color_system=None, emoji=False)
        natural = Measurement.get(wide, wide.options, table).maximum
        Console(file=console.file, width=natural, highlight=False, color_system=None, emoji=False).print(
            table
        )


def _print_records(title: str, columns: Sequence[str], cells: list[list[Text]]) -> None:
    console.print(Text(title, style="italic"))
    for row in cells:
        console.print(Text(row[0].plain, style="bold"), soft_wrap=True)
        pairs = [
            Text.assemble((f"{name} ", "dim"), cell) for name, cell in zip(columns[1:], row[1:], strict=True)
        ]
        console.print(Text("  ") + Text("  ").join(p for p in pairs if p.plain.strip()), overflow="fold")


def say(*parts: str | tuple[str, str], err: bool = False) -> None:
    """Print one line of plain parts; a ``(text, style)`` part is styled. Nothing is read as markup.

    For lines that carry data or error text, which must reach the operator whole, brackets included.
    """
    line = Text.assemble(*parts)
    (err_console if err else console).print(line, soft_wrap=True)
