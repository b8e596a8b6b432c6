"""``ccrouter keys``: create, list, show, update, rotate and revoke managed client keys, through a
running gateway's admin API or the store directly (``ccrouter.cli.admin``). A new or rotated key's
secret is printed once; nothing else ever shows it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer

from ccrouter.cli.common import (
    ConfigOption,
    console,
    err_console,
    fail,
    handle_errors,
    new_table,
    print_table,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ccrouter.cli.admin import AdminTarget
    from ccrouter.config import Settings

__all__ = ["app", "parse_duration", "run_admin"]

app = typer.Typer(
    help="Managed client keys: create, list, show, update, rotate, revoke.", no_args_is_help=True
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help="The gateway's URL (with $CCROUTER_ADMIN_KEY; default: $CCROUTER_URL, else server.host/port).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The key's id (key_...).", show_default=False)]
UserOption = Annotated[
    str | None, typer.Option("--user", metavar="USER", help="The person it belongs to.", show_default=False)
]
TeamOption = Annotated[
    str | None, typer.Option("--team", metavar="TEAM", help="Its team.", show_default=False)
]
RoleOption = Annotated[
    str | None,
    typer.Option("--role", metavar="ROLE", help="client, viewer, operator or admin.", show_default=False),
]
ModelsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--models",
        metavar="ROUTE",
        help="Routes it may use (provider,model | provider,* | model); repeat for more.",
        show_default=False,
    ),
]
RpmOption = Annotated[
    int | None, typer.Option("--rpm", metavar="N", help="Requests per minute.", show_default=False)
]
TpmOption = Annotated[
    int | None, typer.Option("--tpm", metavar="N", help="Tokens per minute.", show_default=False)
]
BudgetOption = Annotated[
    float | None,
    typer.Option("--budget-usd", metavar="USD", help="Spending limit per --period.", show_default=False),
]
PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period",
        metavar="PERIOD",
        help="The budget's period: daily, weekly or monthly.",
        show_default=False,
    ),
]
ExpiresOption = Annotated[
    str | None,
    typer.Option("--expires", metavar="WHEN", help="30d, 12h, 90m or an ISO date/time.", show_default=False),
]
_T = TypeVar("_T")
_NOT_REQUIRED = (
    "note: server.auth_required is false here: requests without a key are accepted too; "
    "set server.require_auth: true"
)


def run_admin(
    config: Path | None,
    url: str | None,
    operation: Callable[[AdminTarget], Coroutine[Any, Any, _T]],
    *,
    note: bool = False,
) -> _T:
    """Run ``operation(target)`` on the admin target; ccrouter's errors (and an unreachable store)
    become one line and exit 1. ``note``: say when the gateway accepts requests without a key."""
    import sqlite3

    from ccrouter.cli.admin import target_for

    with handle_errors():
        try:
            target, settings = target_for(config, url)
            result = asyncio.run(operation(target))
        except (OSError, sqlite3.Error) as exc:  # a store that cannot be opened (a path, a server)
            fail(f"cannot open the store: {exc}")
    if note:
        _auth_note(settings)
    return result


def _auth_note(settings: Settings | None) -> None:
    if settings is not None and not settings.server.auth_required:
        err_console().print(f"[yellow]{_NOT_REQUIRED}[/]", soft_wrap=True)


def parse_duration(value: str, option: str) -> float:
    """``90s``, ``30m``, ``1h``, ``2d`` or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
    text = value.strip().lower()
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        fail(f"{option}: expected a duration such as 90s, 30m, 1h or 2d, got {value!r}")
    if not seconds >= 0:
        fail(f"{option}: expected a duration of 0 or more, got {value!r}")
    return seconds


def _models(values: list[str] | None) -> list[str] | None:
    """The routes of ``--models``: the option repeated, or one value of routes apart by spaces
    (a route itself holds a comma: ``provider,model``)."""
    if not values:
        return None
    return [part for value in values for part in value.split() if part]


