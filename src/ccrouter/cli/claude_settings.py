"""``ccrouter claude-settings [--write | --remove]``: Claude Code's own settings pointed at the gateway,
for people who run ``claude`` directly.

Prints (default) or merges into ``~/.claude/settings.json`` the environment ``ccrouter code`` gives
claude (``ccrouter.cli.claude_env``: base URL, the gateway key as ``ANTHROPIC_AUTH_TOKEN``, model
discovery, the tier models) and ``statusLine: {type: command, command: "ccrouter statusline"}``.
The key goes in as ``ANTHROPIC_AUTH_TOKEN`` rather than an ``apiKeyHelper``: Claude Code skips model
discovery when only a helper provides the credential (anthropics/claude-code#56675), and the key is
a gateway key, not a provider's. The file is written with mode 0600.

``--write`` and ``--remove`` back the file up first (``settings.json.ccrouter-backup-<time>``).
``--write`` keeps every other key, and records in ``settings.json.ccrouter-state`` which keys it
added and the previous value of each it replaced (a later write starts from the file as it was
without ccrouter, so a key it no longer sets goes back); ``--remove`` takes exactly those out again,
restoring the previous values, and leaves a key the user changed since alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ccrouter.cli.common import ConfigOption, config_path, console, fail, handle_errors

__all__ = ["merge", "register", "unmerge"]

STATUSLINE = {"type": "command", "command": "ccrouter statusline"}


def statusline_command(config: Path | None) -> str:
    """The statusline command Claude Code runs: ``ccrouter statusline`` when the ``ccrouter`` on PATH is
    this one; else this ``ccrouter`` by its absolute path (a venv's, not on PATH, say: Claude Code
    would find no command and show nothing); ``--config`` for any config but the default."""
    import shlex
    import shutil
    import sys

    program = "ccrouter"
    running = Path(sys.argv[0])
    if running.name == "ccrouter" and running.exists():
        on_path = shutil.which("ccrouter")
        if on_path is None or not Path(on_path).samefile(running):
            program = shlex.quote(str(running.resolve()))
    command = f"{program} statusline"
    # Claude Code runs it without this shell's $CCROUTER_CONFIG: any config but the default is named.
    chosen = config_path(config).expanduser().resolve()
    if chosen != (Path.home() / ".ccrouter" / "config.yaml").resolve():
        command += f" --config {shlex.quote(str(chosen))}"
    return command


def _desired(config: Path | None, statusline: bool) -> dict[str, Any]:
    from ccrouter.cli.claude_env import claude_env
    from ccrouter.cli.process import base_url
    from ccrouter.config_file import load_settings

    settings = load_settings(config_path(config))
    wanted: dict[str, Any] = {
        "env": claude_env(settings, base_url(settings.server.host, settings.server.port))
    }
    if statusline:
        wanted["statusLine"] = {**STATUSLINE, "command": statusline_command(config)}
    return wanted


def merge(current: dict[str, Any], wanted: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``wanted`` merged in (``env`` key by key); ``state`` records what was there
    before: ``[value]``, or None where there was nothing (kept from an earlier write, so a second
    write never records ccrouter's own values)."""
    merged = dict(current)
    env = dict(merged.get("env") or {})
    previous_env: dict[str, Any] = state.setdefault("env", {})
    for name, value in wanted["env"].items():
        previous_env.setdefault(name, [env[name]] if name in env else None)
        env[name] = value
    merged["env"] = env
    top: dict[str, Any] = state.setdefault("top", {})
    for name, value in wanted.items():
        if name != "env":
            top.setdefault(name, [merged[name]] if name in merged else None)
            merged[name] = value
    state["written"] = wanted
    return merged


def unmerge(current: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """``current`` without what ``merge`` put there: previous values back, added keys gone; a key
    whose value is no longer the one written (the user changed it) is left alone."""
    restored = dict(current)
    written = state.get("written", {})
    env = dict(restored.get("env") or {})
    for name, before in state.get("env", {}).items():
        if env.get(name) != written.get("env", {}).get(name):
            continue
        if before is None:
            env.pop(name, None)
        else:
            env[name] = before[0]
    if env:
        restored["env"] = env
    else:
        restored.pop("env", None)
    for name, before in state.get("top", {}).items():
        if restored.get(name) != written.get(name):
            continue
        if before is None:
            restored.pop(name, None)
        else:
            restored[name] = before[0]
    return restored


def _load(path: Path) -> dict[str, Any]:
    import orjson

    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError as exc:
        fail(f"{path} is not valid JSON ({exc}); fix it or move it away first")
    if not isinstance(data, dict):
        fail(f"{path} does not hold a JSON object")
    return data


def _save(path: Path, data: dict[str, Any]) -> None:
    import orjson

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".ccrouter-tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(temporary, path)


def _backup(target: Path) -> None:
    """A copy of the settings file as it is now, readable by the user only, before any change."""
    if not target.exists():
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):  # never over an earlier backup (two changes in one second)
        backup = target.with_name(f"{target.name}.ccrouter-backup-{stamp}{f'-{attempt}' if attempt else ''}")
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            continue
    else:
        fail(f"too many backups of {target} this second; nothing was changed")
    with os.fdopen(fd, "wb") as handle:
        handle.write(target.read_bytes())
    console().print(f"backup: {backup}")


def _masked(wanted: dict[str, Any]) -> dict[str, Any]:
    env = dict(wanted["env"])
    token = env.get("ANTHROPIC_AUTH_TOKEN", "")
    env["ANTHROPIC_AUTH_TOKEN"] = f"{token[:3]}…{token[-2:]}" if len(token) > 8 else "****"
    return {**wanted, "env": env}


def claude_settings(
    write: Annotated[bool, typer.Option("--write", help="Merge into ~/.claude/settings.json.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Take out what --write added.")] = False,
    no_statusline: Annotated[bool, typer.Option("--no-statusline", help="Leave statusLine out.")] = False,
    show_key: Annotated[bool, typer.Option("--show-key", help="Print the gateway key unmasked.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print (or write into ~/.claude/settings.json) the settings that point `claude` at the gateway."""
    import orjson

    target = Path.home() / ".claude" / "settings.json"
    state_path = target.with_name(target.name + ".ccrouter-state")
    if write and remove:
        fail("--write and --remove cannot be used together")
    if remove:
        state = _load(state_path)
        if not state:
            fail(f"nothing to remove: {state_path} does not exist (no `claude-settings --write` here)")
        current = _load(target)
        _backup(target)
        _save(target, unmerge(current, state))
        state_path.unlink()
        console().print(f"removed ccrouter's settings from {target}")
        return
    with handle_errors():
        wanted = _desired(config, not no_statusline)
    if not write:
        shown = wanted if show_key else _masked(wanted)
        typer.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return
    current = _load(target)
    _backup(target)
    state = _load(state_path)
    if state:
        # Written before: start from the file as it was without ccrouter, so a key this write no
        # longer sets (--no-statusline now, a tier gone from the config) goes back as well.
        current, state = unmerge(current, state), {}
    merged = merge(current, wanted, state)
    _save(state_path, state)
    _save(target, merged)
    console().print(f"wrote ccrouter's settings into {target} (undo: ccrouter claude-settings --remove)")


def register(app: typer.Typer) -> None:
    app.command("claude-settings")(claude_settings)
