"""``ccrouter costs``: what the gateway spent, from its ledger; ``costs import-claude-code`` sets it
next to what Claude Code itself recorded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from ccrouter.cli.common import (
    ConfigOption,
    config_path,
    console,
    fail,
    handle_errors,
    new_table,
    print_table,
)

if TYPE_CHECKING:
    from ccrouter.config import Settings
    from ccrouter.store import GroupRow, UsageQuery

__all__ = ["app"]

app = typer.Typer(help="Costs and usage from the gateway's ledger.", invoke_without_command=True)

SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Start: ISO date/time (UTC) or unix seconds.", show_default=False),
]
UntilOption = Annotated[str | None, typer.Option("--until", help="End (exclusive).", show_default=False)]
ByOption = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Group by a comma list of: provider, model, key, user, team, session, scenario, day, hour, "
        "project, profile, subagent.",
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="table, csv or json.")]
_NUMBERS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _load(config: Path | None) -> tuple[Settings, Path]:
    from ccrouter.config_file import load_settings

    path = config_path(config)
    return load_settings(path), path.parent


async def _reports(settings: Settings, config_dir: Path, queries: list[UsageQuery]) -> list[list[GroupRow]]:
    from ccrouter.store import make_store

    store = make_store(settings.store, config_dir)
    await store.open()
    try:
        return [await store.report(query) for query in queries]
    finally:
        await store.close()


_HEADINGS = {
    "requests": "requests",
    "errors": "errors",
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_tokens": "cache read",
    "cache_write_tokens": "cache write",
}
# Session ids are long: their table shows fewer numbers so that it fits a terminal.
_COMPACT = ("requests", "input_tokens", "output_tokens")


def _table(title: str, by: tuple[str, ...], rows: list[GroupRow], numbers: tuple[str, ...] = _NUMBERS) -> Any:
    from decimal import Decimal

    from rich import box
    from rich.markup import escape

    from ccrouter.pricing import PICOS_PER_USD

    # Cost first: on a narrow terminal the token columns at the right are the ones cropped.
    table = new_table(
        *by,
        "cost USD",
        *(_HEADINGS[n] for n in numbers),
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    for column in table.columns[len(by) :]:
        column.justify = "right"
        column.no_wrap = True
    table.columns[len(by)].min_width = len("cost USD")
    for index, column in enumerate(table.columns[: len(by)]):
        # Names and ids are kept whole up to a UUID's length (a cut session id is useless).
        column.min_width = min(36, max((len(str(row.groups[by[index]] or "-")) for row in rows), default=1))
        column.no_wrap = True
    for row in rows:
        data = row.to_dict()
        # Tables round to a hundredth of a cent; --format csv/json give the exact figure.
        cost = f"{Decimal(row.cost_picos) / PICOS_PER_USD:.4f}"
        cost += f" (+{row.unpriced} unpriced)" if row.unpriced else ""
        cells = [escape(str(data[name]) if data[name] is not None else "-") for name in by]
        table.add_row(*cells, cost, *(f"{data[name]:,}" for name in numbers))
    return table


def _emit(fmt: str, by: tuple[str, ...], rows: list[GroupRow]) -> None:
    from ccrouter.api.usage import rows_csv

    if fmt == "csv":
        typer.echo(rows_csv(by, rows), nl=False)
    else:
        typer.echo(orjson.dumps([row.to_dict() for row in rows], option=orjson.OPT_INDENT_2).decode())


@app.callback()
def costs(
    ctx: typer.Context,
    config: ConfigOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    by: ByOption = None,
    fmt: FormatOption = "table",
    top: Annotated[int, typer.Option("--top", min=1, help="Sessions shown in the top list.")] = 10,
) -> None:
    """Today, this week, this month; by provider and model; the most expensive sessions."""
    if ctx.invoked_subcommand is not None:
        return
    from ccrouter.api.usage import parse_time
    from ccrouter.budgets import period_bounds
    from ccrouter.store import GROUPS, UsageQuery

    if fmt not in ("table", "csv", "json"):
        fail(f"--format: expected table, csv or json, got {fmt!r}")
    groups = tuple(part.strip() for part in (by or "").split(",") if part.strip())
    unknown = [name for name in groups if name not in GROUPS]
    if unknown:
        fail(f"--by: unknown group {unknown[0]!r} (use {', '.join(GROUPS)})")
    with handle_errors():
        start = parse_time(since, "--since") if since else None
        end = parse_time(until, "--until") if until else None
        settings, config_dir = _load(config)
        now = time.time()
        month = period_bounds("monthly", now)[0]
        if fmt != "table" or groups:
            query = UsageQuery(by=groups or ("provider", "model"), since=start, until=end)
            (rows,) = asyncio.run(_reports(settings, config_dir, [query]))
            if fmt == "table":
                print_table(_table("usage", query.by, rows))
            else:
                _emit(fmt, query.by, rows)
            return
        base = start if start is not None else month
        queries = [
            UsageQuery(since=period_bounds("daily", now)[0]),
            UsageQuery(since=period_bounds("weekly", now)[0]),
            UsageQuery(since=month),
            UsageQuery(by=("provider", "model"), since=base, until=end),
            UsageQuery(by=("session",), since=base, until=end, limit=top),
        ]
        today, week, this_month, by_model, sessions = asyncio.run(_reports(settings, config_dir, queries))
    summary = [
        type(row)({"period": label}, *_totals(row))
        for label, rows in (("today", today), ("this week", week), ("this month", this_month))
        for row in rows
    ]
    label = "since " + since if since else "this month"
    out = console()
    from ccrouter.store import describe_store

    out.print(f"ledger: {describe_store(settings.store, config_dir)}")
    print_table(_table("spending", ("period",), summary))
    print_table(_table(f"by provider and model ({label})", ("provider", "model"), by_model))
    print_table(_table(f"top sessions ({label})", ("session",), sessions, _COMPACT))


def _totals(row: GroupRow) -> tuple[int, ...]:
    return (
        row.requests,
        row.errors,
        row.input_tokens,
        row.output_tokens,
        row.cache_read_tokens,
        row.cache_write_tokens,
        row.estimated,
        row.cost_picos,
        row.unpriced,
    )


@app.command("import-claude-code")
def import_claude_code(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Transcripts folder (default: ~/.claude/projects).", show_default=False),
    ] = None,
    config: ConfigOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Claude Code's own usage per session (its transcripts) next to what the gateway billed."""
    from ccrouter.store import UsageQuery
    from ccrouter.store.transcripts import default_transcripts_dir, read_transcripts

    root = directory or default_transcripts_dir()
    if not root.exists():
        fail(f"{root}: no such folder (Claude Code writes its transcripts under ~/.claude/projects)")
    with handle_errors():
        settings, config_dir = _load(config)
        items = read_transcripts(root)
        (billed,) = asyncio.run(_reports(settings, config_dir, [UsageQuery(by=("session",))]))
    rows = _compare(settings, config_dir, items, {row.groups["session"]: row for row in billed})
    if fmt == "json":
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    if fmt == "csv":
        import csv
        import sys

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["session"])
        writer.writeheader()
        writer.writerows(rows)
        return
    _print_comparison(rows, len(items))


