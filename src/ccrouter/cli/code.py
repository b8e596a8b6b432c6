"""``ccrouter code [claude args...]``: Claude Code pointed at the gateway (started if needed)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer

from ccrouter.cli.common import config_path, err_console, fail, handle_errors

__all__ = ["find_claude", "register"]

INSTALL_HINT = (
    "Claude Code (`claude`) was not found on PATH nor in ./node_modules/.bin.\n"
    "Install it with:  npm install -g @anthropic-ai/claude-code"
)


def find_claude() -> str | None:
    """``claude`` on PATH, else a project-local npm install."""
    found = shutil.which("claude")
    if found:
        return found
    local = Path.cwd() / "node_modules" / ".bin" / "claude"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def code(ctx: typer.Context) -> None:
    """Run Claude Code through the gateway (started if needed); all arguments go to `claude` unchanged.

    Reads $CCROUTER_CONFIG (default ~/.ccrouter/config.yaml). `ccrouter code -- --help`: claude's help.
    """
    claude = find_claude()
    if claude is None:
        fail(INSTALL_HINT)
    with handle_errors():
        from ccrouter.cli.daemon import ensure_running
        from ccrouter.config_file import load_settings

        path = config_path(None)
        info, found = ensure_running(path, adopt_foreground=True)
        if found == "started":
            err_console().print(f"ccrouter started in the background (pid {info.pid}) on {info.url}")
        elif found == "foreground":
            err_console().print(f"using the ccrouter already listening on {info.url} (pid {info.pid})")
        settings = load_settings(Path(info.config) if info.config else path)
    keys = settings.server.api_keys
    env = dict(os.environ)
    env["ANTHROPIC_BASE_URL"] = info.url  # no /v1: the CLI appends /v1/messages itself
    # The gateway key as a token (Authorization: Bearer). With ANTHROPIC_API_KEY set instead,
    # interactive Claude Code asks whether to use that "custom API key", with No preselected; an empty
    # ANTHROPIC_API_KEY also keeps the user's real Anthropic key (if exported) from reaching claude.
    env["ANTHROPIC_AUTH_TOKEN"] = keys[0].get_secret_value() if keys else "ccrouter"
    env["ANTHROPIC_API_KEY"] = ""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(claude, ["claude", *ctx.args], env)


def register(app: typer.Typer) -> None:
    app.command(
        "code",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(code)
