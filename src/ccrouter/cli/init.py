"""``ccrouter init``: write a first configuration, by a short wizard or, with ``--yes``, from flags.

Keys are never written into the config: a key found in the environment is referenced as ``${VAR}``,
a key typed in the wizard (never echoed) goes to ``~/.ccrouter/keys/<provider>`` (mode 0600) and is
referenced as ``${file:~/.ccrouter/keys/<provider>}``. Each provider gets one cheap test call (its
models list, else a one-token message) unless ``--no-test``.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, err_console, fail, handle_errors

if TYPE_CHECKING:
    from ccrouter.init_config import InitPlan, ProviderChoice
    from ccrouter.probe import ProbeResult

__all__ = ["register", "resolve_flags"]

_ROUTE_HELP = "Route as provider,model."
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class _Missing(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def per_provider(values: Sequence[str], names: Sequence[str], flag: str) -> dict[str, str]:
    """``NAME=VALUE`` for a named provider, or a bare ``VALUE`` when there is exactly one provider."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if sep and name in names:
            out[name] = rest
        elif len(names) == 1:
            out[names[0]] = value
        else:
            raise _Missing([f"{flag} {value!r}: with several providers, write {flag} NAME=VALUE"])
    return out


def resolve_flags(
    names: Sequence[str],
    environ: Mapping[str, str],
    *,
    types: Sequence[str] = (),
    vendors: Sequence[str] = (),
    base_urls: Sequence[str] = (),
    key_envs: Sequence[str] = (),
) -> list[ProviderChoice]:
    """The providers the flags describe, presets filling the gaps; every missing value at once."""
    from ccrouter.init_config import ProviderChoice
    from ccrouter.presets import preset

    problems: list[str] = []
    typed = per_provider(types, names, "--type")
    vendored = per_provider(vendors, names, "--vendor")
    urls = per_provider(base_urls, names, "--base-url")
    keys = per_provider(key_envs, names, "--api-key-env")
    choices = []
    for name in names:
        known = preset(name)
        wire = typed.get(name) or (known.wire if known else "openai")
        base_url = urls.get(name) or (known.base_url if known else None)
        if wire == "openai" and not base_url and not vendored.get(name):
            problems.append(f"--base-url for provider {name!r} (not a known provider: where is it?)")
        key: str | None = None
        if name in keys:
            key = "${" + keys[name].removeprefix("$").strip("{}") + "}"
        elif known is not None and known.needs_key:
            var = known.key_var(environ)
            if var is None:
                problems.append(
                    f"--api-key-env for provider {name!r} (none of {', '.join(known.key_vars)} is set)"
                )
            key = "${" + (var or known.key_vars[0]) + "}"
        vendor = vendored.get(name) or (known.vendor if known else None)
        models = known.models if known else ()
        choices.append(ProviderChoice(name, wire, vendor, base_url, key, models))
    if problems:
        raise _Missing(problems)
    return choices


def _default_routes(choices: Sequence[ProviderChoice], given: Mapping[str, str | None]) -> dict[str, str]:
    """The routes given, else the first provider's first model and its preset's scenario picks."""
    from ccrouter.presets import preset

    routes = {scenario: route for scenario, route in given.items() if route}
    if "default" not in routes:
        first = next((choice for choice in choices if choice.models), None)
        if first is None:
            raise _Missing(["--default provider,model (no provider has a known model list)"])
        routes["default"] = f"{first.name},{first.models[0]}"
        known = preset(first.name)
        for scenario in ("background", "think", "long_context"):
            pick = getattr(known, scenario, None) if known else None
            if pick and scenario not in routes:
                routes[scenario] = f"{first.name},{pick}"
    names = {choice.name for choice in choices}
    bad = [
        f"--{scenario.replace('_', '-')} {route!r}: not provider,model of a chosen provider ({sorted(names)})"
        for scenario, route in routes.items()
        if route.count(",") != 1
        or route.split(",")[0].strip() not in names
        or not route.split(",")[1].strip()
    ]
    if bad:
        raise _Missing(bad)
    return routes


def probe_choices(
    choices: Sequence[ProviderChoice], environ: Mapping[str, str], limit_s: float
) -> dict[str, ProbeResult]:
    """One test call per provider, concurrently. The configs (key files read) and the plugin registry
    are built first, off the event loop."""
    from ccrouter.config import ProviderConfig, registry_context
    from ccrouter.config_file import interpolate
    from ccrouter.errors import ConfigError
    from ccrouter.plugins import Registry, load_plugins
    from ccrouter.probe import ProbeResult, probe_provider

    registry = Registry.build(load_plugins([]))
    results: dict[str, ProbeResult] = {}
    configs: dict[str, ProviderConfig] = {}
    for choice in choices:
        try:
            data = interpolate(choice.document(()), environ, ("providers", choice.name))
            configs[choice.name] = ProviderConfig.model_validate(data, context=registry_context(registry))
        except (ConfigError, ValueError) as exc:
            results[choice.name] = ProbeResult(
                "error", getattr(exc, "message", None) or str(exc).splitlines()[0]
            )

    async def probe_all() -> list[ProbeResult]:
        return await asyncio.gather(*(probe_provider(c, registry, limit_s=limit_s) for c in configs.values()))

    results.update(zip(configs, asyncio.run(probe_all()), strict=True))
    return {choice.name: results[choice.name] for choice in choices}


def show_probes(results: Mapping[str, ProbeResult]) -> None:
    from rich.markup import escape

    for name, result in results.items():
        mark = "[green]ok[/]" if result.ok else "[red]failed[/]"
        console().print(f"  test {escape(name)}: {mark} ({escape(result.detail)})", soft_wrap=True)


