"""``ccrouter doctor``: check the configuration, the providers and Claude Code; a table, a fix per row.

Exit 0 unless a check failed (``warn`` rows do not change it); see ``ccrouter.doctor`` for what each
status means.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, err_console, handle_errors

__all__ = ["register"]

_COLOURS = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def doctor(
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per network check.")] = 5.0,
    fix: Annotated[
        bool,
        typer.Option("--fix", help="Seed Claude Code's onboarding flag (~/.claude.json) if it is missing."),
    ] = False,
) -> None:
    """Check the config, its variables, the port, each provider, Claude Code, Redis and PostgreSQL."""
    import asyncio

    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from ccrouter.doctor import DoctorContext, run_checks, seed_onboarding

    ctx = DoctorContext(config=config_path(config), timeout_s=timeout)
    checks = asyncio.run(run_checks(ctx))
    if fix and any(check.name == "Claude Code onboarding" and check.status != "ok" for check in checks):
        with handle_errors():
            path = seed_onboarding(ctx)
        err_console().print(f"seeded hasCompletedOnboarding in {escape(str(path))}")
        checks = asyncio.run(run_checks(ctx))
    table = Table("check", "status", "detail", "fix", box=box.SIMPLE_HEAD)
    for column in table.columns:
        column.overflow = "fold"  # never cut: a truncated detail or hint is useless
    for check in checks:
        colour = _COLOURS[check.status]
        table.add_row(
            escape(check.name), f"[{colour}]{check.status}[/]", escape(check.detail), escape(check.hint)
        )
    console().print(table)
    failed = [check.name for check in checks if check.status == "fail"]
    if failed:
        err_console().print(f"[bold red]failed:[/] {escape(', '.join(failed))}", soft_wrap=True)
        raise typer.Exit(1)
    warned = any(check.status == "warn" for check in checks)
    console().print("[bold green]no check failed[/]" + (" (see the warnings)" if warned else ""))


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
