"""``ccrouter code [--port P] [--config FILE] [claude args...]``: Claude Code through the gateway.

Starts the gateway if none runs for the configuration (or uses the ccrouter already listening on
the port; another program there is refused with one line naming it), then runs ``claude`` as a child
with the environment of ``ccrouter.cli.claude_env``, forwards SIGTERM and SIGHUP to it (Ctrl-C
reaches it from the terminal directly), and exits with its exit status.

Lifecycle: a gateway that ``ccrouter code`` started is stopped when the last ``ccrouter code`` using
it exits; one that was running before (``ccrouter start``, a foreground ``ccrouter serve``) is left
running. Each session is a file ``code-sessions/<pid>`` in the config folder, and ``code-started``
names the gateway pid ``ccrouter code`` started, so two sessions in two terminals share one gateway
and the first to exit does not pull it from under the other.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ccrouter.cli.common import ConfigOption, config_path, err_console, fail, handle_errors
from ccrouter.cli.daemon import CODE_STARTED_FILE as STARTED_FILE

if TYPE_CHECKING:
    from ccrouter.cli.process import PidInfo

__all__ = ["PortOption", "find_claude", "gateway_for", "project_headers_for", "register", "run_session"]

INSTALL_HINT = (
    "Claude Code (`claude`) was not found on PATH nor in ./node_modules/.bin.\n"
    "Install it with:  npm install -g @anthropic-ai/claude-code"
)
SESSIONS_DIR = "code-sessions"

PortOption = Annotated[
    int | None,
    typer.Option(
        "--port", help="The gateway's port (default: server.port of the config).", show_default=False
    ),
]


def find_claude() -> str | None:
    """``claude`` on PATH, else a project-local npm install."""
    found = shutil.which("claude")
    if found:
        return found
    local = Path.cwd() / "node_modules" / ".bin" / "claude"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def project_headers_for(cwd: Path) -> dict[str, str]:
    """The project's request headers (``x-ccrouter-project`` ...) for a session started in ``cwd``."""
    from ccrouter.projects import find_project_file, load_project, project_headers

    found = find_project_file(cwd)
    return project_headers(load_project(found)) if found is not None else {}


def _custom_headers(extra: dict[str, str]) -> str:
    """``ANTHROPIC_CUSTOM_HEADERS`` for claude: the user's own lines, with ``extra`` merged in."""
    from ccrouter.cli.claude_env import custom_headers

    try:
        return custom_headers(os.environ.get("ANTHROPIC_CUSTOM_HEADERS", ""), extra)
    except ValueError as exc:
        fail(str(exc))


def gateway_for(path: Path, port: int | None) -> PidInfo:
    """The gateway for ``path``, started if needed (and then recorded in ``STARTED_FILE``)."""
    from ccrouter.cli.daemon import ensure_running
    from ccrouter.cli.process import running

    info = running(path.parent)
    if info is not None and port is not None and info.port != port:
        fail(
            f"the ccrouter for {path} already runs on port {info.port} (pid {info.pid}):"
            f" use --port {info.port}, or `ccrouter stop` first"
        )
    info, found = ensure_running(path, port=port, adopt_foreground=True)
    if found == "started":
        err_console().print(f"ccrouter started in the background (pid {info.pid}) on {info.url}")
        (path.parent / STARTED_FILE).write_text(str(info.pid))
    elif found == "foreground":
        err_console().print(f"using the ccrouter already listening on {info.url} (pid {info.pid})")
    return info


def _live_sessions(sessions: Path) -> list[int]:
    from ccrouter.cli.process import is_alive

    alive: list[int] = []
    for entry in sessions.glob("*"):
        pid = int(entry.name) if entry.name.isdigit() else 0
        if pid and is_alive(pid):
            alive.append(pid)
        else:
            entry.unlink(missing_ok=True)  # a session that died without cleaning up
    return alive


def _release(path: Path, session: Path) -> None:
    """This session is over: stop the gateway if ``ccrouter code`` started it and no other session
    uses it."""
    from ccrouter.cli.process import running, stop_gateway

    session.unlink(missing_ok=True)
    started = path.parent / STARTED_FILE
    info = running(path.parent)
    try:
        starter_pid = int(started.read_text())
    except (OSError, ValueError):
        return
    if info is None or info.pid != starter_pid:
        started.unlink(missing_ok=True)  # stopped or replaced meanwhile: not ours to stop
        return
    if _live_sessions(session.parent):
        return
    stop_gateway(info, path.parent)
    started.unlink(missing_ok=True)
    err_console().print(f"ccrouter stopped (pid {info.pid}; started for this session, and no other uses it)")


def _run_child(command: list[str], env: dict[str, str]) -> int:
    import subprocess

    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    # Ctrl-C goes from the terminal to claude (our process group) directly: ccrouter must neither die
    # of it nor pass it on a second time (twice is "exit" to Claude Code). Handlers, not SIG_IGN:
    # an ignored signal would stay ignored in claude.
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, lambda _s, _f: None)
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


def run_session(path: Path, command: list[str], env: dict[str, str]) -> int:
    """Run a client (``claude``, ``codex``) as a session of the gateway for ``path``: recorded in
    ``code-sessions/`` while it runs, the gateway released after it (``_release``). Its exit status."""
    sessions = path.parent / SESSIONS_DIR
    sessions.mkdir(parents=True, exist_ok=True)
    session = sessions / str(os.getpid())
    session.touch()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        return _run_child(command, env)
    finally:
        with handle_errors():
            _release(path, session)


def code(
    ctx: typer.Context,
    port: PortOption = None,
    config: ConfigOption = None,
) -> None:
    """Run Claude Code through the gateway (started if needed, and stopped afterwards if it was).

    ccrouter's options come first; everything after goes to `claude` unchanged
    (`ccrouter code --port 4000 -p "hi"`; `ccrouter code -- --help` is claude's help).
    """
    claude = find_claude()
    if claude is None:
        fail(INSTALL_HINT)
    path = config_path(config)
    with handle_errors():
        from ccrouter.cli.claude_env import claude_env
        from ccrouter.config_file import load_settings

        # A broken .ccrouter.yaml is one line before any gateway starts.
        headers = project_headers_for(Path.cwd())
        info = gateway_for(path, port)
        settings = load_settings(Path(info.config) if info.config else path)
    env = {**os.environ, **claude_env(settings, info.url, headers)}
    joined = _custom_headers(headers)
    if joined:
        env["ANTHROPIC_CUSTOM_HEADERS"] = joined
    status = run_session(path, [claude, *ctx.args], env)
    raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    app.command(
        "code",
        context_settings={
            "allow_extra_args": True,
            "ignore_unknown_options": True,
            # ccrouter's options end at claude's first argument: `-p "hi" --port 1` is all claude's.
            "allow_interspersed_args": False,
        },
    )(code)
