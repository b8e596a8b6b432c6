"""``ccrouter logs``: the background gateway's log, readable: the last lines, filtered by request id
or level, and followed (``-f``) as it grows, across a rotation of the file.

It reads the file ``ccrouter start`` writes (``<config dir>/ccrouter.log``). Without that file, it
asks a running gateway (a foreground ``ccrouter serve``) for its recent records: ``GET /api/logs``
at the URL and with the read token of ``<config dir>/statusline.json``, polled every 0.5 s with
``-f``. ``--file`` reads any other log file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, fail
from ccrouter.logfile import LEVELS as _LEVELS  # cheap: orjson only

__all__ = ["register"]


def _level(value: str | None) -> str | None:
    if value is not None and value.lower() not in _LEVELS:
        raise typer.BadParameter(f"expected one of {', '.join(_LEVELS)}")
    return value.lower() if value is not None else None


def logs(
    config: ConfigOption = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", dir_okay=False, help="A log file to read instead of the daemon's."),
    ] = None,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing lines as they come.")
    ] = False,
    request: Annotated[
        str | None, typer.Option("--request", metavar="ID", help="Only the lines of this request id.")
    ] = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            metavar="LEVEL",
            callback=_level,
            help="Only this level and above: debug, info, warning, error.",
        ),
    ] = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, metavar="N", help="How many past lines.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="The JSON records as written, one a line.")] = False,
) -> None:
    """Show the gateway's log: its file, else a running gateway's recent records.

    Each line: time, level, event, request id and key fields."""
    from ccrouter.cli.process import log_path
    from ccrouter.logfile import Record, follow, matches, render, tail

    config_dir = config_path(config).parent
    path = file.expanduser() if file is not None else log_path(config_dir)
    if not path.is_file() and file is None:
        from ccrouter.cli.gateway_logs import GatewayLogs

        source = GatewayLogs.find(config_dir)
        if source is not None:
            source.show(
                lines=lines, follow=follow_, request_id=request, level=level, as_json=as_json, out=console()
            )
            return
    if not path.is_file():
        if file is not None:
            fail(f"no log file at {path}")
        fail(
            f"no log file at {path} (`ccrouter start` writes it), and no running `ccrouter serve` of"
            f" this config answers (its URL and read token are in {config_dir / 'statusline.json'});"
            " a log redirected to a file is read with `ccrouter logs --file PATH`"
        )
    out = console()

    def accept(record: Record) -> bool:
        if as_json and record.data is None:
            return False
        return matches(record, request_id=request, level=level)

    def show(record: Record) -> None:
        if as_json:
            typer.echo(record.text)
        else:
            out.print(render(record), soft_wrap=True)  # soft_wrap: a record stays one line, for grep

    try:
        for record in tail(path, lines, accept):
            show(record)
        if follow_:
            for record in follow(path):
                if accept(record):
                    show(record)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)
