"""``ccrouter start | stop | restart | status``: the gateway as a background process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer

from ccrouter.cli.common import (
    ConfigOption,
    config_path,
    console,
    err_console,
    fail,
    handle_errors,
    new_table,
    print_table,
)
from ccrouter.cli.serve import HostOption, PortOption

if TYPE_CHECKING:
    from ccrouter.cli.process import PidInfo

__all__ = ["Found", "ensure_running", "find_foreground", "register"]

EXIT_NOT_RUNNING = 3  # LSB init-script convention for "program is not running"
# ``ccrouter code`` records here the gateway it started, to stop it when its last session ends.
CODE_STARTED_FILE = "code-started"


# How ensure_running found its gateway: recorded in the pid file, started now, or a ccrouter that was
# already listening on the configured port without a pid file (a foreground `ccrouter serve`).
Found = Literal["running", "started", "foreground"]


def ensure_running(
    path: Path, host: str | None = None, port: int | None = None, *, adopt_foreground: bool = False
) -> tuple[PidInfo, Found]:
    """The running gateway for config ``path``, starting it if needed. A port already taken fails with
    who holds it, unless ``adopt_foreground`` and the holder is a ccrouter gateway, which is then used."""
    from ccrouter.cli.port import PortInUseError, in_use_message, probe
    from ccrouter.cli.process import running, spawn_gateway
    from ccrouter.config_file import load_or_create, uses_simulated
    from ccrouter.errors import ConfigError

    info = running(path.parent)
    if info is not None:
        return info, "running"
    settings, path, created = load_or_create(path)
    if created:
        err_console().print(f"created a default configuration at {path}")
    bind_host = host or settings.server.host
    bind_port = port if port is not None else settings.server.port
    if not settings.server.auth_required and bind_host not in ("127.0.0.1", "localhost", "::1"):
        # The gateway refuses this too; saying it here beats a failed start and a log to read.
        raise ConfigError(
            f"refusing to bind {bind_host!r} without client auth: set server.api_keys, server.jwt or"
            " server.require_auth: true first"
        )
    holder = probe(bind_host, bind_port) if bind_port else None
    if holder is not None:
        if adopt_foreground and holder.ccrouter and holder.pid is not None:
            return _foreground_info(bind_host, bind_port, holder.pid), "foreground"
        raise PortInUseError(in_use_message(bind_host, bind_port, holder))
    if uses_simulated(settings):
        from ccrouter.cli.serve import simulated_panel

        err_console().print(simulated_panel(path))
    return spawn_gateway(path, bind_host, bind_port), "started"


def _foreground_info(host: str, port: int, pid: int) -> PidInfo:
    """A PidInfo for a gateway found on its port (no pid file); its start time from /health."""
    from ccrouter.cli.process import PidInfo, base_url, get_health

    health = get_health(base_url(host, port)) or {}
    uptime = health.get("uptime_s")
    started = time.time() - (float(uptime) if isinstance(uptime, int | float) else 0.0)
    return PidInfo(pid=pid, host=host, port=port, started_at=started, config="")


def find_foreground(path: Path) -> PidInfo | None:
    """A ccrouter gateway listening on the address configured in ``path`` (which is not created)."""
    from ccrouter.cli.port import probe
    from ccrouter.config_file import load_settings
    from ccrouter.errors import CCRouterError

    try:
        server = load_settings(path).server
    except CCRouterError:  # no file, or one that does not load: no address to look at
        return None
    holder = probe(server.host, server.port) if server.port else None
    if holder is None or not holder.ccrouter or holder.pid is None:
        return None
    return _foreground_info(server.host, server.port, holder.pid)


def start(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Start the gateway in the background (logs in <config dir>/ccrouter.log); port 0 picks a free one."""
    from ccrouter.cli.process import log_path

    with handle_errors():
        path = config_path(config)
        info, found = ensure_running(path, host, port)
        if found == "started":
            console().print(f"[green]ccrouter started[/] (pid {info.pid}) on [cyan]{info.url}[/]")
            console().print(f"log: {log_path(path.parent)}")
        else:
            console().print(f"ccrouter is already running (pid {info.pid}) on [cyan]{info.url}[/]")
        # Asked for by name now: a gateway `ccrouter code` started stays when its sessions end.
        (path.parent / CODE_STARTED_FILE).unlink(missing_ok=True)


