"""`ccrouter doctor` as a real process: the fake upstream (up, down, refusing the key), a stand-in
`claude` on PATH, Claude Code's files in a temporary HOME, and the real Redis and PostgreSQL."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

import ccrouter
from ccrouter.testing import FakeUpstream
from ccrouter.testing.threaded import running

KEY = "sk-doctor-fake-key-0123456789"
SOURCE = str(Path(ccrouter.__file__).parents[1])
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
FAKE_CLAUDE = "#!/bin/sh\necho '2.1.332 (Claude Code)'\n"


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with running(FakeUpstream(api_key=KEY)) as started:
        yield started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def provider(name: str, base_url: str, key: str = "${FAKE_KEY}") -> dict[str, Any]:
    return {"name": name, "type": "openai", "base_url": base_url, "api_key": key, "models": ["gpt-4o"]}


class Home:
    """A temporary HOME: a config, a `claude` on PATH, Claude Code's settings and onboarding flag."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / ".ccrouter" / "config.yaml"
        self.bin = root / "bin"
        self.bin.mkdir()
        self.port = free_port()

    def write_config(self, providers: list[dict[str, Any]], **sections: Any) -> None:
        document = {
            "server": {"port": self.port},
            "providers": providers,
            "router": {"default": f"{providers[0]['name']},gpt-4o"},
            **sections,
        }
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(document))

    def install_claude(self, script: str = FAKE_CLAUDE) -> None:
        claude = self.bin / "claude"
        claude.write_text(script)
        claude.chmod(0o755)

    def claude_code_ready(self) -> None:
        self.install_claude()
        (self.root / ".claude.json").write_text('{"hasCompletedOnboarding": true}')
        (self.root / ".claude").mkdir()
        settings = {"env": {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{self.port}"}}
        (self.root / ".claude" / "settings.json").write_bytes(orjson.dumps(settings))

    def doctor(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": f"{self.bin}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": str(self.root),
            "PYTHONPATH": SOURCE,
            "CCROUTER_CONFIG": str(self.config),
            "COLUMNS": "400",
            "FAKE_KEY": KEY,
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "ccrouter.cli.main", "doctor", *args],
            env=environ,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def rows(output: str) -> dict[str, tuple[str, str]]:
    """check -> (status, rest of the row) from the printed table."""
    found = {}
    for line in output.splitlines():
        for status in ("ok", "warn", "fail", "skip"):
            marker = f"  {status}  "
            if marker in line:
                name, _, rest = line.partition(marker)
                found[name.strip()] = (status, rest.strip())
                break
    return found


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def test_all_well_exits_zero(home: Home, fake: FakeUpstream) -> None:
    home.write_config(
        [provider("fake", f"{fake.url}/v1")],
        state={"redis_url": REDIS_URL},
        store={"url": PG_URL},
    )
    home.claude_code_ready()
    done = home.doctor()
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done.stdout)
    assert table[f"config {home.config}"][0] == "ok"
    assert table["environment variables"][0] == "ok"
    assert table[f"port 127.0.0.1:{home.port}"] == ("ok", "free")
    assert table["provider fake"][0] == "ok"
    assert "models list: 3 models" in table["provider fake"][1]
    assert table["Claude Code"][0] == "ok"
    assert "2.1.332 (Claude Code)" in table["Claude Code"][1]
    assert table["Claude Code settings"][0] == "ok"
    assert table["Claude Code onboarding"][0] == "ok"
    assert table["Redis redis://127.0.0.1:6379/0"] == ("ok", "PING answered")
    assert table["PostgreSQL postgresql://127.0.0.1:5432/test"][0] == "ok"
    assert "warn" not in {status for status, _ in table.values()}
    assert KEY not in done.stdout + done.stderr


def test_a_provider_whose_upstream_is_down_fails_by_name(home: Home, fake: FakeUpstream) -> None:
    closed = free_port()
    home.write_config([provider("fake", f"{fake.url}/v1"), provider("gone", f"http://127.0.0.1:{closed}/v1")])
    home.claude_code_ready()
    done = home.doctor()
    assert done.returncode == 1
    table = rows(done.stdout)
    assert table["provider fake"][0] == "ok"
    status, detail = table["provider gone"]
    assert status == "fail"
    assert "unreachable: Connection refused" in detail
    assert "check base_url" in detail  # the fix hint
    assert "failed: provider gone" in done.stderr


def test_a_rejected_key_fails_without_printing_it(home: Home, fake: FakeUpstream) -> None:
    home.write_config([provider("fake", f"{fake.url}/v1", key="${WRONG}")])
    home.claude_code_ready()
    done = home.doctor(WRONG="sk-wrong-doctor-key-abcdefgh")
    assert done.returncode == 1
    status, detail = rows(done.stdout)["provider fake"]
    assert status == "fail"
    assert "key rejected (HTTP 401)" in detail
    assert "sk-wrong-doctor" not in done.stdout + done.stderr


def test_every_missing_variable_is_listed_at_once(home: Home, fake: FakeUpstream) -> None:
    home.write_config(
        [
            provider("one", f"{fake.url}/v1", key="${FIRST_KEY}"),
            provider("two", f"{fake.url}/v1", key="$SECOND"),
        ]
    )
    home.claude_code_ready()
    done = home.doctor()
    assert done.returncode == 1
    table = rows(done.stdout)
    status, detail = table["environment variables"]
    assert status == "fail"
    assert "FIRST_KEY (providers[0].api_key)" in detail
    assert "SECOND (providers[1].api_key)" in detail
    # The rest of the file is still checked, and the providers are not called without their key.
    assert table[f"config {home.config}"][0] == "ok"
    status, detail = table["provider one"]
    assert status == "fail"
    assert "not tested: its key ${FIRST_KEY} is not set" in detail
    assert not fake.requests


def test_redis_and_postgres_on_closed_ports_fail(home: Home, fake: FakeUpstream) -> None:
    closed = free_port()
    home.write_config(
        [provider("fake", f"{fake.url}/v1")],
        state={"redis_url": f"redis://127.0.0.1:{closed}/0"},
        store={"url": f"postgresql://postgres:pw-secret-1234@127.0.0.1:{closed}/test"},
    )
    home.claude_code_ready()
    done = home.doctor()
    assert done.returncode == 1
    table = rows(done.stdout)
    assert table[f"Redis redis://127.0.0.1:{closed}/0"][0] == "fail"
    assert table[f"PostgreSQL postgresql://127.0.0.1:{closed}/test"][0] == "fail"
    assert "pw-secret" not in done.stdout + done.stderr


def test_claude_code_missing_or_elsewhere_only_warns_and_fix_seeds_onboarding(
    home: Home, fake: FakeUpstream
) -> None:
    home.write_config([provider("fake", f"{fake.url}/v1")])
    (home.root / ".claude.json").write_text('{"numStartups": 3}')
    done = home.doctor(ANTHROPIC_BASE_URL="http://127.0.0.1:1")
    assert done.returncode == 0, done.stdout + done.stderr  # warnings only
    table = rows(done.stdout)
    assert table["Claude Code"][0] == "warn"
    assert "npm install -g @anthropic-ai/claude-code" in table["Claude Code"][1]
    assert table["Claude Code settings"][0] == "warn"
    assert "$ANTHROPIC_BASE_URL = http://127.0.0.1:1, not this gateway" in table["Claude Code settings"][1]
    assert table["Claude Code onboarding"][0] == "warn"
    assert "ccrouter doctor --fix" in table["Claude Code onboarding"][1]

    fixed = home.doctor("--fix")
    assert fixed.returncode == 0
    assert rows(fixed.stdout)["Claude Code onboarding"][0] == "ok"
    seeded = orjson.loads((home.root / ".claude.json").read_bytes())
    assert seeded == {"numStartups": 3, "hasCompletedOnboarding": True}
    assert orjson.loads((home.root / ".claude.json.bak").read_bytes()) == {"numStartups": 3}
    assert stat.S_IMODE((home.root / ".claude.json").stat().st_mode) == 0o600


def test_a_broken_claude_and_a_taken_port_fail(home: Home, fake: FakeUpstream) -> None:
    home.write_config([provider("fake", f"{fake.url}/v1")])
    home.claude_code_ready()
    home.install_claude("#!/bin/sh\necho 'segmentation fault' >&2\nexit 3\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", home.port))
        taken.listen()
        done = home.doctor()
    assert done.returncode == 1
    table = rows(done.stdout)
    assert table["Claude Code"][0] == "fail"
    assert "--version exited 3" in table["Claude Code"][1]
    assert table[f"port 127.0.0.1:{home.port}"][0] == "fail"
    assert "taken by another program" in table[f"port 127.0.0.1:{home.port}"][1]


