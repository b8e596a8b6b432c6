"""`ccrouter statusline` against a real gateway subprocess (the fake upstream behind it), the ledger
when the gateway is stopped, bad stdin, `--format`; always exit 0, one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

import ccrouter
from ccrouter.cli.main import app
from ccrouter.cli.process import get_health

SESSION = "7d3f5c1e-2a4b-4c8d-9e0f-1a2b3c4d5e6f"
MODEL = "claude-sonnet-4-6"
FIXTURE = Path(__file__).parents[1] / "fixtures" / "statusline_stdin.json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(config: Path) -> dict[str, str]:
    source = str(Path(ccrouter.__file__).parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCROUTER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    env["HOME"] = str(config.parent)
    env["CCROUTER_CONFIG"] = str(config)
    # A test machine may be busy: the gateway's answer, not its speed, is tested here (bench/statusline.py).
    env["CCROUTER_STATUSLINE_TIMEOUT_MS"] = "5000"
    return env


def statusline(config: Path, stdin: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script's path: ``ccrouter.cli.launch``."""
    return subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.launch", "statusline", *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env=_env(config),
        timeout=30,
    )


def stdin_for(session: str) -> bytes:
    data = orjson.loads(FIXTURE.read_bytes())
    data["session_id"] = session
    return orjson.dumps(data)


def _wait_for(url: str, path: str = "/health") -> None:
    deadline = time.monotonic() + 20
    while get_health(url, timeout=0.5, path=path) is None:
        assert time.monotonic() < deadline, f"{url} did not start"
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def fake_url(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ccrouter.testing.fake_upstream", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(tmp_path / "config.yaml"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the fake did not start"
                assert process.poll() is None, "the fake exited"
                time.sleep(0.1)
        yield url
    finally:
        _stop(process)


@pytest.fixture
def config(tmp_path: Path, fake_url: str) -> Path:
    path = tmp_path / "cfg" / "config.yaml"
    path.parent.mkdir()
    settings = {
        "server": {"port": _free_port()},
        "providers": [
            {
                "name": name,
                "type": "anthropic",
                "base_url": fake_url,
                "api_key": f"sk-{name}",
                "models": [MODEL],
            }
            for name in ("a", "b")
        ],
        "router": {"default": f"a,{MODEL}", "fallback": {"default": [f"b,{MODEL}"]}},
        "routing": {"strategy": "priority"},
        "prices": {f"{n},{MODEL}": {"input": 3, "output": 15} for n in ("a", "b")},
        "store": {"flush_interval_s": 0.05},
    }
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def gateway(config: Path) -> Iterator[str]:
    port = yaml.safe_load(config.read_text())["server"]["port"]
    process = subprocess.Popen(
        [sys.executable, "-m", "ccrouter.cli.main", "serve", "--no-watch"],
        env=_env(config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url)
        yield url
    finally:
        _stop(process)


def _ask(url: str, session: str) -> None:
    import urllib.request

    request = urllib.request.Request(
        url + "/v1/messages",
        data=orjson.dumps(
            {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
        ),
        headers={"content-type": "application/json", "x-claude-code-session-id": session},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        assert response.status == 200


def test_prints_the_route_of_the_session(config: Path, gateway: str) -> None:
    state = orjson.loads((config.parent / "statusline.json").read_bytes())
    assert state["url"] == gateway
    assert (config.parent / "statusline.json").stat().st_mode & 0o777 == 0o600
    assert "sk-a" not in (config.parent / "statusline.json").read_text()
    _ask(gateway, SESSION)
    result = statusline(config, stdin_for(SESSION))
    assert result.returncode == 0
    line = result.stdout.strip()
    assert line.startswith(f"a,{MODEL} default $0.00")
    assert "tok/s" in line
    assert "(ledger)" not in line
    other = statusline(config, stdin_for("00000000-0000-0000-0000-000000000000"))
    assert other.stdout.strip() == "ccrouter: no request of this session through the gateway yet"
    custom = statusline(
        config, stdin_for(SESSION), "--format", "{provider}|{requests_today}|{source}|{cc_model}"
    )
    assert custom.stdout.strip() == "a|1|gateway|Opus"


def test_reads_the_ledger_when_the_gateway_is_stopped(config: Path, fake_url: str) -> None:
    port = yaml.safe_load(config.read_text())["server"]["port"]
    process = subprocess.Popen(
        [sys.executable, "-m", "ccrouter.cli.main", "serve", "--no-watch"],
        env=_env(config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}")
        _ask(f"http://127.0.0.1:{port}", SESSION)
    finally:
        _stop(process)
    result = statusline(config, stdin_for(SESSION), "--format", "{route} {source} {requests_today} {marker}")
    assert (result.returncode, result.stdout.strip()) == (0, f"a,{MODEL} ledger 1 (ledger)")


def test_no_gateway_and_no_ledger(tmp_path: Path) -> None:
    config = tmp_path / "none" / "config.yaml"
    result = statusline(config, stdin_for(SESSION))
    assert (result.returncode, result.stdout.strip()) == (0, "ccrouter: gateway not running")


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        (b"{not json", "ccrouter: no statusline JSON on stdin"),
        (b"", "ccrouter: no statusline JSON on stdin"),
        (b'{"model": {"display_name": "Opus"}}', "ccrouter: no session id on stdin"),
        (b'{"session_id": "../../etc"}', "ccrouter: no session id on stdin"),
    ],
)
def test_bad_stdin_is_one_line_and_exit_0(tmp_path: Path, stdin: bytes, expected: str) -> None:
    result = statusline(tmp_path / "config.yaml", stdin)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, expected, "")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{nope}", "ccrouter statusline: unknown field {nope}"),
        ("{route:.2f}", "ccrouter statusline: bad template"),
        ("{route", "ccrouter statusline: bad template"),
    ],
)
def test_bad_format_is_one_line(tmp_path: Path, template: str, expected: str) -> None:
    result = statusline(tmp_path / "config.yaml", stdin_for(SESSION), "--format", template)
    assert result.returncode == 0
    assert result.stdout.startswith(expected)
    assert result.stdout.count("\n") == 1


def test_listed_in_help_and_has_its_own_help() -> None:
    runner = CliRunner()
    assert "statusline" in runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).stdout
    result = subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.launch", "statusline", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=30,
    )
    assert result.returncode == 0
    assert "--format" in result.stdout
    assert "spend_today" in result.stdout
