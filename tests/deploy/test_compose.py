"""deploy/compose.yaml: its services, healthchecks and mounted files; the gateways' configuration
through the real loader; nginx's configuration checked by Debian's nginx (``nginx -t``) and then run
for real, as the stack runs it: two ``ccrouter serve`` processes on compose/ccrouter.yaml sharing the
suite's Redis and PostgreSQL, behind nginx on compose/nginx.conf (only addresses changed).

``docker compose config`` is not run: this machine has the Docker client but no compose plugin and no
daemon, so the suite does not depend on Docker."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
import yaml
from deploy_support import DEPLOY, dummy_environ, free_port, load_config, serving, variables, wait_for

COMPOSE = DEPLOY / "compose.yaml"
GATEWAY_CONFIG = DEPLOY / "compose" / "ccrouter.yaml"
NGINX_CONF = DEPLOY / "compose" / "nginx.conf"
GATEWAYS = ("gateway-1", "gateway-2")
# The suite's services (scripts/check-test-prereqs.py).
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", text)
    assert match is not None, text
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_the_stack_has_its_services_each_with_a_healthcheck() -> None:
    services = compose()["services"]
    assert set(services) == {*GATEWAYS, "nginx", "redis", "postgres", "prometheus", "grafana"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            assert condition == {"condition": "service_healthy"}
    assert services["nginx"]["depends_on"].keys() == set(GATEWAYS)
    # Only nginx, Prometheus and Grafana are published, on loopback.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert {name for name, s in services.items() if s.get("ports")} == {"nginx", "prometheus", "grafana"}


def test_every_mounted_file_and_the_build_exist() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    for name in GATEWAYS:
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    mounts = " ".join(v for s in services.values() for v in s.get("volumes", []))
    assert "./prometheus/ccrouter-rules.yml:/etc/prometheus/ccrouter-rules.yml" in mounts
    assert "./grafana/ccrouter-dashboard.json:/var/lib/grafana/dashboards/" in mounts


def test_the_gateways_share_redis_and_postgres_and_outwait_their_drain() -> None:
    services = compose()["services"]
    gateway = services["gateway-1"]
    assert gateway == services["gateway-2"]
    environment = gateway["environment"]
    text = GATEWAY_CONFIG.read_text()
    assert variables(text) <= set(environment), "compose/ccrouter.yaml reads variables compose never sets"
    assert environment["CCROUTER_REDIS_URL"].startswith("redis://redis:6379")
    assert environment["CCROUTER_STORE_URL"].startswith("postgresql://ccrouter:")
    assert environment["CCROUTER_STORE_URL"].endswith("@postgres:5432/ccrouter")
    settings = load_config(text, dummy_environ(variables(text)))
    assert settings.state.redis_url is not None
    assert settings.store.url is not None
    assert settings.server.host == "0.0.0.0"
    assert settings.server.auth_required
    assert gateway["stop_signal"] == "SIGTERM"
    drain = settings.server.drain_grace_s + settings.server.drain_s
    assert _seconds(gateway["stop_grace_period"]) > drain
    # The secrets compose passes on must be exported: `${VAR:?message}` stops `up` when one is not.
    required = {m.group(1) for m in _COMPOSE_VAR.finditer(COMPOSE.read_text()) if ":?" in m.group(0)}
    assert {"CCROUTER_CLIENT_KEY", "CCROUTER_ADMIN_TOKEN", "POSTGRES_PASSWORD"} <= required


def test_prometheus_scrapes_both_gateways_as_the_rules_job() -> None:
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "ccrouter"
    assert 'job="ccrouter"' in (DEPLOY / "prometheus" / "ccrouter-rules.yml").read_text()
    assert job["static_configs"][0]["targets"] == [f"{name}:3456" for name in GATEWAYS]
    assert config["rule_files"] == ["ccrouter-rules.yml"]


def test_promtool_checks_the_compose_prometheus_config(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: apt-get install -y --no-install-recommends prometheus"
    # Laid out as the container mounts them: the config beside the rules.
    shutil.copy(DEPLOY / "compose" / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(DEPLOY / "prometheus" / "ccrouter-rules.yml", tmp_path / "ccrouter-rules.yml")
    done = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_is_provisioned_with_the_shipped_dashboard() -> None:
    provisioning = DEPLOY / "compose" / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "ccrouter.yml").read_text())["providers"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert any(v.split(":")[1].startswith(provider["options"]["path"] + "/") for v in mounts)


def _nginx() -> str:
    # Where scripts/check-test-prereqs.py looks (Debian's nginx package).
    path = os.environ.get("CCROUTER_TEST_NGINX", "/usr/sbin/nginx")
    assert os.access(path, os.X_OK), (
        f"nginx is missing at {path}: apt-get install -y --no-install-recommends nginx"
    )
    return path


def nginx_conf(listen: int, upstreams: dict[str, int]) -> str:
    """compose/nginx.conf with loopback addresses for the compose names, and nothing else changed."""
    text = NGINX_CONF.read_text()
    text, listens = re.subn(r"listen 8080;", f"listen 127.0.0.1:{listen};", text)
    assert listens == 1
    for name, port in upstreams.items():
        text, found = re.subn(rf"server {name}:3456\b", f"server 127.0.0.1:{port}", text)
        assert found == 1, f"nginx.conf has no upstream {name}:3456"
    assert "server gateway" not in text, "an upstream that compose does not define"
    return text


def _nginx_args(prefix: Path) -> list[str]:
    # The pid file in the prefix; as root, workers stay root (the prefix is the test's private folder).
    return [_nginx(), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "pid nginx.pid; user root;"]


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(nginx_conf(free_port(), {name: free_port() for name in GATEWAYS}))
    done = subprocess.run(
        [*_nginx_args(tmp_path), "-t"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


@contextmanager
def nginx(prefix: Path, listen: int, upstreams: dict[str, int]) -> Iterator[str]:
    (prefix / "nginx.conf").write_text(nginx_conf(listen, upstreams))
    with (prefix / "nginx.log").open("wb") as log:
        process = subprocess.Popen([*_nginx_args(prefix), "-g", "daemon off;"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{listen}"
    try:
        wait_for(url + "/health/live", process)
        yield url
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _request(url: str, path: str, key: str | None = None, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"content-type": "application/json", **({"x-api-key": key} if key else {})}
    request = urllib.request.Request(url + path, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


_MESSAGE = (
    b'{"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": true,'
    b' "messages": [{"role": "user", "content": "hello"}]}'
)


def _served(url: str) -> float:
    """The gateway's finished API requests (its own /metrics, open inside the compose network)."""
    status, body = _request(url, "/metrics")
    assert status == 200
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith("ccr_requests_total{") and 'route="messages"' in line
    )


