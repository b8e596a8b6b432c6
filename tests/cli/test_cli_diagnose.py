"""`ccrouter diagnose` as a real process: a config full of secrets (provider keys, an AWS secret key
and session token, the admin token, client keys, a webhook URL, Redis and PostgreSQL URLs with
passwords), with and without a running gateway; the bundle holds every part and none of the secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

import ccrouter
from ccrouter.testing import FakeUpstream, Fault
from ccrouter.testing.threaded import running

SOURCE = str(Path(ccrouter.__file__).parents[1])
PROVIDER_KEY = "sk-ant-diagnose-provider-key-0123456789abcdef"
SECOND_KEY = "sk-diagnose-second-key-9876543210fedcba"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYdiagnoseEXAMPLEKEY"
AWS_SESSION = "FwoGZXIvYXdzEdiagnoseSessionToken0123456789abcdefXYZ"
ADMIN_TOKEN = "admin-diagnose-token-0123456789abcdef"
CLIENT_KEY = "ccr-client-diagnose-key-0123456789abcdef"
WEBHOOK = "https://hooks.example.invalid/services/T000/B000/diagnoseWebhookSecret42"
REDIS_PASSWORD = "redisDiagnosePassw0rd"
PG_PASSWORD = "pgDiagnosePassw0rd"
SECRETS = (
    PROVIDER_KEY,
    SECOND_KEY,
    AWS_SECRET,
    AWS_SESSION,
    ADMIN_TOKEN,
    CLIENT_KEY,
    WEBHOOK,
    "diagnoseWebhookSecret42",
    REDIS_PASSWORD,
    PG_PASSWORD,
)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Home:
    """A temporary HOME with a config at ``.ccrouter/config.yaml``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / ".ccrouter" / "config.yaml"
        self.config.parent.mkdir(parents=True)
        self.port = _free_port()
        self.env = {
            "PATH": f"/usr/bin{os.pathsep}/bin",
            "HOME": str(root),
            "PYTHONPATH": SOURCE,
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }

    def write(self, document: dict[str, Any]) -> None:
        self.config.write_text(yaml.safe_dump(document))

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ccrouter.cli.main", *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _document(home: Home, upstream: str, **extra: Any) -> dict[str, Any]:
    return {
        "server": {"port": home.port, "admin_token": ADMIN_TOKEN, "api_keys": [CLIENT_KEY]},
        "providers": [
            {
                "name": "up",
                "type": "anthropic",
                "base_url": upstream,
                "api_key": PROVIDER_KEY,
                "api_keys": [SECOND_KEY],
                "models": ["claude-sonnet-4-6"],
            },
            {
                "name": "bedrock",
                "type": "bedrock",
                "region": "us-east-1",
                "base_url": upstream,
                "aws_access_key_id": "AKIADIAGNOSEEXAMPLE",
                "aws_secret_access_key": AWS_SECRET,
                "aws_session_token": AWS_SESSION,
                "models": ["anthropic.claude-sonnet-4-6"],
            },
        ],
        "router": {"default": "up,claude-sonnet-4-6"},
        "alerts": {"webhook_url": WEBHOOK},
        "routing": {"auto_fallback": "off"},
        **extra,
    }


def _bundle(path: Path) -> dict[str, str]:
    with tarfile.open(path, "r:gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile()]
        assert all(m.mode == 0o600 for m in members)
        out = {}
        for member in members:
            extracted = archive.extractfile(member)
            assert extracted is not None
            out[member.name.split("/", 1)[1]] = extracted.read().decode()
    return out


def _assert_no_secret(files: dict[str, str], raw: bytes) -> None:
    for secret in SECRETS:
        assert secret.encode() not in raw, f"{secret!r} in the archive bytes"
        for name, text in files.items():
            assert secret not in text, f"{secret!r} in {name}"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with running(FakeUpstream()) as started:
        yield started


def test_without_a_gateway_the_bundle_has_config_status_doctor_versions_and_the_log(
    home: Home, fake: FakeUpstream
) -> None:
    home.write(
        _document(
            home,
            fake.url,
            state={"redis_url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"},
            store={"url": f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:5432/test"},
        )
    )
    # A log that quotes secrets (as a careless plugin might): the tail is scrubbed all the same.
    (home.config.parent / "ccrouter.log").write_text(
        "".join(f"line {i}\n" for i in range(600)) + f"ERROR upstream refused key {PROVIDER_KEY}\n"
        f"ERROR redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0 unreachable\n"
    )
    target = home.root / "out" / "bundle.tar.gz"
    target.parent.mkdir()
    done = home.run("diagnose", "--config", str(home.config), "--output", str(target), "--timeout", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "support bundle" in done.stdout
    files = _bundle(target)
    assert set(files) >= {
        "config.yaml",
        "status.txt",
        "doctor.txt",
        "versions.json",
        "log-tail.txt",
        "manifest.json",
    }
    _assert_no_secret(files, target.read_bytes())
    config = yaml.safe_load(files["config.yaml"])
    assert config["providers"][0]["api_key"] == "********"
    assert config["state"]["redis_url"] == "redis://:********@127.0.0.1:6379/0"
    assert "not running" in files["status.txt"]
    assert "config" in files["doctor.txt"]
    assert "[redacted]" in files["log-tail.txt"]
    assert files["log-tail.txt"].count("\n") == 500  # the end of the log only
    versions = orjson.loads(files["versions.json"])
    assert versions["ccrouter"] == ccrouter.__version__
    assert versions["packages"]["aiohttp"]
    manifest = orjson.loads(files["manifest.json"])
    assert "health.json" in manifest["missing"]


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    pytest.fail("the gateway did not start")


def test_with_a_running_gateway_the_bundle_has_its_health_metrics_and_errors(
    home: Home, fake: FakeUpstream
) -> None:
    home.write(_document(home, fake.url))
    log = (home.root / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(home.config)],
        env=home.env,
        cwd=home.root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{home.port}"
        _wait_for(f"{base}/health", serve)
        # The provider fails: a warning in the gateway's log ring.
        fake.script(*[Fault("status", status=500) for _ in range(5)])
        request = urllib.request.Request(
            f"{base}/v1/messages",
            data=b'{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":"x"}]}',
            headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
        target = home.root / "bundle.tar.gz"
        done = home.run("diagnose", "--config", str(home.config), "-o", str(target), "--timeout", "5")
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        log.close()
    files = _bundle(target)
    assert set(files) >= {
        "config.yaml",
        "status.txt",
        "doctor.txt",
        "versions.json",
        "health.json",
        "health-ready.json",
        "health-providers.json",
        "metrics.txt",
        "errors.json",
        "manifest.json",
    }, orjson.loads(files["manifest.json"])["missing"]
    _assert_no_secret(files, target.read_bytes())
    assert orjson.loads(files["health-ready.json"])
    assert "ccr_" in files["metrics.txt"]
    providers = orjson.loads(files["health-providers.json"])
    assert providers
    assert "running" in files["status.txt"]
    errors = orjson.loads(files["errors.json"])
    assert errors["records"]
    assert orjson.loads(files["manifest.json"])["gateway"] == f"http://127.0.0.1:{home.port}"
