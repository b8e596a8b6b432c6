"""`ccrouter init`: --yes from flags, the wizard through a real terminal (pty), refusing to overwrite.

Real processes: `ccrouter init`, `ccrouter config validate` and `ccrouter serve` run as subprocesses
against the shipped fake upstream (in a thread, on a free port, requiring a key).
"""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

import ccrouter
from ccrouter.testing import FakeUpstream
from ccrouter.testing.threaded import running

KEY = "sk-fake-upstream-key-0123456789"
SOURCE = str(Path(ccrouter.__file__).parents[1])
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")


def environ(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no provider key of the machine leaks in, this tree is imported."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "PYTHONPATH": SOURCE,
        "CCROUTER_CONFIG": str(home / ".ccrouter" / "config.yaml"),
        "COLUMNS": "200",
        **extra,
    }


def ccrouter_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with running(FakeUpstream(api_key=KEY)) as started:
        yield started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def serve_and_ask(env: dict[str, str], config: Path, port: int) -> dict[str, object]:
    """`ccrouter serve` on the written config; one Messages request through it."""
    log = config.with_name("serve.log")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ccrouter.cli.main",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(url + "/health", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.1)
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}],
        }
        request = urllib.request.Request(
            url + "/v1/messages",
            data=orjson.dumps(body),
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            reply: dict[str, object] = orjson.loads(response.read())
        return reply
    finally:
        server.terminate()
        server.wait(10)


def test_yes_writes_a_config_that_validates_and_serves(tmp_path: Path, fake: FakeUpstream) -> None:
    env = environ(tmp_path, FAKE_KEY=KEY)
    config = tmp_path / "cfg" / "config.yaml"
    port = free_port()
    done = ccrouter_cli(
        env, "init", "--yes", "--provider", "deepseek", "--base-url", f"{fake.url}/v1",
        "--api-key-env", "FAKE_KEY", "--default", "deepseek,deepseek-chat", "--port", str(port),
        "--config", str(config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "test deepseek: ok (models list: 3 models)" in done.stdout
    assert f"wrote {config}" in done.stdout
    assert "ccrouter code" in done.stdout
    assert KEY not in done.stdout + done.stderr + config.read_text()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    data = yaml.safe_load(config.read_text())
    assert data["server"]["port"] == port
    (provider,) = data["providers"]
    assert provider["api_key"] == "${FAKE_KEY}"
    assert provider["base_url"] == f"{fake.url}/v1"
    assert data["router"]["default"] == "deepseek,deepseek-chat"
    # The test call was the models list, with the key.
    (listed,) = [r for r in fake.requests if r.path == "/v1/models"]
    assert listed.headers["authorization"] == f"Bearer {KEY}"

    validated = ccrouter_cli(env, "config", "validate", str(config))
    assert validated.returncode == 0, validated.stderr
    assert "OK" in validated.stdout

    fake.reset()
    reply = serve_and_ask(env, config, port)
    assert reply["type"] == "message"
    (upstream,) = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    assert upstream.body is not None
    assert upstream.body["model"] == "deepseek-chat"
    assert upstream.headers["authorization"] == f"Bearer {KEY}"


def test_yes_lists_every_missing_value_at_once(tmp_path: Path) -> None:
    done = ccrouter_cli(environ(tmp_path), "init", "--yes", "--provider", "mine", "--provider", "openai")
    assert done.returncode == 1
    assert "--base-url for provider 'mine'" in done.stderr
    assert "--api-key-env for provider 'openai' (none of OPENAI_API_KEY is set)" in done.stderr
    assert not (tmp_path / ".ccrouter" / "config.yaml").exists()
    nothing = ccrouter_cli(environ(tmp_path), "init", "--yes")
    assert nothing.returncode == 1
    assert "--provider" in nothing.stderr


def test_a_failed_test_call_says_why_without_the_key(tmp_path: Path, fake: FakeUpstream) -> None:
    env = environ(tmp_path, WRONG_KEY="sk-wrong-key-abcdefghijklmnop")
    config = tmp_path / "config.yaml"
    done = ccrouter_cli(
        env, "init", "--yes", "--provider", "local", "--base-url", f"{fake.url}/v1",
        "--api-key-env", "WRONG_KEY", "--default", "local,gpt-4o", "--config", str(config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # written anyway: the key may be fixed later
    assert "test local: failed (key rejected (HTTP 401)" in done.stdout
    assert "sk-wrong-key" not in done.stdout + done.stderr


def test_refuses_to_overwrite_then_force_keeps_a_backup(tmp_path: Path) -> None:
    env = environ(tmp_path, FAKE_KEY=KEY)
    config = tmp_path / "config.yaml"
    config.write_text("# my own configuration\n")
    args = ("init", "--yes", "--no-test", "--provider", "deepseek", "--api-key-env", "FAKE_KEY")
    refused = ccrouter_cli(env, *args, "--config", str(config))
    assert refused.returncode == 1
    assert "exists; pass --force" in refused.stderr
    assert config.read_text() == "# my own configuration\n"

    forced = ccrouter_cli(env, *args, "--config", str(config), "--force")
    assert forced.returncode == 0, forced.stderr
    (backup,) = tmp_path.glob("config.yaml.bak-*")
    assert backup.read_text() == "# my own configuration\n"
    assert "deepseek" in config.read_text()
    assert f"kept the previous configuration as {backup}" in forced.stdout


class Terminal:
    """A subprocess on a pseudo-terminal: wait for a text on its screen, then type."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        main, child = pty.openpty()
        self.process = subprocess.Popen(
            argv, env=env, stdin=child, stdout=child, stderr=child, close_fds=True
        )
        os.close(child)
        self.fd = main
        self.screen = ""
        self.seen = 0

    def expect(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen[self.seen :]:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} never appeared; screen:\n{self.screen[-2000:]}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    assert text in self.screen[self.seen :], f"{text!r} never appeared:\n{self.screen}"
                    break
                self.screen += ANSI.sub("", chunk.decode("utf-8", "replace"))
        self.seen = self.screen.index(text, self.seen) + len(text)

    def type(self, keys: str) -> None:
        time.sleep(0.05)  # let the prompt finish drawing
        os.write(self.fd, keys.encode())

    def finish(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                self.screen += ANSI.sub("", chunk.decode("utf-8", "replace"))
        os.close(self.fd)
        return self.process.wait(5)


def test_the_wizard_in_a_terminal_stores_a_typed_key_privately(tmp_path: Path, fake: FakeUpstream) -> None:
    config = tmp_path / "config.yaml"
    port = free_port()
    env = environ(tmp_path, TERM="xterm")
    term = Terminal([sys.executable, "-m", "ccrouter.cli.main", "init", "--config", str(config)], env)
    try:
        term.expect("Which providers?")
        term.expect("Another OpenAI-compatible server")
        term.type("j" * 8 + " ")  # down past the 8 known providers, select
        term.type("\r")
        term.expect("Name for this openai-compatible provider:")
        term.type("local\r")
        term.expect("Base URL of local")
        term.type(f"{fake.url}/v1\r")
        term.expect("API key for local:")
        term.type("\r")  # the first choice: type it now
        term.expect("Key for local (not shown):")
        term.type(KEY + "\r")
        term.expect("test local: ok (models list: 3 models)")
        term.expect("Default route")
        term.type("\r")  # local,gpt-4o: the first listed model
        for question in ("Background route", "Think route", "Long-context route"):
            term.expect(question)
            term.type("\r")  # (none)
        term.expect("Gateway port:")
        term.type("\x7f" * 4 + f"{port}\r")
        term.expect("wrote")
    finally:
        code = term.finish()
    assert code == 0, term.screen
    assert KEY not in term.screen  # the password prompt echoed nothing
    key_file = tmp_path / ".ccrouter" / "keys" / "local"
    assert key_file.read_text().strip() == KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    text = config.read_text()
    assert KEY not in text
    data = yaml.safe_load(text)
    (provider,) = data["providers"]
    assert provider["api_key"] == "${file:~/.ccrouter/keys/local}"
    assert provider["models"][0] == "gpt-4o"
    assert data["router"] == {"default": "local,gpt-4o"}
    assert data["server"]["port"] == port

    fake.reset()
    reply = serve_and_ask(environ(tmp_path), config, port)
    assert reply["type"] == "message"
    (upstream,) = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    assert upstream.headers["authorization"] == f"Bearer {KEY}"  # read back from the key file


def test_yes_with_several_providers_takes_name_value_flags(tmp_path: Path, fake: FakeUpstream) -> None:
    env = environ(tmp_path, FAKE_KEY=KEY)
    config = tmp_path / "config.yaml"
    done = ccrouter_cli(
        env, "init", "--yes", "--provider", "chat", "--provider", "claude",
        "--type", "claude=anthropic", "--base-url", f"chat={fake.url}/v1", "--base-url", f"claude={fake.url}",
        "--api-key-env", "chat=FAKE_KEY", "--api-key-env", "claude=FAKE_KEY",
        "--default", "chat,gpt-4o", "--background", "claude,claude-haiku-4-5", "--config", str(config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "test chat: ok" in done.stdout
    assert "test claude: ok" in done.stdout
    data = yaml.safe_load(config.read_text())
    assert [(p["name"], p["type"]) for p in data["providers"]] == [
        ("chat", "openai"),
        ("claude", "anthropic"),
    ]
    assert data["router"] == {"default": "chat,gpt-4o", "background": "claude,claude-haiku-4-5"}
    # A bare value is ambiguous with two providers: said, nothing written.
    ambiguous = ccrouter_cli(
        env, "init", "--yes", "--provider", "a", "--provider", "b", "--base-url", "http://x",
        "--config", str(tmp_path / "other.yaml"),
    )  # fmt: skip
    assert ambiguous.returncode == 1
    assert "with several providers, write --base-url NAME=VALUE" in ambiguous.stderr
    assert not (tmp_path / "other.yaml").exists()
