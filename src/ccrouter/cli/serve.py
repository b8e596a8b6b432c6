"""``ccrouter serve``: run the gateway in the foreground, after a banner saying what it will do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, handle_errors

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ccrouter.config import Settings

__all__ = ["HostOption", "PortOption", "register", "routes_of", "simulated_panel"]

HostOption = Annotated[str | None, typer.Option("--host", help="Bind address (default: server.host).")]
PortOption = Annotated[
    int | None, typer.Option("--port", min=0, max=65535, help="Port (default: server.port; 0: any free one).")
]

_SCENARIOS = ("default", "background", "think", "long_context", "web_search", "image")


def routes_of(settings: Settings) -> list[tuple[str, str]]:
    """(scenario, "provider,model") for every configured route, in a fixed order."""
    router = settings.router
    routes = [(name, route) for name in _SCENARIOS if (route := getattr(router, name)) is not None]
    if router.long_context is not None:
        routes.append(("long_context_threshold", f"{router.long_context_threshold} tokens"))
    if router.custom:
        routes.append(("custom", router.custom))
    return routes


def simulated_panel(path: Path) -> RenderableType:
    from rich.markup import escape
    from rich.panel import Panel

    text = (
        "[bold]No API key was found[/], so the built-in [bold]simulated[/] provider answers every request: "
        "its replies are canned, not from a real model (it can drive a tool call: 'Run: <command>').\n\n"
        "To use a real model, export one of ANTHROPIC_API_KEY, OPENAI_API_KEY, DEEPSEEK_API_KEY, "
        "GROQ_API_KEY, OPENROUTER_API_KEY, GEMINI_API_KEY or GITHUB_TOKEN, delete "
        f"{escape(str(path))} and start ccrouter again; or add a provider to that file by hand "
        "(check it with `ccrouter config validate`)."
    )
    return Panel(text, title="SIMULATED PROVIDER", border_style="bold yellow", style="yellow")


def print_banner(settings: Settings, path: Path, *, created: bool, simulated: bool, url: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from ccrouter import __version__

    out = console()
    out.print(f"[bold]ccrouter {__version__}[/] on [cyan]{url}[/]")
    out.print(f"config: {escape(str(path))}" + ("  [green](created)[/]" if created else ""))
    providers = Table("provider", "type", "models", box=box.SIMPLE, title_justify="left")
    for provider in settings.providers:
        models = ", ".join(m.name for m in provider.models) or "(any model)"
        providers.add_row(escape(provider.name), provider.type, escape(models))
    routes = Table("route", "provider,model", box=box.SIMPLE)
    for scenario, route in routes_of(settings):
        routes.add_row(scenario, escape(route))
    out.print(providers, routes)
    if simulated:
        out.print(simulated_panel(path))
    out.print(f"Use it: [bold]ANTHROPIC_BASE_URL={url} claude[/]  (or simply: [bold]ccrouter code[/])")


def serve(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Run the gateway in the foreground (Ctrl-C stops it). Creates a config on first run."""
    with handle_errors():
        from ccrouter.cli.process import base_url
        from ccrouter.config_file import load_or_create, uses_simulated

        settings, path, created = load_or_create(config_path(config))
        simulated = uses_simulated(settings)
        bind_host = host or settings.server.host
        bind_port = port if port is not None else settings.server.port
        print_banner(settings, path, created=created, simulated=simulated, url=base_url(bind_host, bind_port))
        from ccrouter.app import serve as run

        run(settings, host=bind_host, port=bind_port, simulated=simulated)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
