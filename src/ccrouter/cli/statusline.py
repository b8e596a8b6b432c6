"""``ccrouter statusline``: the typer face of ``ccrouter.statusline.main`` (its help, its place in
``ccrouter --help``). The console script runs the same function without loading typer
(``ccrouter.cli.launch``)."""

from __future__ import annotations

from typing import Annotated

import typer

from ccrouter.statusline.line import DEFAULT_FORMAT, FIELDS

__all__ = ["register"]

_FIELDS_HELP = "; ".join(f"{{{name}}}: {text}" for name, text in FIELDS.items())


def statusline(
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help=f"The line, as a Python format string of named fields. Fields: {_FIELDS_HELP}.",
            show_default=True,
        ),
    ] = DEFAULT_FORMAT,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="The gateway (default: $CCROUTER_URL, else the URL the running gateway wrote in "
            "<config dir>/statusline.json).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="Configuration file whose folder holds the gateway's state file and ledger "
            "(default: $CCROUTER_CONFIG or ~/.ccrouter/config.yaml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """One line for Claude Code's status bar: this session's route, spend today, tokens/s, markers.

    The route that served the session's last request, its spend through the gateway today, tokens/s
    of the last answer, and a marker when a fallback served or the provider cools down.

    Reads Claude Code's statusline JSON on stdin; always exits 0. Install it in ~/.claude/settings.json
    as {"statusLine": {"type": "command", "command": "ccrouter statusline"}}.
    """
    from ccrouter.statusline.main import main

    args = ["--format", format]
    if url is not None:
        args += ["--url", url]
    if config is not None:
        args += ["--config", config]
    raise typer.Exit(main(args))


def register(app: typer.Typer) -> None:
    app.command("statusline")(statusline)
