"""``ccrouter models``: every configured provider,model pair with what it can do."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ccrouter.cli.common import ConfigOption, config_path, handle_errors, new_table, print_table

if TYPE_CHECKING:
    from ccrouter.catalog import Catalog
    from ccrouter.config import ProviderConfig, Settings

__all__ = ["model_rows", "register"]

HEADERS = ("provider", "model", "context", "max output", "tools", "vision", "thinking", "routes")


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def _row(catalog: Catalog, provider: ProviderConfig, model: str, routes: list[str]) -> tuple[str, ...]:
    info = catalog.info(provider, model)
    # Unknown to the table and not described in the config: the figures are the catalog's cautious
    # default, which the user should know before trusting them.
    guessed = catalog.lookup(model) is None and provider.model(model) is None
    context = f"{info.context_window:,}" + (" (default)" if guessed else "")
    return (
        provider.name,
        model,
        context,
        f"{info.max_output_tokens:,}",
        _yes(info.tools),
        _yes(info.vision),
        _yes(info.thinking),
        ", ".join(routes),
    )


def model_rows(settings: Settings, catalog: Catalog) -> list[tuple[str, ...]]:
    """One row per configured pair (a provider without a model list gets one '(any)' row)."""
    from ccrouter.cli.serve import routes_of

    used: dict[str, list[str]] = {}
    for scenario, route in routes_of(settings):
        if "," in route:
            name, model = (part.strip() for part in route.split(",", 1))
            used.setdefault(f"{name},{model}", []).append(scenario)
    rows = []
    for provider in settings.providers:
        for spec in provider.models:
            rows.append(_row(catalog, provider, spec.name, used.get(f"{provider.name},{spec.name}", [])))
        if not provider.models:
            routed = sorted(
                {
                    s
                    for key, scenarios in used.items()
                    if key.startswith(f"{provider.name},")
                    for s in scenarios
                }
            )
            rows.append((provider.name, "(any)", "", "", "", "", "", ", ".join(routed)))
    return rows


def models(config: ConfigOption = None) -> None:
    """List the configured provider,model pairs and their capabilities (from the model catalog)."""
    from rich import box
    from rich.markup import escape

    from ccrouter.catalog import Catalog
    from ccrouter.config_file import load_settings

    with handle_errors():
        settings = load_settings(config_path(config))
        rows = model_rows(settings, Catalog.load())
    table = new_table(*HEADERS, box=box.SIMPLE_HEAD)
    for column in table.columns[2:4]:
        column.justify = "right"
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    print_table(table, whole=(0, 1))


def register(app: typer.Typer) -> None:
    app.command("models")(models)