def test_checks_run_concurrently_within_their_timeout(home: Home, fake: FakeUpstream) -> None:
    # Three providers that accept connections and never answer: each check ends at --timeout, and
    # together they take about one timeout, not three.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        home.write_config([provider(f"slow{i}", url) for i in range(3)])
        home.claude_code_ready()
        started = time.monotonic()
        done = home.doctor("--timeout", "2")
        elapsed = time.monotonic() - started
    assert done.returncode == 1
    table = rows(done.stdout)
    for i in range(3):
        status, detail = table[f"provider slow{i}"]
        assert status == "fail"
        assert "no answer within 2s" in detail
    assert elapsed < 5.5, elapsed


def test_an_unreadable_config_fails_with_a_hint(home: Home) -> None:
    done = home.doctor()
    assert done.returncode == 1
    status, detail = rows(done.stdout)[f"config {home.config}"]
    assert status == "fail"
    assert "no such file" in detail
    assert "ccrouter init" in detail


def test_key_files_readable_by_others_warn_and_missing_ones_fail(home: Home, fake: FakeUpstream) -> None:
    shared = home.root / "shared-key"
    shared.write_text(KEY)
    shared.chmod(0o644)
    home.write_config(
        [
            provider("fake", f"{fake.url}/v1", key=f"${{file:{shared}}}"),
            provider("lost", f"{fake.url}/v1", key="${file:~/.ccrouter/keys/lost}"),
        ]
    )
    home.claude_code_ready()
    done = home.doctor()
    assert done.returncode == 1
    text = done.stdout
    assert f"{shared} is readable by other users (chmod 600 {shared})" in text
    assert f"{home.root}/.ccrouter/keys/lost: No such file or directory" in text
    table = rows(text)
    assert table["provider fake"][0] == "ok"  # the key read from the file was accepted
    status, detail = table["provider lost"]
    assert status == "fail"
    assert "not tested" in detail
    assert KEY not in text
