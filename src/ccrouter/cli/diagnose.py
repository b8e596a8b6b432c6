"""``ccrouter diagnose``: write a redacted support bundle (``ccrouter.diagnose``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, err_console, handle_errors

__all__ = ["register"]


def diagnose(
    config: ConfigOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Where to write the bundle (default: ./ccrouter-diagnose-<time>.tar.gz)."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The gateway to ask (default: the one this config runs, if any)."),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per call to the gateway.")] = 10.0,
) -> None:
    """Collect a support bundle with no secret in it: config (masked), status, doctor, health,
    metrics, recent errors, versions."""
    import time

    from rich.markup import escape

    from ccrouter.cli.daemon import find_foreground
    from ccrouter.cli.process import log_path, running
    from ccrouter.diagnose import collect, write_bundle

    path = config_path(config)
    if url is None:
        info = running(path.parent) or find_foreground(path)
        url = None if info is None else info.url
    target = output or Path(f"ccrouter-diagnose-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
    if not target.name.endswith(".tar.gz"):
        target = target.with_name(target.name + ".tar.gz")
    with handle_errors():
        bundle = collect(path, gateway=url, log_file=log_path(path.parent), timeout_s=timeout)
        write_bundle(bundle, target)
    for name, why in sorted(bundle.missing.items()):
        err_console().print(f"[yellow]not collected[/] {escape(name)}: {escape(why)}", soft_wrap=True)
    console().print(
        f"support bundle: [cyan]{escape(str(target))}[/] ({len(bundle.files)} files, secrets masked)"
    )


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose)
