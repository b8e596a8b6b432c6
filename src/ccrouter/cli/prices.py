"""``ccrouter prices``: show the price table, or install a newer one (``update FILE``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, handle_errors, new_table, print_table

__all__ = ["app"]

app = typer.Typer(help="Model prices used for costs and budgets.", no_args_is_help=True)


@app.command()
def update(
    file: Annotated[
        Path,
        typer.Argument(
            help="A price table in the shape of the shipped prices.yaml, or LiteLLM's "
            "model_prices_and_context_window.json (converted on the way in)."
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Check FILE and install it in the config folder, where it replaces the shipped table."""
    from ccrouter.pricing.table import PRICE_FILE_NAME
    from ccrouter.pricing.update import read_update

    with handle_errors():
        found = read_update(file, today=datetime.now(UTC).date().isoformat())
        target = config_path(config).parent / PRICE_FILE_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".yaml.tmp")
        temporary.write_text(found.text, encoding="utf-8")
        temporary.replace(target)  # atomic: a running gateway never reads half a file
    converted = "" if found.conversion is None else f"from LiteLLM's format ({found.conversion.summary()}) "
    console().print(
        f"installed {len(found.table)} model prices {converted}(updated {found.table.updated or 'undated'}) "
        f"in {target}; restart the gateway to use them",
        markup=False,
    )


@app.command()
def show(config: ConfigOption = None) -> None:
    """The table in use (installed or shipped), with the config's overrides."""
    from rich import box
    from rich.markup import escape

    from ccrouter.config_file import load_settings
    from ccrouter.pricing import PriceTable

    path = config_path(config)
    with handle_errors():
        overrides = load_settings(path).prices if path.exists() else {}
        table = PriceTable.load(overrides, path.parent)
    out = new_table(
        "model",
        "input",
        "output",
        "cache read",
        "cache write",
        title=f"USD per million tokens (updated {table.updated})",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    for name, price in table.items():
        out.add_row(
            escape(name), str(price.input), str(price.output), str(price.cache_read), str(price.cache_write)
        )
    print_table(out)
