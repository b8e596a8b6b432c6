"""The ``ccrouter`` command. Imports stay cheap here: each command imports what it needs when it runs."""

from __future__ import annotations

from typing import Annotated

import typer

from ccrouter.cli import code, config_cmd, costs, daemon, models, prices, serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="ccrouter",
    help="A gateway between Claude Code (or any Anthropic/OpenAI client) and many model providers.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    # Tracebacks land in the daemon log: never print local variables, they can hold API keys.
    pretty_exceptions_show_locals=False,
)
serve.register(app)
daemon.register(app)
code.register(app)
models.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(costs.app, name="costs")
app.add_typer(prices.app, name="prices")


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