def with_listed_models(choice: ProviderChoice, result: ProbeResult | None) -> ProviderChoice:
    """A custom provider without known models takes the ones its models list answered."""
    import dataclasses

    if result is None or not result.models or choice.models:
        return choice
    return dataclasses.replace(choice, models=result.models[:20])


def _placeholder_environ(plan: InitPlan, environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``environ`` plus a placeholder for each ``${VAR}`` key reference not set now (named back): the
    file is valid once the variable is exported."""
    env = dict(environ)
    unset = []
    for choice in plan.providers:
        match = _REFERENCE.match(choice.api_key or "")
        if match and not environ.get(match.group(1)):
            env[match.group(1)] = "placeholder"
            unset.append(match.group(1))
    return env, unset


def _write(path: Path, plan: InitPlan, environ: Mapping[str, str], force: bool) -> None:
    from rich.markup import escape

    from ccrouter.init_config import write_config

    env, unset = _placeholder_environ(plan, environ)
    with handle_errors():
        backup = write_config(path, plan, env, force=force)
    out = console()
    if backup is not None:
        out.print(f"kept the previous configuration as {escape(str(backup))}")
    out.print(f"[bold green]wrote[/] {escape(str(path))}")
    for var in unset:
        err_console().print(f"[yellow]warning:[/] {var} is not set: export it before starting the gateway")
    config_flag = "" if path == config_path(None) else f" --config {path}"
    out.print("Next: [bold]ccrouter code[/] (Claude Code through the gateway)", soft_wrap=True)
    if config_flag:
        out.print(
            f"  (this file is not the default one: CCROUTER_CONFIG={escape(str(path))} ccrouter code)",
            soft_wrap=True,
        )
    out.print(f"Check everything: [bold]ccrouter doctor{escape(config_flag)}[/]", soft_wrap=True)


def init(
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider", metavar="NAME", help="A provider to add (repeatable): a known one or a name."
        ),
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            metavar="[NAME=]TYPE",
            help="Provider type: anthropic, openai, gemini, openai_responses (or a plugin's).",
        ),
    ] = None,
    vendor: Annotated[
        list[str] | None,
        typer.Option("--vendor", metavar="[NAME=]VENDOR", help="Vendor profile (quirks), e.g. deepseek."),
    ] = None,
    base_url: Annotated[
        list[str] | None,
        typer.Option("--base-url", metavar="[NAME=]URL", help="Base URL of the provider's API."),
    ] = None,
    api_key_env: Annotated[
        list[str] | None,
        typer.Option("--api-key-env", metavar="[NAME=]VAR", help="Environment variable holding the key."),
    ] = None,
    default: Annotated[
        str | None, typer.Option("--default", metavar="PROVIDER,MODEL", help=_ROUTE_HELP)
    ] = None,
    background: Annotated[
        str | None, typer.Option("--background", metavar="PROVIDER,MODEL", help=_ROUTE_HELP)
    ] = None,
    think: Annotated[str | None, typer.Option("--think", metavar="PROVIDER,MODEL", help=_ROUTE_HELP)] = None,
    long_context: Annotated[
        str | None, typer.Option("--long-context", metavar="PROVIDER,MODEL", help=_ROUTE_HELP)
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Gateway port (default 3456).")] = None,
    config: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="No questions: flags and defaults only.")] = False,
    no_test: Annotated[bool, typer.Option("--no-test", help="Skip the test call per provider.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing file (kept as a backup).")
    ] = False,
    test_timeout: Annotated[float, typer.Option("--test-timeout", help="Seconds per test call.")] = 5.0,
) -> None:
    """Write a configuration: a wizard (providers, keys, a test call each, routes, port), or --yes."""
    import os

    path = config_path(config)
    if path.exists() and not force:
        fail(f"{path} exists; pass --force to replace it (the old file is kept as a backup)")
    environ = dict(os.environ)
    if not yes:
        if not sys.stdin.isatty():
            fail("no terminal to ask questions on: use --yes with --provider, --default... (see --help)")
        from ccrouter.cli.init_wizard import run_wizard

        plan = run_wizard(
            environ,
            probe=None if no_test else lambda choices: probe_choices(choices, environ, test_timeout),
            port=port,
            preselected=provider or [],
            base_urls=base_url or [],
        )
    else:
        flags = _Flags(provider or [], type_ or [], vendor or [], base_url or [], api_key_env or [])
        given = {"default": default, "background": background, "think": think, "long_context": long_context}
        plan = _from_flags(flags, given, environ, port, None if no_test else test_timeout)
    _write(path, plan, environ, force)


@dataclass(frozen=True)
class _Flags:
    providers: list[str]
    types: list[str]
    vendors: list[str]
    base_urls: list[str]
    key_envs: list[str]


def _from_flags(
    flags: _Flags,
    given: Mapping[str, str | None],
    environ: Mapping[str, str],
    port: int | None,
    test_timeout: float | None,
) -> InitPlan:
    from ccrouter.init_config import InitPlan

    if not flags.providers:
        fail("missing: --provider NAME (with --yes, at least one)")
    try:
        choices = resolve_flags(
            flags.providers,
            environ,
            types=flags.types,
            vendors=flags.vendors,
            base_urls=flags.base_urls,
            key_envs=flags.key_envs,
        )
        if test_timeout is not None:
            results = probe_choices(choices, environ, test_timeout)
            show_probes(results)
            choices = [with_listed_models(choice, results.get(choice.name)) for choice in choices]
        routes = _default_routes(choices, given)
    except _Missing as exc:
        fail("missing or wrong values:\n  " + "\n  ".join(exc.problems))
    return InitPlan(tuple(choices), routes, 3456 if port is None else port)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
