"""`ccrouter logs` of a foreground `ccrouter serve` (no log file): the gateway's recent records
through `GET /api/logs`, filtered and followed; the API's bounds, filters and authentication."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

import ccrouter

ADMIN = "admin-token-for-logs-test"
KEY = "sk-simulated-key-never-logged-0123456789"


@dataclass(frozen=True)
class Gateway:
    url: str
    token: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(config: Path) -> dict[str, str]:
    source = str(Path(ccrouter.__file__).parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCROUTER_") and k != "COLUMNS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    env.update(HOME=str(config.parent), NO_COLOR="1", CCROUTER_CONFIG=str(config))
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ccrouter.cli.main", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One foreground gateway (console log format, as in a terminal) for the module."""
    root = tmp_path_factory.mktemp("logs-gateway")
    config = root / "cfg" / "config.yaml"
    config.parent.mkdir()
    port = _free_port()
    settings = {
        "server": {"host": "127.0.0.1", "port": port, "admin_token": ADMIN},
        "logging": {"format": "console"},
        "providers": [{"name": "simulated", "type": "simulated", "api_key": KEY, "models": ["sim-1"]}],
        "router": {"default": "simulated,sim-1"},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    env = _env(config)
    with (root / "serve.err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "ccrouter.cli.main", "serve", "--no-watch"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        state = config.parent / "statusline.json"
        while True:
            assert process.poll() is None, (root / "serve.err").read_text()
            if state.is_file() and _get(url, "/health")[0] == 200:
                break
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        assert not (config.parent / "ccrouter.log").exists()
        yield Gateway(url, orjson.loads(state.read_bytes())["token"], env)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    try:
        with _OPENER.open(urllib.request.Request(url + path, headers=headers), timeout=10) as response:
            return int(response.status), orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")
    except (urllib.error.URLError, OSError):
        return 0, None


def logs_api(gateway: Gateway, **query: str | int) -> tuple[int, Any]:
    return _get(gateway.url, "/api/logs?" + urllib.parse.urlencode(query), gateway.token)


def call(gateway: Gateway, request_id: str, model: str = "sim-1") -> int:
    request = urllib.request.Request(
        f"{gateway.url}/v1/messages",
        data=orjson.dumps({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
        headers={"content-type": "application/json", "x-request-id": request_id},
    )
    try:
        with _OPENER.open(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_logged(gateway: Gateway, request_id: str) -> list[dict[str, Any]]:
    """The records of ``request_id`` once its request line is in the ring."""
    deadline = time.monotonic() + 10
    while True:
        status, body = logs_api(gateway, request=request_id, limit=2000)
        assert status == 200, body
        if any(item["record"].get("event") == "request" for item in body["records"]):
            return [item["record"] for item in body["records"]]
        assert time.monotonic() < deadline, f"{request_id} was never logged"
        time.sleep(0.05)


def test_logs_of_a_foreground_gateway_by_request(gateway: Gateway) -> None:
    assert call(gateway, "req-logs-one") == 200
    assert call(gateway, "req-logs-other") == 200
    wait_logged(gateway, "req-logs-one")
    done = cli(gateway.env, "logs", "--request", "req-logs-one")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines
    assert all("req-logs-one" in line for line in lines)
    assert any(" request req-logs-one status=200" in line for line in lines), done.stdout
    assert "req-logs-other" not in done.stdout
    as_json = cli(gateway.env, "logs", "--request", "req-logs-one", "--json")
    records = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert any(r["event"] == "request" and r["provider"] == "simulated" for r in records)
    assert KEY not in done.stdout + as_json.stdout


def test_follow_shows_a_later_request(gateway: Gateway) -> None:
    command = [
        sys.executable,
        "-m",
        "ccrouter.cli.main",
        "logs",
        "-f",
        "-n",
        "0",
        "--request",
        "req-logs-later",
    ]
    seen: list[str] = []
    with subprocess.Popen(
        command, env=gateway.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        out = process.stdout
        assert out is not None
        reader = threading.Thread(target=lambda: seen.extend(iter(out.readline, "")), daemon=True)
        reader.start()
        try:
            time.sleep(2.0)  # the follower is polling by now (it prints nothing of the past: -n 0)
            assert process.poll() is None, "the follower exited"
            assert seen == []
            assert call(gateway, "req-logs-later") == 200
            deadline = time.monotonic() + 15
            while not any("req-logs-later status=200" in line for line in seen):
                assert time.monotonic() < deadline, f"not followed: {seen}"
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(5)
    assert process.returncode == 0


def test_the_api_pages_and_filters(gateway: Gateway) -> None:
    assert call(gateway, "req-logs-bad", model="no-such-provider,x") >= 400
    assert call(gateway, "req-logs-page") == 200
    wait_logged(gateway, "req-logs-page")
    status, last = logs_api(gateway, limit=1)
    assert status == 200
    assert len(last["records"]) == 1
    newest = last["records"][0]["seq"]
    assert last["next"] == newest + 1
    status, recent = logs_api(gateway, limit=5)
    seqs = [item["seq"] for item in recent["records"]]
    assert seqs == sorted(seqs)
    assert seqs[-1] == newest
    assert len(seqs) == 5
    # since: from that seq on, oldest first; nothing new past next
    status, after = logs_api(gateway, since=seqs[1], limit=2)
    assert [item["seq"] for item in after["records"]] == seqs[1:3]
    assert after["next"] == seqs[3]
    assert logs_api(gateway, since=last["next"])[1] == {"records": [], "next": last["next"]}
    # level: warning and above only (the refused request's line is one)
    status, warned = logs_api(gateway, level="warning", limit=2000)
    assert warned["records"]
    assert all(item["record"]["level"] in ("warning", "error", "critical") for item in warned["records"])
    assert any(item["record"].get("request_id") == "req-logs-bad" for item in warned["records"])
    # bounds: a clear 400 in the Anthropic envelope, never a 500
    for query in ({"limit": 2001}, {"limit": -1}, {"since": "x"}, {"level": "loud"}, {"request": "r" * 300}):
        status, body = logs_api(gateway, **query)
        assert status == 400, (query, body)
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"


def test_auth(gateway: Gateway) -> None:
    assert _get(gateway.url, "/api/logs")[0] == 401
    assert _get(gateway.url, "/api/logs", "wrong-token")[0] == 401
    assert _get(gateway.url, "/api/logs?limit=1", ADMIN)[0] == 200
    assert _get(gateway.url, "/api/logs?limit=1", gateway.token)[0] == 200
    # the read token opens the logs and the sessions, not the rest of /api
    assert _get(gateway.url, "/api/usage", gateway.token)[0] == 401


def test_a_stopped_gateway_is_the_one_line_hint(tmp_path: Path) -> None:
    config = tmp_path / "cfg" / "config.yaml"
    config.parent.mkdir()
    port = _free_port()  # nothing listens there
    state = {"url": f"http://127.0.0.1:{port}", "token": "t", "ledger": None, "pid": 1, "started_at": 0}
    (config.parent / "statusline.json").write_bytes(orjson.dumps(state))
    done = cli(_env(config), "logs")
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert message.startswith(f"error: no log file at {config.parent / 'ccrouter.log'}")
    assert "no running `ccrouter serve` of this config answers" in message
    assert "Traceback" not in done.stderr
