"""``ccrouter plugins list``: every plugin the gateway would load, built-in or not, with its version,
the hooks it implements and what it registers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, handle_errors, new_table, print_table

if TYPE_CHECKING:
    from ccrouter.config import Settings
    from ccrouter.plugins import PluginInfo

__all__ = ["app"]

app = typer.Typer(help="The plugins ccrouter loads: its built-ins, installed ones, the config's.")


def _settings(option: Path | None) -> tuple[Settings | None, Path | None]:
    """The config named by ``--config``; else the default file if there is one (its ``plugins:``)."""
    from ccrouter.config_file import load_settings

    path = config_path(option)
    if option is None and not path.is_file():
        return None, None
    return load_settings(path), path.parent


def _plugins(option: Path | None) -> list[PluginInfo]:
    from ccrouter.plugins import Extensions, Registry, describe, load_plugins

    settings, base_dir = _settings(option)
    registry = Registry.build(load_plugins(settings.plugins if settings else (), base_dir=base_dir))
    # The hooks that take the settings (routing rules, response hooks...) can only be asked with some.
    extensions = Extensions.build(registry, settings) if settings is not None else None
    return describe(registry, extensions)


@app.command("list")
def list_plugins(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every plugin, in load order: name, origin, version, hooks, and what it registers."""
    with handle_errors():
        plugins = _plugins(config)
    if as_json:
        import orjson

        rows = [
            {
                "name": p.name,
                "origin": p.origin,
                "version": p.version,
                "hooks": list(p.hooks),
                "provides": list(p.provides),
            }
            for p in plugins
        ]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    from rich import box
    from rich.markup import escape

    # Two columns, each value whole on its line: the name with its origin and version under it; the
    # hooks, then what it registers grouped by kind. Readable on an 80-column terminal.
    table = new_table("plugin", "hooks and what they register", box=box.SIMPLE)
    for p in plugins:
        details = [f"[bold]{', '.join(p.hooks)}[/]", *(escape(line) for line in _grouped(p.provides))]
        table.add_row(f"{escape(p.name)}\n[dim]{p.origin} {escape(p.version or '')}[/]", "\n".join(details))
    print_table(table, whole=(0,), limit=40)


def _grouped(provides: tuple[str, ...]) -> list[str]:
    """``("provider openai", "provider gemini", "rule x")`` -> ``["provider: openai, gemini", "rule: x"]``."""
    kinds: dict[str, list[str]] = {}
    for item in provides:
        kind, _, name = item.rpartition(" ")
        kinds.setdefault(kind or item, []).append(name if kind else "")
    return [f"{kind}: {', '.join(n for n in names if n)}".rstrip(": ") for kind, names in kinds.items()]