def _body(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _emit_json(data: object) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _limits(view: dict[str, Any]) -> str:
    parts = []
    if view.get("rpm"):
        parts.append(f"{view['rpm']} rpm")
    if view.get("tpm"):
        parts.append(f"{view['tpm']} tpm")
    if view.get("budget_usd"):
        parts.append(f"${view['budget_usd']:g}/{view.get('budget_period')}")
    if view.get("models"):
        parts.append("models " + " ".join(view["models"]))
    return ", ".join(parts) or "-"


def _print_secret(view: dict[str, Any], verb: str) -> None:
    from rich.markup import escape

    out = console()
    out.print(f"{verb} key {escape(view['id'])} ({escape(view['name'])}), role {view['role']}")
    out.print("the key, shown this once (store it now):")
    typer.echo(view["key"])


@app.command()
def create(
    name: Annotated[
        str, typer.Option("--name", metavar="NAME", help="A name people tell it by.", show_default=False)
    ],
    user: UserOption = None,
    team: TeamOption = None,
    role: RoleOption = None,
    models: ModelsOption = None,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    budget_usd: BudgetOption = None,
    period: PeriodOption = None,
    expires: ExpiresOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print its secret (once)."""
    body = _body(
        name=name,
        user=user,
        team=team,
        role=role,
        models=_models(models),
        rpm=rpm,
        tpm=tpm,
        budget_usd=budget_usd,
        budget_period=period,
        expires=expires,
    )
    view: dict[str, Any] = run_admin(config, url, lambda target: target.create(body), note=True)
    if as_json:
        _emit_json(view)
    else:
        _print_secret(view, "created")


@app.command("list")
def list_keys(as_json: JsonOption = False, url: UrlOption = None, config: ConfigOption = None) -> None:
    """Every key (never a secret): limits, status, last use, spend this period."""
    from rich import box
    from rich.markup import escape

    views: list[dict[str, Any]] = run_admin(config, url, lambda target: target.list())
    if as_json:
        _emit_json(views)
        return
    table = new_table(
        "id", "name", "role", "user", "team", "limits", "status", "last used", "spend", box=box.SIMPLE_HEAD
    )
    for view in views:
        table.add_row(
            escape(view["id"]),
            escape(view["name"]),
            view["role"],
            escape(view.get("user") or "-"),
            escape(view.get("team") or "-"),
            escape(_limits(view)),
            view["status"],
            view.get("last_used_at") or "never",
            f"${view['spend_usd']:.4f} ({view['spend_period']})",
        )
    if not views:
        console().print("no managed keys yet: `ccrouter keys create --name NAME`")
        return
    print_table(table, whole=(0,))


def _show(view: dict[str, Any]) -> None:
    from rich.markup import escape

    out = console()
    for name, value in view.items():
        if name == "models" and value is not None:
            value = " ".join(value)
        shown = "-" if value is None else str(value)
        out.print(f"{name + ':':<16}{escape(shown)}", soft_wrap=True)


@app.command()
def show(
    key_id: IdArgument, as_json: JsonOption = False, url: UrlOption = None, config: ConfigOption = None
) -> None:
    """One key, its limits and its spend this period."""
    view: dict[str, Any] = run_admin(config, url, lambda target: target.show(key_id))
    _emit_json(view) if as_json else _show(view)


@app.command()
def revoke(
    key_id: IdArgument, as_json: JsonOption = False, url: UrlOption = None, config: ConfigOption = None
) -> None:
    """Revoke a key: refused from now on, everywhere."""
    from rich.markup import escape

    view: dict[str, Any] = run_admin(config, url, lambda target: target.revoke(key_id))
    if as_json:
        _emit_json(view)
    else:
        console().print(f"revoked key {escape(view['id'])} ({escape(view['name'])})")


@app.command()
def rotate(
    key_id: IdArgument,
    grace: Annotated[
        str | None,
        typer.Option(
            "--grace",
            metavar="DURATION",
            help="How long the old secret works on (90s, 30m, 1h, 2d; default server.keys.rotation_grace_s).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Give a key a new secret (printed once); the old one works for a grace period."""
    seconds = None if grace is None else parse_duration(grace, "--grace")
    view: dict[str, Any] = run_admin(config, url, lambda target: target.rotate(key_id, seconds))
    if as_json:
        _emit_json(view)
        return
    _print_secret(view, "rotated")
    until = view.get("rotated_until")
    console().print(f"the old secret works until {until}" if until else "the old secret no longer works")


_CLEARABLE = ("user", "team", "models", "rpm", "tpm", "budget", "expires")


@app.command()
def update(
    key_id: IdArgument,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="A new name.", show_default=False)
    ] = None,
    user: UserOption = None,
    team: TeamOption = None,
    role: RoleOption = None,
    models: ModelsOption = None,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    budget_usd: BudgetOption = None,
    period: PeriodOption = None,
    expires: ExpiresOption = None,
    clear: Annotated[
        str | None,
        typer.Option(
            "--clear",
            metavar="FIELDS",
            help=f"Remove settings: a comma list of {', '.join(_CLEARABLE)}.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Change a key's role, owner, routes, limits, budget or expiry."""
    body: dict[str, Any] = _body(
        name=name,
        user=user,
        team=team,
        role=role,
        models=_models(models),
        rpm=rpm,
        tpm=tpm,
        budget_usd=budget_usd,
        budget_period=period,
        expires=expires,
    )
    for field in (part.strip() for part in (clear or "").split(",") if part.strip()):
        if field not in _CLEARABLE:
            fail(f"--clear: unknown setting {field!r} (use {', '.join(_CLEARABLE)})")
        body.update({"budget_usd": None} if field == "budget" else {field: None})
    if not body:
        fail("nothing to change: give at least one option (see --help)")
    view: dict[str, Any] = run_admin(config, url, lambda target: target.update(key_id, body))
    _emit_json(view) if as_json else _show(view)
