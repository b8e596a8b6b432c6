"""`make test` checks its prerequisites first (scripts/check-test-prereqs.py) and says what is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "scripts" / "check-test-prereqs.py"


@pytest.fixture
def closed_port() -> Iterator[str]:
    """host:port of a bound socket that never listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def chatty_port() -> Iterator[str]:
    """host:port of a server that answers every connection with something that is neither service."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)  # close() does not wake a blocked accept(): poll a stop flag instead
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    server.close()


def run_check(path: str | None = None, script: Path = CHECK, **env: str) -> subprocess.CompletedProcess[str]:
    # A Claude Code and a Codex CLI that are there, unless a test says otherwise: no test installs one
    # from npm.
    installed = {"CCROUTER_TEST_CLAUDE": sys.executable, "CCROUTER_TEST_CODEX": sys.executable}
    environ = {**os.environ, **installed, **env}
    if path is not None:
        environ["PATH"] = path
    return subprocess.run(
        [sys.executable, str(script)], env=environ, capture_output=True, text=True, timeout=30, check=False
    )


def test_silent_when_everything_is_there() -> None:
    # This machine (and CI) has promtool, Redis and PostgreSQL: the check must then say nothing.
    done = run_check()
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_one_message_names_every_missing_thing_and_how_to_get_it(tmp_path: Path, closed_port: str) -> None:
    done = run_check(
        str(tmp_path),
        script=_copied_check(tmp_path),  # a tree without any claude CLI
        CCROUTER_TEST_CLAUDE="",
        CCROUTER_TEST_CODEX="",
        CCROUTER_TEST_REDIS=closed_port,
        CCROUTER_TEST_POSTGRES=closed_port,
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith("make test: this machine lacks what the test suite needs")
    assert len(lines) == 6, done.stderr  # the header, then one line per missing thing
    promtool, redis, postgres, claude, codex = lines[1:]
    assert claude.startswith("  - the Claude Code CLI (@anthropic-ai/claude-code@2.1.332")
    assert "npm" in claude
    assert codex.startswith("  - the Codex CLI (@openai/codex@0.171.0")
    assert "npm" in codex
    assert promtool.startswith("  - promtool")
    assert "apt-get install" in promtool
    assert redis.startswith(f"  - Redis at {closed_port} (connection refused: not running)")
    assert "redis-server --daemonize yes" in redis
    assert postgres.startswith(f"  - PostgreSQL at {closed_port} (connection refused: not running)")
    for detail in ("user postgres", "database test", "trust"):
        assert detail in postgres


def _copied_check(tmp_path: Path) -> Path:
    """The check script in a tree of its own (it looks for the CLI beside it)."""
    (tmp_path / "tree" / "scripts").mkdir(parents=True)
    return Path(shutil.copy(CHECK, tmp_path / "tree" / "scripts" / CHECK.name))


def test_a_missing_claude_cli_is_installed_with_npm_pinned(tmp_path: Path) -> None:
    script = _copied_check(tmp_path)
    tree = script.parent.parent
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "npm.log"
    # A stand-in npm (no network in tests): records its arguments, makes the CLI where npm would.
    npm = bin_dir / "npm"
    npm.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {log}\n'
        'mkdir -p "$3/node_modules/.bin" && printf "#!/bin/sh\\n" > "$3/node_modules/.bin/claude"\n'
        'chmod +x "$3/node_modules/.bin/claude"\n'
    )
    npm.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    done = run_check(path, script=script, CCROUTER_TEST_CLAUDE="")
    cache = tree / ".cache" / "claude-code"
    assert log.read_text().split() == [
        "install",
        "--prefix",
        str(cache),
        "--no-audit",
        "--no-fund",
        "@anthropic-ai/claude-code@2.1.332",
    ]
    assert (cache / "node_modules" / ".bin" / "claude").is_file()
    assert "Claude Code" not in done.stderr.split("lacks", 1)[-1]
    # Found the next time: npm is not run again.
    log.unlink()
    run_check(path, script=script, CCROUTER_TEST_CLAUDE="")
    assert not log.exists()


def test_a_wrong_claude_path_is_named(tmp_path: Path) -> None:
    done = run_check(CCROUTER_TEST_CLAUDE=str(tmp_path / "nothing"))
    assert f"CCROUTER_TEST_CLAUDE={tmp_path / 'nothing'} is not an executable file" in done.stderr


def test_a_port_held_by_something_else_is_named_as_such(chatty_port: str) -> None:
    done = run_check(CCROUTER_TEST_REDIS=chatty_port, CCROUTER_TEST_POSTGRES=chatty_port)
    assert done.returncode == 1
    assert f"Redis at {chatty_port}: something else answers there" in done.stderr
    assert f"PostgreSQL at {chatty_port}: something else answers there" in done.stderr


def test_make_test_runs_the_check_before_building_anything(tmp_path: Path, closed_port: str) -> None:
    make = shutil.which("make")
    assert make is not None, "make is needed (it is what the README tells a user to run)"
    # A copy of the tree without .venv: the check must stop `make test` before any venv or install.
    for name in ("Makefile", "pyproject.toml", "scripts"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    done = subprocess.run(
        [make, "-C", str(tmp_path), "test", f"PY={sys.executable}"],
        env={**os.environ, "CCROUTER_TEST_REDIS": closed_port, "CCROUTER_TEST_CLAUDE": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert f"Redis at {closed_port} (connection refused" in done.stderr
    assert not (tmp_path / ".venv").exists()


def test_ci_runs_exactly_make_test() -> None:
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make")]
    assert commands == ["make test"]


def test_the_venv_make_creates_upgrades_pip_and_setuptools() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "-m pip install --quiet --upgrade pip setuptools" in makefile


def test_make_run_passes_serve_args() -> None:
    make = shutil.which("make")
    assert make is not None
    done = subprocess.run(
        [make, "-n", "-C", str(ROOT), "run", "SERVE_ARGS=--port 4000"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert ".venv/bin/ccrouter serve --port 4000" in done.stdout
