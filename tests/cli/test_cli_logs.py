"""`ccrouter logs` against the log of a real background gateway: pretty lines, filters by request id
and level, JSON, the last N, following as it grows and across a rotation, and a clear error when
there is no log file."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import ccrouter
from ccrouter.logfile import parse, tail

CONFIG = """\
server: {host: 127.0.0.1, port: 0}
providers: [{name: simulated, type: simulated, models: [sim-1]}]
router: {default: 'simulated,sim-1'}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    source = str(Path(ccrouter.__file__).parents[1])
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update(HOME=str(tmp_path), NO_COLOR="1", CCROUTER_CONFIG=str(tmp_path / "cfg" / "config.yaml"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ccrouter.cli.main", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[dict[str, str], str, Path]]:
    """A background gateway started by `ccrouter start`: (environment, url, log file)."""
    env = _env(tmp_path)
    config = tmp_path / "cfg" / "config.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG, encoding="utf-8")
    started = cli(env, "start")
    assert started.returncode == 0, started.stderr
    info = orjson.loads((config.parent / "ccrouter.pid").read_bytes())
    try:
        yield env, f"http://127.0.0.1:{info['port']}", config.parent / "ccrouter.log"
    finally:
        assert cli(env, "stop").returncode == 0


def call(url: str, request_id: str, body: dict[str, object] | None = None) -> int:
    payload = body or {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        f"{url}/v1/messages",
        data=orjson.dumps(payload),
        headers={"content-type": "application/json", "x-request-id": request_id},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for(path: Path, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, f"{text!r} never reached {path}"
        time.sleep(0.05)


def test_logs_shows_filters_and_prints_json(gateway: tuple[dict[str, str], str, Path]) -> None:
    env, url, log = gateway
    assert call(url, "req-one") == 200
    assert call(url, "req-two") == 200
    assert call(url, "req-bad", {"model": "m"}) == 400
    wait_for(log, "req-bad")

    shown = cli(env, "logs")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.startswith("--- ccrouter start") for line in lines)  # plain text kept, unfiltered
    (one,) = [line for line in lines if "req-one" in line]
    # time, level, event, request id, key fields
    assert one.split()[2:5] == ["INFO", "request", "req-one"]
    for field in ("status=200", "route=messages", "provider=simulated", "model=sim-1", "duration_ms="):
        assert field in one
    (bad,) = [line for line in lines if "req-bad" in line]
    assert "WARNING request req-bad status=400" in " ".join(bad.split())

    only = cli(env, "logs", "--request", "req-two").stdout.splitlines()
    assert len(only) == 1
    assert "req-two" in only[0]
    assert "INFO" in only[0]

    warnings = cli(env, "logs", "--level", "warning").stdout.splitlines()
    assert len(warnings) == 1
    assert "req-bad" in warnings[0]

    records = [orjson.loads(line) for line in cli(env, "logs", "--json", "-n", "2").stdout.splitlines()]
    assert [r["request_id"] for r in records] == ["req-two", "req-bad"]
    assert records[0]["usage"]["input"] > 0

    refused = cli(env, "logs", "--level", "loud")
    assert refused.returncode == 2
    assert "expected one of debug, info, warning, error," in " ".join(refused.stderr.split())


@contextlib.contextmanager
def following(env: dict[str, str], *args: str) -> Iterator[list[str]]:
    """`ccrouter logs -f -n 0 ARGS` running; the lines it printed so far (a thread reads them)."""
    command = [sys.executable, "-m", "ccrouter.cli.main", "logs", "-f", "-n", "0", *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)  # it ends at the pipe's end of file
        assert process.stdout is not None
        process.stdout.close()


def _wait_seen(seen: list[str], text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in seen):
        assert time.monotonic() < deadline, f"{text!r} not followed; saw {seen}"
        time.sleep(0.05)


def test_follow_sees_new_requests_and_a_truncating_rotation(
    gateway: tuple[dict[str, str], str, Path],
) -> None:
    env, url, log = gateway
    with following(env, "--request", "req-f2") as seen:
        time.sleep(1.0)  # the follower is at the end of the file
        assert call(url, "req-f1") == 200
        assert call(url, "req-f2") == 200
        _wait_seen(seen, "req-f2")
        # logrotate's copytruncate: the gateway appends (O_APPEND) to the emptied file.
        log.write_bytes(b"")
        time.sleep(0.6)
        assert call(url, "req-f2") == 200
        deadline = time.monotonic() + 10
        while sum("req-f2" in line for line in seen) < 2:
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        assert not any("req-f1" in line for line in seen)  # the filter applies while following


def test_follow_reopens_a_file_replaced_by_rotation(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    line = (
        '{{"event": "request", "level": "info", "request_id": "{}", "timestamp": "2026-12-02T10:00:00Z"}}\n'
    )
    log.write_text(line.format("before"), encoding="utf-8")
    with following(_env(tmp_path), "--file", str(log)) as seen:
        time.sleep(1.0)
        with log.open("a", encoding="utf-8") as handle:
            handle.write(line.format("appended"))
        _wait_seen(seen, "appended")
        log.rename(tmp_path / "gateway.log.1")  # rotated by moving; a new file takes its place
        log.write_text(line.format("in-the-new-file"), encoding="utf-8")
        _wait_seen(seen, "in-the-new-file")
        assert not any("before" in item for item in seen)  # -n 0: nothing from the past


def test_no_log_file_is_one_clear_error(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = cli(env, "logs")
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    log = tmp_path / "cfg" / "ccrouter.log"
    assert message.startswith(f"error: no log file at {log} (`ccrouter start` writes it)")
    assert "ccrouter logs --file" in message
    assert "Traceback" not in done.stderr


def test_tail_reads_the_end_of_a_large_file(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with log.open("w", encoding="utf-8") as handle:
        for i in range(20_000):
            level = "error" if i % 1000 == 0 else "info"
            handle.write(
                orjson.dumps({"event": f"e{i}", "level": level, "request_id": f"r{i}"}).decode() + "\n"
            )
        handle.write("plain text at the end, no newline")
    last = tail(log, 3, lambda record: True)
    assert [r.data["event"] if r.data else r.text for r in last] == [
        "e19998",
        "e19999",
        "plain text at the end, no newline",
    ]
    errors = tail(log, 2, lambda record: record.level == "error")
    assert [r.data["event"] for r in errors if r.data] == ["e18000", "e19000"]
    assert parse("{not json").data is None
