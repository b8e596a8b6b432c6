"""`ccrouter code`: finds claude, starts the gateway (or uses the ccrouter on the port, or refuses
another program there), runs claude as a child with the gateway's address, key, discovery and tier
models, and stops the gateway afterwards only if it started it."""

from __future__ import annotations

import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

import ccrouter
from ccrouter.cli.code import find_claude
from ccrouter.cli.main import app
from ccrouter.cli.port import probe

runner = CliRunner()

# A test double of the external `claude`: records its arguments and environment, lists the models
# with the token it was given, waits for a file when told to, and exits with a chosen status.
FAKE_CLAUDE = """\
#!{python}
import json, os, signal, sys, time, urllib.request
signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))
base = os.environ["ANTHROPIC_BASE_URL"]
request = urllib.request.Request(
    base + "/v1/models?limit=1000",
    headers={{
        "authorization": "Bearer " + os.environ["ANTHROPIC_AUTH_TOKEN"],
        "anthropic-version": "2023-06-01",
    }},
)
with urllib.request.urlopen(request, timeout=5) as response:
    models = [m["id"] for m in json.loads(response.read())["data"]]
names = [n for n in os.environ if n.startswith(("ANTHROPIC_", "CLAUDE_CODE_"))]
record = {{"argv": sys.argv[1:], "env": {{n: os.environ[n] for n in names}}, "models": models}}
out = os.environ["FAKE_CLAUDE_OUT"] + "." + os.environ.get("FAKE_CLAUDE_NAME", "a")
with open(out, "w") as handle:
    json.dump(record, handle)
wait = os.environ.get("FAKE_CLAUDE_WAIT")
deadline = time.monotonic() + 30
while wait and not os.path.exists(wait) and time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(int(os.environ.get("FAKE_CLAUDE_EXIT", "0")))
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


CONFIG = """\
server: {{port: {port}, api_keys: ['${{CLIENT_KEY}}']}}
providers:
  - {{name: sim, type: simulated, models: [sim-1, sim-think, sim-small]}}
  - {{name: free, type: simulated}}
