"""``ccrouter config validate | show | import-ccr``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, err_console, fail, handle_errors

if TYPE_CHECKING:
    from ccrouter.config import Settings

__all__ = ["app"]

app = typer.Typer(help="Check or convert configuration files.", no_args_is_help=True)


class _AnyVariable(Mapping[str, str]):
    """An environment where every variable is set: validates a document's shape, not its secrets."""

    def __getitem__(self, key: str) -> str:
        return "placeholder"

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _check_transformers(settings: Settings, base_dir: Path | None) -> None:
    """Every transformer the settings name exists (built-in or installed) and takes its options, as
    the gateway checks when it starts."""
    from ccrouter.plugins import Registry, load_plugins
    from ccrouter.transformers.apply import build_transformers

    registry = Registry.build(load_plugins(settings.plugins, base_dir=base_dir))
    build_transformers(settings.providers, registry.transformers)


@app.command()
def validate(
    path: Annotated[
        Path | None,
        typer.Argument(help="File to check (default: $CCROUTER_CONFIG or ~/.ccrouter/config.yaml)."),
    ] = None,
) -> None:
    """Load a configuration exactly as the gateway would; print a summary or every problem."""
    from rich.markup import escape

    from ccrouter.cli.serve import routes_of
    from ccrouter.config_file import load_settings, uses_simulated

    target = config_path(path)
    with handle_errors():
        settings = load_settings(target)
        _check_transformers(settings, target.parent)
    out = console()
    out.print(f"[bold green]OK[/] {escape(str(target))}")
    for provider in settings.providers:
        models = ", ".join(m.name for m in provider.models) or "(any model)"
        out.print(f"  provider {escape(provider.name)} ({provider.type}): {escape(models)}")
    for scenario, route in routes_of(settings):
        out.print(f"  route {scenario}: {escape(route)}")
    if settings.server.api_keys:
        out.print(f"  client keys: {len(settings.server.api_keys)}")
    if uses_simulated(settings):
        out.print("  [yellow]the default route goes to the simulated provider (no real model)[/]")


@app.command()
def show(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """The effective configuration: the file with every default filled in and ${VAR} resolved, every
    secret masked (as GET /api/config shows it)."""
    import orjson

    from ccrouter.config_file import dump_yaml, load_settings
    from ccrouter.config_view import masked_settings

    target = config_path(config)
    with handle_errors():
        data = orjson.loads(orjson.dumps(masked_settings(load_settings(target)), default=str))
    if as_json:
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(f"# {target} (effective configuration; secrets masked)\n{dump_yaml(data)}", nl=False)


@app.command("import-ccr")
def import_ccr(
    path: Annotated[Path, typer.Argument(help="claude-code-router config.json to convert.", dir_okay=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the YAML here instead of printing it.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists.")] = False,
) -> None:
    """Convert a claude-code-router config.json into ccrouter YAML ($VAR references are kept)."""
    from rich.markup import escape

    from ccrouter.ccr_import import convert_ccr, parse_ccr_json
    from ccrouter.config_file import dump_yaml, settings_from_data, write_private
    from ccrouter.errors import ConfigError

    with handle_errors():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        result = convert_ccr(parse_ccr_json(text, source=str(path)))
    document, warnings = result.document, result.warnings
    try:
        settings = settings_from_data(document, _AnyVariable(), source="converted configuration")
        _check_transformers(settings, None)
    except ConfigError as exc:
        warnings.append(f"the result does not validate yet; fix it by hand:\n{exc.message}")
    yaml_text = f"# Converted from {path.name} by `ccrouter config import-ccr`.\n" + dump_yaml(document)
    if output is None:
        typer.echo(yaml_text, nl=False)
    elif output.exists() and not force:
        fail(f"{output} exists; pass --force to overwrite it")
    else:
        write_private(output, yaml_text)
        console().print(f"wrote {escape(str(output))}")
    report = err_console()
    for note in result.notes:
        report.print(f"[green]kept:[/] {escape(note)}")
    for warning in warnings:
        report.print(f"[yellow]warning:[/] {escape(warning)}")