def stop(config: ConfigOption = None) -> None:
    """Stop the background gateway (SIGTERM: it finishes the requests in flight; SIGKILL after 40 s)."""
    from ccrouter.cli.process import running, stop_gateway

    with handle_errors():
        path = config_path(config)
        config_dir = path.parent
        info = running(config_dir)
        if info is None:
            foreground = find_foreground(path)
            if foreground is not None:
                fail(
                    f"the ccrouter on {foreground.url} (pid {foreground.pid}) runs in the foreground, not"
                    f" started by `ccrouter start`: stop it where it runs (Ctrl-C) or `kill {foreground.pid}`"
                )
            console().print("ccrouter is not running")
            return
        killed = stop_gateway(info, config_dir)
        console().print(f"ccrouter stopped (pid {info.pid}{', killed after timeout' if killed else ''})")


def restart(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Stop the background gateway if it runs, then start it (same address unless told otherwise)."""
    from ccrouter.cli.process import running, stop_gateway

    with handle_errors():
        path = config_path(config)
        info = running(path.parent)
        if info is not None:
            stop_gateway(info, path.parent)
            console().print(f"ccrouter stopped (pid {info.pid})")
            host = host or info.host
            port = port if port is not None else info.port
    start(config, host, port)


def status(config: ConfigOption = None) -> None:
    """Show whether the gateway runs, where, since when, and its providers. Exit 3 when not running."""
    from rich import box
    from rich.markup import escape

    from ccrouter.cli.process import format_duration, get_health, log_path, running

    path = config_path(config)
    config_dir = path.parent
    info = running(config_dir)
    out = console()
    foreground = False
    if info is None:
        info = find_foreground(path)
        foreground = info is not None
    if info is None:
        out.print("ccrouter is [bold red]not running[/]")
        raise typer.Exit(EXIT_NOT_RUNNING)
    health = get_health(info.url)
    state = "[bold green]running[/]" if health else "[bold yellow]running, not answering /health[/]"
    if foreground:
        state += " in the foreground (no pid file: `ccrouter serve`, not managed by start/stop)"
    out.print(f"ccrouter is {state}")
    out.print(f"  pid:     {info.pid}\n  url:     {info.url}")
    out.print(f"  uptime:  {format_duration(time.time() - info.started_at)}")
    if not foreground:
        out.print(f"  config:  {escape(info.config)}\n  log:     {escape(str(log_path(config_dir)))}")
    if health is None:
        raise typer.Exit(1)
    if health.get("simulated"):
        out.print("  [yellow]simulated provider: no API key configured[/]")
    table = new_table("provider", "type", "models", box=box.SIMPLE)
    for provider in health.get("providers", []):
        models = ", ".join(str(m) for m in provider.get("models", [])) or "(any model)"
        table.add_row(escape(str(provider.get("name"))), escape(str(provider.get("type"))), escape(models))
    print_table(table)
    live = get_health(info.url, path="/health/providers", token=_admin_token(path))
    if live is not None:
        print_table(provider_state_table(live))
    else:
        out.print("  (live provider state not shown: /health/providers needs server.admin_token here)")


def _admin_token(path: Path) -> str | None:
    """The admin token of the config at ``path`` (``/health/providers`` needs it beyond loopback)."""
    from ccrouter.config_file import load_settings
    from ccrouter.errors import CCRouterError

    try:
        token = load_settings(path).server.admin_token
    except (CCRouterError, OSError):  # an unreadable config: status still shows what it can
        return None
    return None if token is None else token.get_secret_value()


def provider_state_table(body: dict[str, Any]) -> Any:
    """The live routing state from ``/health/providers`` as a table (state, breaker, limits, score)."""
    from rich import box
    from rich.markup import escape

    colours = {"ok": "green", "recovering": "yellow", "rate_limited": "yellow", "down": "red"}
    table = new_table(
        "provider,model",
        "state",
        "breaker",
        "headroom",
        "cooldown",
        "rpm",
        "limits",
        "latency",
        "score",
        box=box.SIMPLE,
        title=f"routing: {escape(str(body.get('strategy')))}",
    )
    for row in body.get("providers", []):
        state = str(row.get("state"))
        limits = row.get("limits") or {}
        limit_text = " ".join(f"{k}={v}" for k, v in limits.items() if v is not None) or "-"
        latency = row.get("latency_ewma_s")
        table.add_row(
            escape(f"{row.get('provider')},{row.get('model')}"),
            f"[{colours.get(state, 'white')}]{escape(state)}[/]",
            escape(str(row.get("breaker"))),
            f"{float(row.get('headroom', 0)):.0%}",
            f"{float(row.get('cooldown_s', 0)):.1f}s",
            f"{float(row.get('requests_per_minute', 0)):g}",
            escape(limit_text),
            "-" if latency is None else f"{float(latency):.2f}s",
            f"{float(row.get('health_score', 0)):.2f}",
        )
    return table


def register(app: typer.Typer) -> None:
    for command in (start, stop, restart, status):
        app.command()(command)
