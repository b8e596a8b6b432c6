"""`ccrouter codex`: finds codex, starts the gateway, runs codex with ``-c`` overrides that point a
custom provider at the gateway's /v1 (Responses wire, the key in an env var, web search off, the
project's headers) before the user's own arguments, and stops the gateway afterwards.

The ``codex`` here is a test double of the external CLI: it reads the overrides as Codex does (TOML
values) and calls the real gateway's POST /v1/responses with them, so the test fails if they do not
lead a client to a working gateway."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

import ccrouter
from ccrouter.cli.codex import find_codex
from ccrouter.cli.codex_env import codex_args
from ccrouter.cli.main import app
from ccrouter.cli.port import probe

runner = CliRunner()

FAKE_CODEX = """\
#!{python}
import json, os, sys, tomllib, urllib.request
argv = sys.argv[1:]
config = {{}}
rest = []
it = iter(argv)
for arg in it:
    if arg == "-c":
        key, _, value = next(it).partition("=")
        config[key] = tomllib.loads("v = " + value)["v"]
    else:
        rest.append(arg)
provider = config["model_providers." + config["model_provider"] + ".base_url"]
prefix = "model_providers." + config["model_provider"] + "."
headers = {{"authorization": "Bearer " + os.environ[config[prefix + "env_key"]],
           "content-type": "application/json", **config.get(prefix + "http_headers", {{}})}}
body = json.dumps({{"model": config["model"], "input": "hi", "store": False}}).encode()
request = urllib.request.Request(provider + "/responses", data=body, headers=headers)
with urllib.request.urlopen(request, timeout=10) as response:
    answer = json.loads(response.read())
names = [n for n in os.environ if n.startswith(("CCROUTER_API_KEY", "OPENAI"))]
record = {{"argv": argv, "config": config, "rest": rest, "env": {{n: os.environ[n] for n in names}},
          "answer": answer}}
with open(os.environ["FAKE_CODEX_OUT"], "w") as handle:
    json.dump(record, handle)
sys.exit(int(os.environ.get("FAKE_CODEX_EXIT", "0")))
"""

CONFIG = """\
server: {{port: {port}, api_keys: ['${{CLIENT_KEY}}']}}
providers:
  - {{name: sim, type: simulated, models: [sim-1]}}
router:
  default: 'sim,sim-1'
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def install_fake_codex(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    codex = directory / "codex"
    codex.write_text(FAKE_CODEX.format(python=sys.executable))
    codex.chmod(0o755)
    return codex


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    config = tmp_path / "cfg" / "config.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG.format(port=port))
    bin_dir = tmp_path / "bin"
    install_fake_codex(bin_dir)
    source = str(Path(ccrouter.__file__).parents[1])
    environment = {
        **os.environ,
        "HOME": str(tmp_path),
        "CCROUTER_CONFIG": str(config),
        "CLIENT_KEY": "ck-codex-1",
        "OPENAI_API_KEY": "sk-users-own-openai-key",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
        "FAKE_CODEX_OUT": str(tmp_path / "codex.json"),
        "PORT_FOR_TEST": str(port),
    }
    yield environment
    ccrouter_cli(environment, "stop", cwd=tmp_path)


def ccrouter_cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )


def test_codex_runs_against_the_gateway_and_stops_it(env: dict[str, str], tmp_path: Path) -> None:
    port = int(env["PORT_FOR_TEST"])
    project = tmp_path / "demo-proj"
    project.mkdir()
    (project / ".ccrouter.yaml").write_text("{}\n")
    args = ["exec", "--skip-git-repo-check", "fix the tests", "--port", "1"]
    done = ccrouter_cli({**env, "FAKE_CODEX_EXIT": "5"}, "codex", *args, cwd=project)
    assert done.returncode == 5, done.stderr  # codex's status
    seen: dict[str, Any] = orjson.loads(Path(env["FAKE_CODEX_OUT"]).read_bytes())
    # ccrouter's overrides first, then the user's arguments unchanged.
    assert seen["rest"] == args
    assert seen["argv"][-len(args) :] == args
    config = seen["config"]
    assert config == {
        "model_provider": "ccrouter",
        "model": "claude-ccr-default",
        "model_providers.ccrouter.name": "ccrouter",
        "model_providers.ccrouter.base_url": f"http://127.0.0.1:{port}/v1",
        "model_providers.ccrouter.env_key": "CCROUTER_API_KEY",
        "model_providers.ccrouter.wire_api": "responses",
        "web_search": "disabled",
        "model_providers.ccrouter.http_headers": {"x-ccrouter-project": "demo-proj"},
    }
    # The client key in its own variable; the user's OpenAI key is left alone, and never used.
    assert seen["env"] == {"CCROUTER_API_KEY": "ck-codex-1", "OPENAI_API_KEY": "sk-users-own-openai-key"}
    answer = seen["answer"]
    assert answer["object"] == "response"
    assert answer["status"] == "completed"
    assert answer["output"][0]["content"][0]["text"]
    assert "ccrouter started in the background" in done.stderr
    assert "ccrouter stopped" in done.stderr
    assert probe("127.0.0.1", port) is None


def test_codex_missing_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("CCROUTER_CONFIG", str(tmp_path / "cfg" / "config.yaml"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["codex", "exec", "hi"], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "npm install -g @openai/codex" in result.stderr
    assert not (tmp_path / "cfg").exists()
    local = install_fake_codex(tmp_path / "node_modules" / ".bin")
    assert find_codex() == str(local)


def test_override_values_are_toml_strings() -> None:
    """A header value with quotes or a backslash stays one TOML string (Codex parses ``-c`` values
    as TOML, else takes them raw)."""
    import tomllib

    args = codex_args("http://127.0.0.1:9/", {"x-ccrouter-project": 'a "b" \\ c'})
    values = dict(arg.partition("=")[::2] for arg in args[1::2])
    assert tomllib.loads("v = " + values["model_providers.ccrouter.base_url"])["v"] == "http://127.0.0.1:9/v1"
    headers = tomllib.loads("v = " + values["model_providers.ccrouter.http_headers"])["v"]
    assert headers == {"x-ccrouter-project": 'a "b" \\ c'}
