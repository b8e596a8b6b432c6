"""``ccrouter serve``: run the gateway in the foreground, after a banner saying what it will do.

``--workers N`` runs N gateway processes on one port: each binds it with ``SO_REUSEPORT`` and the
kernel spreads new connections across them (Linux; see socket(7)). The parent only supervises: it
forwards SIGINT/SIGTERM (and SIGHUP, on which each worker reloads its configuration), and stops them
all when one of them exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, fail, handle_errors

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ccrouter.config import Settings

__all__ = [
    "HostOption",
    "PortOption",
    "WatchOption",
    "WorkersOption",
    "register",
    "routes_of",
    "run_workers",
    "simulated_panel",
]

HostOption = Annotated[str | None, typer.Option("--host", help="Bind address (default: server.host).")]
PortOption = Annotated[
    int | None, typer.Option("--port", min=0, max=65535, help="Port (default: server.port; 0: any free one).")
]

WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        max=64,
        help="Gateway processes sharing the port (SO_REUSEPORT; Linux). Each keeps its own in-memory state.",
    ),
]

WatchOption = Annotated[
    bool,
    typer.Option(
        "--watch/--no-watch",
        help="Reload the configuration when its file changes (SIGHUP and POST /api/config/reload always do).",
    ),
]

# How long a worker may take past its drain (server.drain_grace_s + drain_s) before it is killed.
_STOP_MARGIN_S = 5.0

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
    # Claude Code needs a credential too; a token (Bearer) rather than ANTHROPIC_API_KEY, which makes
    # interactive Claude Code ask whether to use it, with "No" preselected. The key itself is never
    # printed: the banner lands in the daemon's log.
    token = "<a key from server.api_keys>" if settings.server.api_keys else "ccrouter"
    out.print(
        f"Use it: [bold]ANTHROPIC_BASE_URL={url} ANTHROPIC_AUTH_TOKEN={escape(token)} claude[/]"
        "  (or simply: [bold]ccrouter code[/])"
    )
    if settings.server.ui.enabled:
        # Which credential opens it, never the credential itself.
        login = (
            "log in with server.admin_token or a key of role viewer and above"
            if settings.server.admin_token is not None
            else "log in with a key of role viewer and above: ccrouter keys create --name me --role admin"
        )
        out.print(f"Dashboard: [cyan]{url}/ui/[/]  ({escape(login)})")


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.kill(pid, sig)


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGTERM this worker when the supervisor dies, even by SIGKILL (Linux
    prctl(2) PR_SET_PDEATHSIG); elsewhere a worker outlives a killed supervisor."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        raise SystemExit(1)


def run_workers(count: int, run: Callable[[], None], *, drain_s: float = 30.0) -> int:
    """Run ``run`` in ``count`` forked processes until a signal, or until one exits; the exit code.
    A worker still running ``drain_s`` (plus a margin) after its SIGTERM is killed."""
    import multiprocessing
    from multiprocessing.connection import wait

    supervisor = os.getpid()

    def worker() -> None:
        _die_with_parent(supervisor)
        run()

    # fork, not spawn: the workers start from the already loaded settings, without re-importing.
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=worker, name=f"ccrouter-worker-{i + 1}") for i in range(count)]
    for process in workers:
        process.start()
    pids = [process.pid for process in workers if process.pid is not None]
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        _stop(pids, signal.SIGTERM)

    # Installed after the fork, so the workers keep the default handlers (aiohttp installs its own).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        # Each worker reloads its configuration on SIGHUP; the supervisor only passes it on.
        signal.signal(signal.SIGHUP, lambda signum, frame: _stop(pids, signal.SIGHUP))
    wait([process.sentinel for process in workers])
    failed = next((p for p in workers if p.exitcode not in (None, 0)), None)
    if not stopping:
        # One worker is gone: the others would carry on at reduced capacity; stop all, say so.
        _stop(pids, signal.SIGTERM)
    for process in workers:
        process.join(drain_s + _STOP_MARGIN_S)
        if process.is_alive():
            process.kill()
            process.join()
    if stopping:
        return 0
    if failed is None or failed.exitcode is None:
        print("ccrouter: a worker stopped; stopped the others", file=sys.stderr)
        return 1
    code = failed.exitcode
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    print(f"ccrouter: {failed.name} {how}; stopped the other workers", file=sys.stderr)
    return code if code > 0 else 1


def _check_bindable(host: str, port: int) -> None:
    """Bind and release ``host:port`` as the server will (SO_REUSEADDR, as asyncio sets on Unix), so a
    taken port fails before anything is printed; ``_bind_errors`` still covers a race after it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with _bind_errors(host, port), socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))


@contextlib.contextmanager
def _bind_errors(host: str, port: int) -> Iterator[None]:
    """A port that cannot be bound (taken, not ours, privileged) is one line, not a traceback."""
    from ccrouter.cli.port import BIND_ERRNOS, PortInUseError, bind_error_message

    try:
        yield
    except OSError as exc:
        if exc.errno not in BIND_ERRNOS:
            raise
        raise PortInUseError(bind_error_message(host, port, exc)) from None


def serve(
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    workers: WorkersOption = 1,
    watch: WatchOption = True,
) -> None:
    """Run the gateway in the foreground (Ctrl-C stops it). Creates a config on first run."""
    with handle_errors():
        from ccrouter.cli.process import base_url
        from ccrouter.config_file import load_or_create, uses_simulated

        settings, path, created = load_or_create(config_path(config))
        simulated = uses_simulated(settings)
        bind_host = host or settings.server.host
        bind_port = port if port is not None else settings.server.port
        if workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
            fail("--workers needs SO_REUSEPORT, which this platform lacks; run with --workers 1")
        if workers > 1 and bind_port == 0:
            bind_port = _free_port(bind_host)  # every worker must bind the same port
        if bind_port:
            _check_bindable(bind_host, bind_port)  # before the banner: it would promise a URL
        print_banner(settings, path, created=created, simulated=simulated, url=base_url(bind_host, bind_port))
        from ccrouter.app import serve as run

        if workers == 1:
            with _bind_errors(bind_host, bind_port):
                run(
                    settings,
                    host=bind_host,
                    port=bind_port,
                    simulated=simulated,
                    config_dir=path.parent,
                    config_path=path,
                    watch=watch,
                )
            return
        console().print(f"{workers} worker processes share port {bind_port} (SO_REUSEPORT)")

        def worker() -> None:
            try:
                with handle_errors(), _bind_errors(bind_host, bind_port):
                    run(
                        settings,
                        host=bind_host,
                        port=bind_port,
                        simulated=simulated,
                        config_dir=path.parent,
                        config_path=path,
                        watch=watch,
                        reuse_port=True,
                    )
            except typer.Exit as exc:  # a forked worker exits with the code, not a traceback
                raise SystemExit(exc.exit_code) from None

        code = run_workers(workers, worker, drain_s=settings.server.drain_grace_s + settings.server.drain_s)
        if code:
            raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
