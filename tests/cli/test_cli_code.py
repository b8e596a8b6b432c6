"""`ccrouter code`: finds claude, starts the gateway, execs claude with the gateway's address and key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import ccrouter
from ccrouter.cli.code import find_claude
from ccrouter.cli.main import app

runner = CliRunner()

FAKE_CLAUDE = """\
#!{python}
# Records what it was given, and checks the gateway it was pointed at answers.
import json, os, sys, urllib.request
base = os.environ["ANTHROPIC_BASE_URL"]
with urllib.request.urlopen(base + "/health", timeout=5) as response:
    health = json.loads(response.read())
record = {{
    "argv": sys.argv[1:],
    "base_url": base,
    "api_key": os.environ.get("ANTHROPIC_API_KEY"),
    "auth_token": os.environ.get("ANTHROPIC_AUTH_TOKEN"),
    "simulated": health["simulated"],
}}
with open(os.environ["FAKE_CLAUDE_OUT"], "w") as out:
    json.dump(record, out)
"""


def install_fake_claude(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    claude = directory / "claude"
    claude.write_text(FAKE_CLAUDE.format(python=sys.executable))
    claude.chmod(0o755)
    return claude


@pytest.fixture
def no_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CCROUTER_CONFIG", str(tmp_path / "cfg" / "config.yaml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_claude_missing_says_how_to_install(no_claude: Path) -> None:
    result = runner.invoke(app, ["code", "-p", "hi"], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "npm install -g @anthropic-ai/claude-code" in result.stderr
    assert not (no_claude / "cfg").exists()  # nothing started, nothing written


def test_find_claude_in_local_node_modules(no_claude: Path) -> None:
    assert find_claude() is None
    local = install_fake_claude(no_claude / "node_modules" / ".bin")
    assert find_claude() == str(local)
    on_path = install_fake_claude(no_claude / "empty-bin")
    assert find_claude() == str(on_path)  # PATH first


@pytest.fixture
def gateway_config(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a subprocess `ccrouter code`: private HOME, a config with a client key."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "cfg" / "config.yaml"
    config.parent.mkdir()
    config.write_text(
        f"server: {{port: {port}, api_keys: ['${{CLIENT_KEY}}']}}\n"
        "providers: [{name: simulated, type: simulated, models: [sim-1]}]\n"
        "router: {default: 'simulated,sim-1'}\n"
    )
    bin_dir = tmp_path / "bin"
    install_fake_claude(bin_dir)
    source = str(Path(ccrouter.__file__).parents[1])
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "CCROUTER_CONFIG": str(config),
        "CLIENT_KEY": "ck-test-1",
        "ANTHROPIC_AUTH_TOKEN": "must-not-reach-claude",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
        "FAKE_CLAUDE_OUT": str(tmp_path / "claude.json"),
        "PORT_FOR_TEST": str(port),
    }
    yield env
    stop = subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.main", "stop"],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert stop.returncode == 0, stop.stderr


def test_code_starts_gateway_and_execs_claude(gateway_config: dict[str, str]) -> None:
    args = ["-p", "hello world", "--max-turns", "4", "--allowedTools", "Bash", "--", "--not-ours"]
    done = subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.main", "code", *args],
        env=gateway_config,
        capture_output=True,
        timeout=45,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    record = orjson.loads(Path(gateway_config["FAKE_CLAUDE_OUT"]).read_bytes())
    # click consumes the first "--"; everything else reaches claude unchanged.
    assert record["argv"] == ["-p", "hello world", "--max-turns", "4", "--allowedTools", "Bash", "--not-ours"]
    assert record["base_url"] == f"http://127.0.0.1:{gateway_config['PORT_FOR_TEST']}"
    # A token, not ANTHROPIC_API_KEY (which makes interactive claude ask, with No preselected); the
    # user's own ANTHROPIC_AUTH_TOKEN ("must-not-reach-claude") is replaced.
    assert record["auth_token"] == "ck-test-1"
    assert record["api_key"] == ""
    assert record["simulated"] is True
    assert b"ccrouter started in the background" in done.stderr
