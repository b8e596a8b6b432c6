"""A taken port: one clear line naming who holds it; `code`/`start` check that the gateway answering is
the one they started; `status` sees a foreground gateway."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import ccrouter
from ccrouter.cli.port import Holder, PortInUseError, in_use_message, listener, probe
from ccrouter.cli.process import spawn_gateway

CONFIG = """\
server: {{port: {port}}}
providers: [{{name: simulated, type: simulated, models: [sim-1]}}]
router: {{default: 'simulated,sim-1'}}
"""


# Records the gateway it was pointed at (tests/cli/test_cli_code.py has the fuller one).
FAKE_CLAUDE = """\
#!{python}
import json, os
with open(os.environ["FAKE_CLAUDE_OUT"], "w") as out:
    json.dump({{"base_url": os.environ["ANTHROPIC_BASE_URL"]}}, out)
"""


def install_fake_claude(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "claude").write_text(FAKE_CLAUDE.format(python=sys.executable))
    (directory / "claude").chmod(0o755)


def this_program() -> str:
    """How a port error names this test process when it holds the port (Linux /proc)."""
    return f"{Path('/proc/self/comm').read_text().strip()} (pid {os.getpid()})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(tmp_path: Path, config: Path) -> dict[str, str]:
    source = str(Path(ccrouter.__file__).parents[1])  # the subprocesses import this very tree
    return {
        **os.environ,
        "HOME": str(tmp_path),
        "CCROUTER_CONFIG": str(config),
        "COLUMNS": "250",
        "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
    }


def claude_environment(tmp_path: Path, config: Path) -> dict[str, str]:
    """``environment`` with the fake ``claude`` first on PATH, recording into claude.json."""
    bin_dir = tmp_path / "bin"
    install_fake_claude(bin_dir)
    env = environment(tmp_path, config)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["FAKE_CLAUDE_OUT"] = str(tmp_path / "claude.json")
    return env


def write_config(directory: Path, port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yaml"
    config.write_text(CONFIG.format(port=port))
    return config


def ccrouter_cli(env: dict[str, str], *args: str, timeout: float = 45) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def serving(tmp_path: Path, config: Path, port: int, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """``ccrouter serve --config config`` in the foreground, once it answers as itself on ``port``."""
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(config)],
            env=environment(tmp_path, config),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while (holder := probe("127.0.0.1", port, timeout=0.5)) is None or holder.pid != process.pid:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"the {name} gateway did not start"
                time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            process.wait(15)


@pytest.fixture
def foreground(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A `ccrouter serve` in the foreground (its own config folder, so no pid file anywhere)."""
    port = free_port()
    with serving(tmp_path, write_config(tmp_path / "foreground", port), port, "foreground") as process:
        yield process, port


