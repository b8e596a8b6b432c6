"""What every command shares: the consoles, the ``--config`` option, and ConfigError -> exit 1."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ccrouter.errors import CCRouterError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "ConfigOption",
    "config_path",
    "console",
    "err_console",
    "fail",
    "handle_errors",
    "new_table",
    "print_table",
]

# Wider than any table: measuring with it gives a table's natural width.
_UNBOUNDED = 1_000_000

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Configuration file (default: $CCROUTER_CONFIG or ~/.ccrouter/config.yaml).",
        show_default=False,
        dir_okay=False,
    ),
]


@cache
def console() -> Console:
    # rich is imported on first use, not at startup: `ccrouter --version` stays fast.
    from rich.console import Console

    return Console(highlight=False)


@cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def new_table(*headers: str, **options: Any) -> Table:
    """A table whose cells are never cut short with an ellipsis: on a narrow terminal a long value
    (a model, a plugin path) folds onto the next line instead."""
    from rich.table import Table

    table = Table(*headers, **options)
    for column in table.columns:
        column.overflow = "fold"
    return table


def print_table(table: Table, *, whole: Sequence[int] = (), limit: int = 36) -> None:
    """Print ``table`` on stdout: fitted to a terminal; at its natural width into a pipe or a file
    (where rich would assume 80 columns and wrap or cut), so every line holds whole values.
    ``whole``: columns (names, ids) kept unbroken on a terminal too, up to ``limit`` characters,
    when the table still fits; else they fold like the others."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.text import Text

    out = console()
    wide = out.options.update(max_width=_UNBOUNDED)
    if out.is_terminal:
        for index in whole:
            column = table.columns[index]
            cells = [line for cell in column.cells for line in str(cell).splitlines()]
            column.min_width = min(limit, max((Text.from_markup(line).cell_len for line in cells), default=1))
        if Measurement.get(out, wide, table).minimum > out.width:
            for index in whole:  # rich would drop the columns that no longer fit: fold instead
                table.columns[index].min_width = None
    else:
        natural = Measurement.get(out, wide, table).maximum
        if natural > out.width:
            out = Console(file=out.file, width=natural, highlight=False, no_color=out.no_color)
    out.print(table)


def config_path(option: Path | None) -> Path:
    """The file named by ``--config``, else the default location."""
    if option is not None:
        return option.expanduser().absolute()
    from ccrouter.config_file import default_config_path

    return default_config_path().absolute()


def fail(message: str, code: int = 1) -> NoReturn:
    from rich.markup import escape

    # soft_wrap: a long message stays one line (for grep and logs), however narrow the terminal.
    err_console().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Print ccrouter's own errors (config, daemon) as one clear message and exit 1."""
    try:
        yield
    except CCRouterError as exc:
        fail(exc.message)