def _drop_schema(schema: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def _drop_keys(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
    finally:
        client.close()


@pytest.mark.timeout(120)
def test_two_gateways_behind_nginx_share_the_load_and_survive_one_killed(tmp_path: Path) -> None:
    data = yaml.safe_load(GATEWAY_CONFIG.read_text())
    # The compose file's configuration, on this test's own Redis keys and PostgreSQL schema.
    tag = uuid.uuid4().hex[:12]
    data["state"]["key_prefix"] = f"deploy-{tag}"
    data["store"]["schema_name"] = schema = f"deploy_{tag}"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    environ = {
        **dummy_environ(variables(GATEWAY_CONFIG.read_text())),
        "CCROUTER_REDIS_URL": REDIS_URL,
        "CCROUTER_STORE_URL": PG_URL,
    }
    key = environ["CCROUTER_CLIENT_KEY"]
    ports = {name: free_port() for name in GATEWAYS}
    try:
        with ExitStack() as stack:
            gateways = {
                name: stack.enter_context(serving(config, environ, port)) for name, port in ports.items()
            }
            url = stack.enter_context(nginx(tmp_path, free_port(), ports))
            direct = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

            assert _request(url, "/health/ready")[0] == 200
            assert _request(url, "/v1/messages", body=_MESSAGE)[0] == 401
            for _ in range(6):
                status, body = _request(url, "/v1/messages", key, _MESSAGE)
                assert status == 200, body[:300]
                assert b"event: message_stop" in body
            assert all(_served(u) >= 2 for u in direct.values()), "round-robin reaches both gateways"
            # The per-client views stay inside the network.
            assert _request(url, "/metrics")[0] == 404
            assert _request(url, "/health/providers")[0] == 404

            gateways["gateway-2"].send_signal(signal.SIGKILL)
            gateways["gateway-2"].wait(timeout=10)
            for _ in range(4):
                status, body = _request(url, "/v1/messages", key, _MESSAGE)
                assert status == 200, body[:300]
            assert _served(direct["gateway-1"]) >= 7
    finally:
        _drop_schema(schema)
        _drop_keys(data["state"]["key_prefix"])
    for name, port in ports.items():
        assert "dummy-" not in (tmp_path / f"gateway-{port}.log").read_text(), f"{name} logged a secret"


@contextmanager
def paced_upstream(prefix: Path) -> Iterator[str]:
    """The shipped fake upstream (``python -m ccrouter.testing.fake_upstream``) in its own process."""
    port = free_port()
    argv = [sys.executable, "-m", "ccrouter.testing.fake_upstream", "--port", str(port)]
    with (prefix / "fake.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/_fake/requests", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.timeout(60)
def test_nginx_passes_a_stream_on_as_it_comes(tmp_path: Path) -> None:
    # compose/ccrouter.yaml with one provider more: the fake, answering 12 frames 0.25 s apart.
    data = yaml.safe_load(GATEWAY_CONFIG.read_text())
    for section in ("state", "store"):
        data.pop(section)
    with ExitStack() as stack:
        fake = stack.enter_context(paced_upstream(tmp_path))
        data["providers"].append(
            {"name": "paced", "type": "anthropic", "base_url": fake, "api_key": "sk-fake-upstream-key"}
        )
        data["router"]["default"] = "paced,claude-sonnet-4-6"
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        script = b'[{"text": "' + b"x" * 48 + b'", "chunk_size": 4, "chunk_delay": 0.25}]'
        urllib.request.urlopen(urllib.request.Request(fake + "/_fake/script", data=script), timeout=5).close()
        environ = dummy_environ(variables(GATEWAY_CONFIG.read_text()))
        port = free_port()
        stack.enter_context(serving(config, environ, port))
        url = stack.enter_context(nginx(tmp_path, free_port(), dict.fromkeys(GATEWAYS, port)))

        headers = {"content-type": "application/json", "x-api-key": environ["CCROUTER_CLIENT_KEY"]}
        request = urllib.request.Request(url + "/v1/messages", data=_MESSAGE, headers=headers)
        started = time.monotonic()
        deltas: list[float] = []
        with urllib.request.urlopen(request, timeout=20) as response:
            assert response.status == 200
            for line in response:
                if line.startswith(b"event: content_block_delta"):
                    deltas.append(time.monotonic() - started)
        total = time.monotonic() - started
    assert len(deltas) == 12
    assert total >= 2.5, "the fake paces its frames"
    # Held anywhere on the way (nginx's buffers or a compression filter, the gateway), the frames
    # would arrive together at the end; passed on as they come, one by one.
    assert deltas[0] < 1.0, f"first frame after {deltas[0]:.2f}s of {total:.2f}s"
    assert deltas[-1] - deltas[0] >= 2.0