router:
  default: 'sim,sim-1'
  think: 'sim,sim-think'
  background: 'free,tiny/model:v1'
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a subprocess `ccrouter code`: private HOME, a config with a client key."""
    port = free_port()
    config = tmp_path / "cfg" / "config.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG.format(port=port))
    bin_dir = tmp_path / "bin"
    install_fake_claude(bin_dir)
    source = str(Path(ccrouter.__file__).parents[1])
    environment = {
        **os.environ,
        "HOME": str(tmp_path),
        "CCROUTER_CONFIG": str(config),
        "CLIENT_KEY": "ck-test-1",
        "ANTHROPIC_AUTH_TOKEN": "must-not-reach-claude",
        "ANTHROPIC_API_KEY": "sk-ant-users-own-key",
        "ANTHROPIC_CUSTOM_HEADERS": "X-Team: blue\nX-Other: 1",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
        "FAKE_CLAUDE_OUT": str(tmp_path / "claude.json"),
        "PORT_FOR_TEST": str(port),
    }
    yield environment
    ccrouter_cli(environment, "stop")


def ccrouter_cli(env: dict[str, str], *args: str, timeout: float = 45) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def record(env: dict[str, str], name: str = "a") -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(Path(env["FAKE_CLAUDE_OUT"] + "." + name).read_bytes())
    return data


def test_code_runs_claude_with_the_gateway_env_and_stops_the_gateway_it_started(
    env: dict[str, str],
) -> None:
    port = int(env["PORT_FOR_TEST"])
    args = ["-p", "hello world", "--max-turns", "4", "--port", "1", "--", "--not-ours"]
    done = ccrouter_cli({**env, "FAKE_CLAUDE_EXIT": "7"}, "code", *args)
    assert done.returncode == 7, done.stderr  # claude's status
    seen = record(env)
    # ccrouter's options end at claude's first argument: the rest reaches claude unchanged.
    assert seen["argv"] == args
    claude_env = seen["env"]
    assert claude_env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}"
    # A token, not ANTHROPIC_API_KEY (which makes interactive claude ask, with No preselected); the
    # user's own token and key are replaced.
    assert claude_env["ANTHROPIC_AUTH_TOKEN"] == "ck-test-1"
    assert claude_env["ANTHROPIC_API_KEY"] == ""
    assert claude_env["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"] == "1"
    # Tier ids name scenarios, not routes: the gateway's scenario rules still decide.
    assert claude_env["ANTHROPIC_DEFAULT_OPUS_MODEL"] == "claude-ccr-think"
    assert claude_env["ANTHROPIC_DEFAULT_SONNET_MODEL"] == "claude-ccr-default"
    assert claude_env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "claude-ccr-background"
    assert claude_env["CLAUDE_CODE_SUBAGENT_MODEL"] == "claude-ccr-subagent"
    assert claude_env["ANTHROPIC_DEFAULT_OPUS_MODEL_NAME"] == "ccrouter think: sim,sim-think"
    assert claude_env["ANTHROPIC_DEFAULT_SONNET_MODEL_NAME"] == "ccrouter default: sim,sim-1"
    assert claude_env["ANTHROPIC_DEFAULT_HAIKU_MODEL_NAME"] == "ccrouter background: free,tiny/model:v1"
    assert claude_env["ANTHROPIC_CUSTOM_HEADERS"] == "X-Team: blue\nX-Other: 1"  # the user's kept
    # The picker lists every configured route by its alias (picking one pins it).
    assert seen["models"] == [
        "claude-ccr-sim-sim-1",
        "claude-ccr-sim-sim-think",
        "claude-ccr-sim-sim-small",
        "claude-ccr-free-tiny-model-v1",
    ]
    assert "ccrouter started in the background" in done.stderr
    assert "ccrouter stopped" in done.stderr
    assert probe("127.0.0.1", port) is None  # the gateway it started is gone
    assert ccrouter_cli(env, "status").returncode == 3
    # One that was running before is left running.
    started = ccrouter_cli(env, "start")
    assert started.returncode == 0, started.stderr
    again = ccrouter_cli(env, "code", "-p", "hi")
    assert again.returncode == 0, again.stderr
    assert "ccrouter stopped" not in again.stderr
    holder = probe("127.0.0.1", port)
    assert holder is not None
    assert holder.ccrouter


def test_port_and_config_options(env: dict[str, str], tmp_path: Path) -> None:
    other = free_port()
    config = env.pop("CCROUTER_CONFIG")
    done = ccrouter_cli(env, "code", "--port", str(other), "--config", config, "-p", "hi")
    assert done.returncode == 0, done.stderr
    assert record(env)["env"]["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{other}"
    assert probe("127.0.0.1", other) is None
    env["CCROUTER_CONFIG"] = config


def test_a_running_daemon_on_another_port_is_named(env: dict[str, str]) -> None:
    assert ccrouter_cli(env, "start").returncode == 0
    done = ccrouter_cli(env, "code", "--port", str(free_port()), "-p", "hi")
    assert done.returncode == 1
    assert f"already runs on port {env['PORT_FOR_TEST']}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_another_program_on_the_port_is_refused_in_one_line(env: dict[str, str]) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        done = ccrouter_cli(env, "code", "--port", str(port), "-p", "hi")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1
    # The holder is named when /proc shows it (this test's own process), else "another program".
    assert re.fullmatch(
        rf"error: port {port} on 127\.0\.0\.1 is already in use by "
        rf"(python\S* \(pid {os.getpid()}\)|another program); use --port or stop it",
        done.stderr.strip(),
    ), done.stderr
    assert not Path(env["FAKE_CLAUDE_OUT"] + ".a").exists()  # claude never ran


def test_a_foreground_ccrouter_on_the_port_is_used_and_left(env: dict[str, str]) -> None:
    port = env["PORT_FOR_TEST"]
    serve = subprocess.Popen(
        [sys.executable, "-m", "ccrouter.cli.main", "serve", "--port", port],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while probe("127.0.0.1", int(port)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        done = ccrouter_cli(env, "code", "-p", "hi")
        assert done.returncode == 0, done.stderr
        assert (
            f"using the ccrouter already listening on http://127.0.0.1:{port} (pid {serve.pid})"
            in done.stderr
        )
        assert serve.poll() is None  # still serving
        assert "claude-ccr-sim-sim-1" in record(env)["models"]  # the token it was given lists them
    finally:
        serve.terminate()
        serve.wait(timeout=20)


def test_two_sessions_share_the_gateway_the_last_one_out_stops_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = int(env["PORT_FOR_TEST"])
    release_a = tmp_path / "release-a"
    first = subprocess.Popen(
        [sys.executable, "-m", "ccrouter.cli.main", "code", "-p", "a"],
        env={**env, "FAKE_CLAUDE_WAIT": str(release_a), "FAKE_CLAUDE_NAME": "a"},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not Path(env["FAKE_CLAUDE_OUT"] + ".a").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    second = ccrouter_cli({**env, "FAKE_CLAUDE_NAME": "b"}, "code", "-p", "b")
    assert second.returncode == 0, second.stderr
    assert probe("127.0.0.1", port) is not None  # the first session still uses it
    release_a.touch()
    _, errors = first.communicate(timeout=30)
    assert first.returncode == 0, errors
    assert "ccrouter stopped" in errors
    assert probe("127.0.0.1", port) is None


def test_sigterm_goes_to_claude_and_the_gateway_still_stops(env: dict[str, str], tmp_path: Path) -> None:
    port = int(env["PORT_FOR_TEST"])
    session = subprocess.Popen(
        [sys.executable, "-m", "ccrouter.cli.main", "code", "-p", "a"],
        env={**env, "FAKE_CLAUDE_WAIT": str(tmp_path / "never")},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not Path(env["FAKE_CLAUDE_OUT"] + ".a").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    session.send_signal(signal.SIGTERM)
    _, errors = session.communicate(timeout=30)
    assert session.returncode == 42, errors  # the fake claude exits 42 on SIGTERM
    assert probe("127.0.0.1", port) is None
