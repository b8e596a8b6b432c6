"""`ccrouter start | stop | restart | status` against a real background gateway, and stale pid files."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import ccrouter
from ccrouter.cli.main import app
from ccrouter.cli.process import get_health, is_alive
from ccrouter.config_file import write_default_config

WIDE = {"COLUMNS": "250"}
runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A simulated-provider config in a private HOME; stops any gateway a test left running."""
    path = tmp_path / "cfg" / "config.yaml"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CCROUTER_CONFIG", str(path))
    # The background process runs `python -m ccrouter...`: make sure it imports this very tree.
    source = str(Path(ccrouter.__file__).parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])))
    write_default_config(path, {}, ollama_probe=lambda: False)
    yield path
    runner.invoke(app, ["stop"])


def this_program() -> str:
    """How a port error names this test process, which holds the port (Linux /proc)."""
    return f"{Path('/proc/self/comm').read_text().strip()} (pid {os.getpid()})"


def pid_file(config: Path) -> Path:
    return config.parent / "ccrouter.pid"


def test_status_when_never_started(config: Path) -> None:
    result = runner.invoke(app, ["status"], env=WIDE)
    assert result.exit_code == 3
    assert "not running" in result.stdout


def test_stop_when_not_running(config: Path) -> None:
    result = runner.invoke(app, ["stop"], env=WIDE)
    assert result.exit_code == 0
    assert "not running" in result.stdout


def test_stale_pid_file_of_a_dead_process_is_removed(config: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file(config).write_bytes(
        orjson.dumps(
            {"pid": dead.pid, "host": "127.0.0.1", "port": 1, "started_at": 0, "config": str(config)}
        )
    )
    result = runner.invoke(app, ["status"], env=WIDE)
    assert result.exit_code == 3
    assert not pid_file(config).exists()


def test_pid_file_pointing_at_another_program_is_stale(config: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        pid_file(config).write_bytes(
            orjson.dumps({"pid": other.pid, "host": "127.0.0.1", "port": 1, "started_at": 0, "config": ""})
        )
        assert runner.invoke(app, ["stop"], env=WIDE).exit_code == 0
        assert runner.invoke(app, ["status"], env=WIDE).exit_code == 3
        assert not pid_file(config).exists()
        assert other.poll() is None  # not ours: never signalled
    finally:
        other.kill()
        other.wait()


def test_garbage_pid_file_is_stale(config: Path) -> None:
    pid_file(config).write_text("not json")
    assert runner.invoke(app, ["status"], env=WIDE).exit_code == 3
    assert not pid_file(config).exists()


def test_start_status_restart_stop(config: Path) -> None:
    started = runner.invoke(app, ["start", "--port", "0"], env=WIDE)
    assert started.exit_code == 0, started.output
    info = orjson.loads(pid_file(config).read_bytes())
    assert set(info) == {"pid", "host", "port", "started_at", "config"}
    assert info["host"] == "127.0.0.1"
    assert info["port"] > 0
    assert info["config"] == str(config)
    assert abs(info["started_at"] - time.time()) < 30
    url = f"http://127.0.0.1:{info['port']}"
    assert f"ccrouter started (pid {info['pid']}) on {url}" in started.stdout
    health = get_health(url)
    assert health is not None
    assert health["simulated"] is True
    log = " ".join((config.parent / "ccrouter.log").read_text().split())
    assert f"ccrouter {ccrouter.__version__} on {url}" in log  # the serve banner
    assert "SIMULATED PROVIDER" in log
    # How to point Claude Code at it, with a credential it takes without asking.
    assert f"Use it: ANTHROPIC_BASE_URL={url} ANTHROPIC_AUTH_TOKEN=ccrouter claude" in log
    assert f"Dashboard: {url}/ui/ (log in with a key of role viewer and above: ccrouter keys create" in log

    status = runner.invoke(app, ["status"], env=WIDE)
    assert status.exit_code == 0, status.output
    assert "ccrouter is running" in status.stdout
    assert f"pid:     {info['pid']}" in status.stdout
    assert f"url:     {url}" in status.stdout
    assert "simulated   simulated   sim-1" in status.stdout

    again = runner.invoke(app, ["start"], env=WIDE)
    assert again.exit_code == 0
    assert f"already running (pid {info['pid']})" in again.stdout

    restarted = runner.invoke(app, ["restart"], env=WIDE)
    assert restarted.exit_code == 0, restarted.output
    new = orjson.loads(pid_file(config).read_bytes())
    assert new["pid"] != info["pid"]
    assert new["port"] == info["port"]
    assert not is_alive(info["pid"])

    stopped = runner.invoke(app, ["stop"], env=WIDE)
    assert stopped.exit_code == 0
    assert f"ccrouter stopped (pid {new['pid']})" in stopped.stdout
    assert not pid_file(config).exists()
    assert not is_alive(new["pid"])
    assert get_health(url, timeout=0.5) is None
    assert runner.invoke(app, ["status"], env=WIDE).exit_code == 3


def test_start_on_a_port_taken_by_another_program(config: Path) -> None:
    # Said before spawning anything: who holds the port, and what to do; no pid file.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["start", "--port", str(port)], env=WIDE)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use by {this_program()}; use --port or stop it"
    ]
    assert not pid_file(config).exists()


def test_start_reports_a_gateway_that_cannot_start(config: Path) -> None:
    # The child exits during startup (its ledger's database cannot be reached; the config itself is
    # valid, so start spawns it): start shows the log's end.
    port = _free_port()
    config.write_text(
        config.read_text() + f"store:\n  url: postgresql://postgres@127.0.0.1:{port}/no_such_db_x\n"
    )
    result = runner.invoke(app, ["start", "--port", "0"], env=WIDE)
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "the gateway exited during startup" in message
    assert "store.url: cannot connect to PostgreSQL" in message
    assert not pid_file(config).exists()


def test_start_with_a_routing_hook_that_does_not_import_fails_before_spawning(config: Path) -> None:
    config.write_text(config.read_text().replace("router:\n", "router:\n  custom: no_such_module_x:choose\n"))
    result = runner.invoke(app, ["start", "--port", "0"], env=WIDE)
    assert result.exit_code == 1
    assert "router.custom: cannot import 'no_such_module_x'" in " ".join(result.stderr.split())
    assert not pid_file(config).exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_start_with_a_bad_config_fails_before_spawning(config: Path) -> None:
    config.write_text("providers: []\nrouter: {default: 'nowhere,x'}\n")
    result = runner.invoke(app, ["start"], env=WIDE)
    assert result.exit_code == 1
    assert "router.default: unknown provider 'nowhere'" in " ".join(result.stderr.split())
    assert not (config.parent / "ccrouter.log").exists()


def test_start_refuses_a_public_bind_without_client_keys(config: Path) -> None:
    result = runner.invoke(app, ["start", "--host", "0.0.0.0"], env=WIDE)
    assert result.exit_code == 1
    assert "refusing to bind '0.0.0.0' without client auth" in " ".join(result.stderr.split())
    assert not pid_file(config).exists()
