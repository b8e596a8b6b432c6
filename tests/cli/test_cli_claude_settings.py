"""`ccrouter claude-settings`: prints the settings with the key masked, merges them into a temp
HOME's ~/.claude/settings.json with a backup, and --remove restores exactly what was there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ccrouter.cli.claude_env import tier_models
from ccrouter.cli.main import app
from ccrouter.config_file import load_settings

runner = CliRunner()
KEY = "ck-secret-gateway-key-123"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "cfg" / "config.yaml"
    config.parent.mkdir()
    config.write_text(
        f"server: {{port: 4567, api_keys: ['{KEY}']}}\n"
        "providers: [{name: sim, type: simulated, models: [sim-1, sim-2]}]\n"
        "router: {default: 'sim,sim-1', think: 'sim,sim-2'}\n"
    )
    monkeypatch.setenv("CCROUTER_CONFIG", str(config))
    return tmp_path


def settings_file(home: Path) -> Path:
    return home / ".claude" / "settings.json"


def test_prints_with_the_key_masked(home: Path) -> None:
    shown = runner.invoke(app, ["claude-settings"])
    assert shown.exit_code == 0, shown.output
    assert KEY not in shown.stdout
    data = orjson.loads(shown.stdout)
    env = data["env"]
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4567"
    assert env["ANTHROPIC_AUTH_TOKEN"] == "ck-…23"
    assert env["ANTHROPIC_API_KEY"] == ""
    assert env["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"] == "1"
    # The tier models are the ones `ccrouter code` gives claude (``claude_env.tier_models``).
    tiers = tier_models(load_settings(Path(os.environ["CCROUTER_CONFIG"])))
    assert {"ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL"} <= tiers.keys()
    assert {name: env[name] for name in tiers} == tiers
    # The config is not the default one: the statusline is told which (Claude Code runs it without
    # this shell's $CCROUTER_CONFIG).
    config = home / "cfg" / "config.yaml"
    assert data["statusLine"] == {"type": "command", "command": f"ccrouter statusline --config {config}"}
    assert not settings_file(home).exists()  # printing writes nothing
    unmasked = runner.invoke(app, ["claude-settings", "--show-key", "--no-statusline"])
    assert orjson.loads(unmasked.stdout)["env"]["ANTHROPIC_AUTH_TOKEN"] == KEY
    assert "statusLine" not in orjson.loads(unmasked.stdout)


def test_write_merges_backs_up_and_remove_restores(home: Path) -> None:
    target = settings_file(home)
    target.parent.mkdir()
    before: dict[str, Any] = {
        "model": "opus",
        "env": {"ANTHROPIC_BASE_URL": "http://elsewhere", "MY_VAR": "1"},
        "permissions": {"allow": ["Bash(ls)"]},
    }
    original = orjson.dumps(before)
    target.write_bytes(original)
    assert runner.invoke(app, ["claude-settings", "--write"]).exit_code == 0
    written = orjson.loads(target.read_bytes())
    assert written["model"] == "opus"
    assert written["permissions"] == before["permissions"]
    assert written["env"]["MY_VAR"] == "1"
    assert written["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4567"
    assert written["env"]["ANTHROPIC_AUTH_TOKEN"] == KEY
    assert written["statusLine"]["command"].startswith("ccrouter statusline --config ")
    assert target.stat().st_mode & 0o777 == 0o600
    backups = list(target.parent.glob("settings.json.ccrouter-backup-*"))
    assert [b.read_bytes() for b in backups] == [original]
    # A second write records nothing of its own as "previous".
    assert runner.invoke(app, ["claude-settings", "--write"]).exit_code == 0
    removed = runner.invoke(app, ["claude-settings", "--remove"])
    assert removed.exit_code == 0, removed.output
    assert orjson.loads(target.read_bytes()) == before
    again = runner.invoke(app, ["claude-settings", "--remove"])
    assert again.exit_code == 1
    assert "nothing to remove" in again.stderr


def test_remove_leaves_what_the_user_changed_since(home: Path) -> None:
    assert runner.invoke(app, ["claude-settings", "--write"]).exit_code == 0  # no file before
    target = settings_file(home)
    data = orjson.loads(target.read_bytes())
    data["env"]["ANTHROPIC_DEFAULT_SONNET_MODEL"] = "my-choice"
    data["theme"] = "dark"
    target.write_bytes(orjson.dumps(data))
    assert runner.invoke(app, ["claude-settings", "--remove"]).exit_code == 0
    assert orjson.loads(target.read_bytes()) == {
        "env": {"ANTHROPIC_DEFAULT_SONNET_MODEL": "my-choice"},
        "theme": "dark",
    }


def test_a_later_write_without_the_statusline_takes_it_back_out(home: Path) -> None:
    target = settings_file(home)
    target.parent.mkdir()
    before = {"statusLine": {"type": "command", "command": "my-line"}, "env": {"MY_VAR": "1"}}
    target.write_bytes(orjson.dumps(before))
    assert runner.invoke(app, ["claude-settings", "--write"]).exit_code == 0
    assert orjson.loads(target.read_bytes())["statusLine"]["command"].startswith("ccrouter statusline")
    assert runner.invoke(app, ["claude-settings", "--write", "--no-statusline"]).exit_code == 0
    assert orjson.loads(target.read_bytes())["statusLine"] == before["statusLine"]  # the user's again
    assert runner.invoke(app, ["claude-settings", "--remove"]).exit_code == 0
    assert orjson.loads(target.read_bytes()) == before
    backups = sorted(target.parent.glob("settings.json.ccrouter-backup-*"))
    assert len(backups) == 3  # one per change, none over another
    assert orjson.loads(min(backups, key=lambda b: b.stat().st_mtime_ns).read_bytes()) == before


def test_a_ccrouter_not_on_path_is_named_by_its_absolute_path(home: Path) -> None:
    """Run as a venv's ccrouter that PATH does not reach, the statusline command names that program:
    Claude Code would otherwise find no `ccrouter` and show nothing."""
    program = Path(sys.executable).parent / "ccrouter"
    env = {**os.environ, "PATH": "/usr/bin:/bin", "HOME": str(home)}
    env.pop("CCROUTER_CONFIG")
    (home / ".ccrouter").mkdir()
    (home / "cfg" / "config.yaml").rename(home / ".ccrouter" / "config.yaml")
    shown = subprocess.run([str(program), "claude-settings"], env=env, capture_output=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    command = orjson.loads(shown.stdout)["statusLine"]["command"]
    assert command == f"{program.resolve()} statusline"  # the default config: no --config