@pytest.fixture
def other_program() -> Iterator[int]:
    """A port held by a listener that is not ccrouter (it accepts and never answers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_probe_tells_nobody_ccrouter_and_another_program_apart(
    foreground: tuple[subprocess.Popen[bytes], int], other_program: int
) -> None:
    process, port = foreground
    holder = probe("127.0.0.1", port)
    assert holder is not None
    assert (holder.ccrouter, holder.pid) == (True, process.pid)  # GET / carries the gateway's pid
    assert probe("127.0.0.1", other_program, timeout=0.3) == probe("127.0.0.1", other_program, timeout=0.3)
    other = probe("127.0.0.1", other_program, timeout=0.3)
    assert other is not None
    assert not other.ccrouter
    assert probe("127.0.0.1", free_port()) is None


def test_serve_on_a_port_taken_by_another_program_is_one_line(tmp_path: Path, other_program: int) -> None:
    config = write_config(tmp_path / "cfg", other_program)
    done = ccrouter_cli(environment(tmp_path, config), "serve")
    assert done.returncode == 1
    # The program is named when /proc shows it: here, this very test process holds the port.
    message = f"port {other_program} on 127.0.0.1 is already in use by {this_program()}"
    assert done.stderr.splitlines() == [f"error: {message}; use --port or stop it"]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_taken_by_ccrouter_names_its_pid(
    tmp_path: Path, foreground: tuple[subprocess.Popen[bytes], int], workers: str
) -> None:
    process, port = foreground
    config = write_config(tmp_path / "cfg", port)
    done = ccrouter_cli(environment(tmp_path, config), "serve", "--workers", workers)
    assert done.returncode == 1
    expected = f"error: port {port} on 127.0.0.1 is already in use by ccrouter (pid {process.pid})"
    assert done.stderr.splitlines() == [f"{expected}; use --port or stop it"]


def test_start_does_not_take_a_foreground_gateway_for_its_own(
    tmp_path: Path, foreground: tuple[subprocess.Popen[bytes], int]
) -> None:
    process, port = foreground
    config = write_config(tmp_path / "cfg", port)
    done = ccrouter_cli(environment(tmp_path, config), "start")
    assert done.returncode == 1, done.stdout
    assert f"port {port} on 127.0.0.1 is already in use by ccrouter (pid {process.pid})" in done.stderr
    assert "started" not in done.stdout
    assert not (config.parent / "ccrouter.pid").exists()


def test_spawn_checks_that_the_answer_comes_from_the_process_it_started(
    tmp_path: Path, foreground: tuple[subprocess.Popen[bytes], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Below ensure_running's own check: the spawned child dies on the taken port while the other
    # gateway answers /health; that answer must not pass for the child's.
    process, port = foreground
    config = write_config(tmp_path / "cfg", port)
    for name, value in environment(tmp_path, config).items():
        monkeypatch.setenv(name, value)
    expected = rf"could not start: port {port} .* by ccrouter \(pid {process.pid}\)"
    with pytest.raises(PortInUseError, match=expected):
        spawn_gateway(config, "127.0.0.1", port)
    assert not (config.parent / "ccrouter.pid").exists()


def test_code_uses_a_foreground_gateway_and_says_which(
    tmp_path: Path, foreground: tuple[subprocess.Popen[bytes], int]
) -> None:
    process, port = foreground
    config = write_config(tmp_path / "cfg", port)
    env = claude_environment(tmp_path, config)
    done = ccrouter_cli(env, "code", "-p", "hi")
    assert done.returncode == 0, done.stderr
    url = f"http://127.0.0.1:{port}"
    assert f"using the ccrouter already listening on {url} (pid {process.pid})" in done.stderr
    assert "started in the background" not in done.stderr
    assert orjson.loads((tmp_path / "claude.json").read_bytes())["base_url"] == url
    assert not (config.parent / "ccrouter.pid").exists()


def test_code_refuses_a_port_held_by_another_program(tmp_path: Path, other_program: int) -> None:
    config = write_config(tmp_path / "cfg", other_program)
    env = claude_environment(tmp_path, config)
    done = ccrouter_cli(env, "code", "-p", "hi")
    assert done.returncode == 1
    assert f"port {other_program} on 127.0.0.1 is already in use by {this_program()}" in done.stderr
    assert not (tmp_path / "claude.json").exists()  # claude never ran against it


def test_status_sees_a_foreground_gateway(
    tmp_path: Path, foreground: tuple[subprocess.Popen[bytes], int]
) -> None:
    process, port = foreground
    config = write_config(tmp_path / "cfg", port)
    done = ccrouter_cli(environment(tmp_path, config), "status")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ccrouter is running in the foreground" in done.stdout
    assert f"pid:     {process.pid}" in done.stdout
    assert f"url:     http://127.0.0.1:{port}" in done.stdout
    assert "simulated" in done.stdout
    # `stop` does not claim it is not running, nor signals it: it says where to stop it.
    stopped = ccrouter_cli(environment(tmp_path, config), "stop")
    assert stopped.returncode == 1
    assert f"(pid {process.pid}) runs in the foreground" in stopped.stderr
    assert process.poll() is None
    # Nothing on the port: still "not running" (exit 3), as before.
    config.write_text(CONFIG.format(port=free_port()))
    assert ccrouter_cli(environment(tmp_path, config), "status").returncode == 3


def test_status_reads_protected_provider_state_with_the_configured_admin_token(tmp_path: Path) -> None:
    """With /health/providers protected (as it is beyond loopback), `status` sends the config's admin
    token and still shows the live provider state; without the token it says why it is missing."""
    port = free_port()
    folder = tmp_path / "protected"
    folder.mkdir()
    config = folder / "config.yaml"
    server = f"server: {{port: {port}, admin_token: admin-token-0123456789, protect_observability: true}}\n"
    config.write_text(server + CONFIG.format(port=port).split("\n", 1)[1])
    with serving(tmp_path, config, port, "protected"):
        done = ccrouter_cli(environment(tmp_path, config), "status")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "breaker" in done.stdout
        assert "live provider state not shown" not in done.stdout
        # Another config naming the same gateway with a wrong token (the gateway's own file would be
        # reloaded: the admin token changes with a reload).
        wrong = tmp_path / "wrong" / "config.yaml"
        wrong.parent.mkdir()
        wrong.write_text(config.read_text().replace("admin-token-0123456789", "another-token-0123456789"))
        done = ccrouter_cli(environment(tmp_path, wrong), "status")
        assert "live provider state not shown" in done.stdout


def test_listener_names_the_process_holding_a_port(other_program: int) -> None:
    assert listener(other_program) == (os.getpid(), Path("/proc/self/comm").read_text().strip())
    assert listener(free_port()) is None
    message = in_use_message("127.0.0.1", free_port(), Holder(ccrouter=False))
    assert message.endswith("is already in use by another program; use --port or stop it")