def _compare(
    settings: Settings, config_dir: Path, items: list[Any], billed: dict[str | None, GroupRow]
) -> list[dict[str, Any]]:
    from ccrouter.pricing import PriceTable, cost_picos, format_usd
    from ccrouter.store.transcripts import session_totals

    table = PriceTable.load(settings.prices, config_dir)
    priced: dict[str, int] = {}
    for item in items:
        price = table.lookup(item.model)
        priced[item.session_id] = priced.get(item.session_id, 0) + (
            cost_picos(item.usage, price) if price else 0
        )
    rows = []
    for total in session_totals(items):
        gateway = billed.get(total.session_id)
        rows.append(
            {
                "session": total.session_id,
                "models": ",".join(sorted(total.models)),
                "cc_messages": total.messages,
                "cc_input_tokens": total.usage.input_tokens,
                "cc_output_tokens": total.usage.output_tokens,
                "cc_cache_read_tokens": total.usage.cache_read_input_tokens,
                "cc_cache_write_tokens": total.usage.cache_creation_input_tokens,
                "cc_cost_usd_at_anthropic_prices": format_usd(priced.get(total.session_id, 0)),
                "gateway_requests": gateway.requests if gateway else 0,
                "gateway_input_tokens": gateway.input_tokens if gateway else 0,
                "gateway_output_tokens": gateway.output_tokens if gateway else 0,
                "gateway_cost_usd": format_usd(gateway.cost_picos) if gateway else "0",
            }
        )
    return rows


def _print_comparison(rows: list[dict[str, Any]], messages: int) -> None:
    from rich import box
    from rich.markup import escape

    table = new_table(
        "session",
        "models",
        "CC msgs",
        "CC in",
        "CC out",
        "CC cache r/w",
        "CC cost*",
        "gw reqs",
        "gw in",
        "gw out",
        "gw cost",
        box=box.SIMPLE_HEAD,
    )
    for column in table.columns[2:]:
        column.justify = "right"
    for row in rows:
        table.add_row(
            escape(row["session"]),
            escape(row["models"]),
            str(row["cc_messages"]),
            f"{row['cc_input_tokens']:,}",
            f"{row['cc_output_tokens']:,}",
            f"{row['cc_cache_read_tokens']:,}/{row['cc_cache_write_tokens']:,}",
            row["cc_cost_usd_at_anthropic_prices"],
            str(row["gateway_requests"]),
            f"{row['gateway_input_tokens']:,}",
            f"{row['gateway_output_tokens']:,}",
            row["gateway_cost_usd"],
        )
    print_table(table)
    console().print(
        f"{messages} assistant messages in {len(rows)} sessions. *CC cost: Claude Code's tokens at the "
        "price table's rate for the model it asked for; the gateway bills the model it routed to."
    )
