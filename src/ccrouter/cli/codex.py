"""``ccrouter codex [--port P] [--config FILE] [codex args...]``: Codex CLI through the gateway.

As ``ccrouter code`` does for Claude Code (the same gateway lifecycle, ``ccrouter.cli.code``): the
gateway is started if none runs for the configuration, ``codex`` runs as a child with the overrides
of ``ccrouter.cli.codex_env`` before its own arguments, and the gateway is stopped afterwards if
this command started it and no other session uses it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import typer

from ccrouter.cli.code import PortOption, gateway_for, project_headers_for, run_session
from ccrouter.cli.common import ConfigOption, config_path, fail, handle_errors

__all__ = ["find_codex", "register"]

INSTALL_HINT = (
    "Codex CLI (`codex`) was not found on PATH nor in ./node_modules/.bin.\n"
    "Install it with:  npm install -g @openai/codex"
)


def find_codex() -> str | None:
    """``codex`` on PATH, else a project-local npm install."""
    found = shutil.which("codex")
    if found:
        return found
    local = Path.cwd() / "node_modules" / ".bin" / "codex"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def codex(
    ctx: typer.Context,
    port: PortOption = None,
    config: ConfigOption = None,
) -> None:
    """Run Codex CLI through the gateway (started if needed, and stopped afterwards if it was).

    ccrouter's options come first; everything after goes to `codex` unchanged, after the overrides
    that point it at the gateway (`ccrouter codex exec "fix the tests"`; `-m MODEL` picks a model).
    """
    found = find_codex()
    if found is None:
        fail(INSTALL_HINT)
    path = config_path(config)
    with handle_errors():
        from ccrouter.cli.codex_env import codex_args, codex_env
        from ccrouter.config_file import load_settings

        headers = project_headers_for(Path.cwd())
        info = gateway_for(path, port)
        settings = load_settings(Path(info.config) if info.config else path)
    env = {**os.environ, **codex_env(settings)}
    status = run_session(path, [found, *codex_args(info.url, headers), *ctx.args], env)
    raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    app.command(
        "codex",
        context_settings={
            "allow_extra_args": True,
            "ignore_unknown_options": True,
            # ccrouter's options end at codex's first argument.
            "allow_interspersed_args": False,
        },
    )(codex)
