"""The ``ccrouter`` command. Imports stay cheap here: each command imports what it needs when it runs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from ccrouter.cli import (
    audit,
    claude_settings,
    code,
    codex,
    config_cmd,
    costs,
    daemon,
    diagnose,
    doctor,
    init,
    keys,
    logs,
    models,
    plugins,
    prices,
    serve,
    statusline,
)
from ccrouter.cli.help import HelpGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="ccrouter",
    cls=HelpGroup,  # no <bool> beside the flags in any command's help
    help="A gateway between Claude Code (or any Anthropic/OpenAI client) and many model providers.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    # Tracebacks land in the daemon log: never print local variables, they can hold API keys.
    pretty_exceptions_show_locals=False,
)
serve.register(app)
daemon.register(app)
logs.register(app)
code.register(app)
codex.register(app)
claude_settings.register(app)
init.register(app)
doctor.register(app)
diagnose.register(app)
models.register(app)
statusline.register(app)
audit.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(costs.app, name="costs")
app.add_typer(prices.app, name="prices")
app.add_typer(plugins.app, name="plugins")
app.add_typer(keys.app, name="keys")


def _version(value: bool) -> None:
    if value:
        from ccrouter import __version__

        typer.echo(f"ccrouter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Route Claude Code to any model: `ccrouter code`, or `ccrouter serve` and point a client at it."""


def _asks_for_help(argv: Sequence[str]) -> bool:
    return not argv or any(arg in ("--help", "--version") for arg in argv)


def add_plugin_commands(argv: Sequence[str]) -> None:
    """The installed plugins' command groups (``register_commands``). A broken plugin is one line on
    stderr naming it: ``--help`` and ``--version`` still work, any command exits 1."""
    from importlib.metadata import entry_points

    # The group is ccrouter.plugins.ENTRY_POINT_GROUP; that module (and pluggy) is imported only when
    # a plugin is installed, so that without any the CLI pays the scan alone.
    if not entry_points(group="ccrouter"):
        return
    from ccrouter.cli.common import err_console, fail
    from ccrouter.errors import PluginError
    from ccrouter.plugins import add_commands

    try:
        add_commands(app)
    except PluginError as exc:
        if not _asks_for_help(argv):
            fail(exc.message)
        from rich.markup import escape

        err_console().print(f"[bold yellow]warning:[/] {escape(exc.message)}", soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        add_plugin_commands(args)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    app(args)


if __name__ == "__main__":
    main()
