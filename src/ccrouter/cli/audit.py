"""``ccrouter audit``: the audit trail (who created, rotated, revoked keys, changed roles and budgets,
reloaded the configuration, failed to authenticate), from a running gateway or the store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ccrouter.cli.common import ConfigOption, console, new_table, print_table
from ccrouter.cli.keys import JsonOption, UrlOption, run_admin

__all__ = ["register"]


def _detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return "-"
    import orjson

    return orjson.dumps(detail).decode()


def audit(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="From: 1h, 30m, 7d ago, an ISO date/time or unix seconds.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="WHEN", help="To (same forms).", show_default=False)
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            metavar="ACTION",
            help="Only this action (key.created; key.* for a prefix).",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            metavar="ACTOR",
            help="Only this actor (a key id, admin, cli:NAME).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=1, max=1000, help="At most this many rows.")
    ] = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """The audit trail: admin actions and failed admin logins, newest first."""
    from rich import box
    from rich.markup import escape

    query = {"since": since, "until": until, "action": action, "actor": actor, "limit": str(limit)}
    params = {name: value for name, value in query.items() if value}
    entries: list[dict[str, Any]] = run_admin(config, url, lambda target: target.audit(params))
    if as_json:
        import orjson

        typer.echo(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode())
        return
    if not entries:
        console().print("no audit records match")
        return
    table = new_table(
        "time", "actor", "action", "outcome", "target", "address", "detail", box=box.SIMPLE_HEAD
    )
    for entry in entries:
        table.add_row(
            entry["time"],
            escape(str(entry["actor"])),
            escape(str(entry["action"])),
            escape(str(entry["outcome"])),
            escape(entry.get("target") or "-"),
            escape(entry.get("address") or "-"),
            escape(_detail(entry.get("detail"))),
        )
    print_table(table)


def register(app: typer.Typer) -> None:
    app.command()(audit)
