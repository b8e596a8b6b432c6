"""What every command shares: the consoles, the ``--config`` option, and ConfigError -> exit 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ccrouter.errors import CCRouterError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["ConfigOption", "config_path", "console", "err_console", "fail", "handle_errors"]

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
