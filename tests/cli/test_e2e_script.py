"""scripts/claude-code-e2e.sh takes free ports and checks that its own servers started.

A stand-in `claude` (a real request through the gateway, then stream-json lines shaped like the CLI's)
drives the success path; wrapped interpreters make a server die or hang for the failure paths.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ccrouter

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "claude-code-e2e.sh"

FAKE_CLAUDE = """\
#!{python}
# One Messages call through the gateway; prints what the real CLI would for a Bash tool round.
import json, os, sys, urllib.request
request = urllib.request.Request(
    os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
    data=json.dumps({{"model": "claude-sonnet-4-6", "max_tokens": 100,
                      "messages": [{{"role": "user", "content": sys.argv[2]}}],
                      "tools": [{{"name": "Bash", "description": "Run a shell command", "input_schema":
                                 {{"type": "object", "properties": {{"command": {{"type": "string"}}}}}}}}]}}
                    ).encode(),
    headers={{"content-type": "application/json", "x-api-key": os.environ["ANTHROPIC_API_KEY"]}},
)
with urllib.request.urlopen(request, timeout=10) as response:
    reply = json.loads(response.read())
print(json.dumps({{"type": "assistant", "message": reply}}))
command = next(block["input"]["command"] for block in reply["content"] if block["type"] == "tool_use")
print(json.dumps({{"type": "result", "result": command.removeprefix("echo ")}}))
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def run_script(tmp_path: Path, python: Path | str, **env: str) -> subprocess.CompletedProcess[str]:
    claude = executable(tmp_path / "claude", FAKE_CLAUDE.format(python=sys.executable))
    source = str(Path(ccrouter.__file__).parents[1])  # the servers import this very tree
    environ = {
        **os.environ,
        "PYTHON": str(python),
        "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
        **env,
    }
    bash = shutil.which("bash")
    assert bash is not None
    command = [bash, str(SCRIPT), str(claude)]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120, check=False)


def wrapper(tmp_path: Path, when: str, then: str) -> Path:
    """An interpreter that runs ``then`` instead of Python when its arguments contain ``when``."""
    return executable(
        tmp_path / "python-wrapper",
        f'#!/bin/sh\nfor arg; do last=$arg; done\ncase "$*" in *"{when}"*) {then} ;; esac\n'
        f'exec {sys.executable} "$@"\n',
    )


def test_passes_on_free_ports_with_its_own_servers(tmp_path: Path) -> None:
    done = run_script(tmp_path, sys.executable)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: Claude Code asked for Bash" in done.stdout
    ports = re.search(r"fake upstream on port (\d+) \(pid \d+\), gateway on port (\d+)", done.stdout)
    assert ports is not None, done.stdout
    assert {ports.group(1), ports.group(2)}.isdisjoint({"19100", "19101"})  # the old fixed ports


def test_a_server_that_dies_fails_with_its_log(tmp_path: Path) -> None:
    python = wrapper(tmp_path, "fake_upstream", 'echo "boom: no upstream today" >&2; exit 3')
    started = time.monotonic()
    done = run_script(tmp_path, python)
    assert done.returncode == 1
    assert "FAIL: the fake upstream exited during startup; end of its log:" in done.stderr
    assert "boom: no upstream today" in done.stderr
    assert time.monotonic() - started < 60


# $last: the --port the script gives the gateway; http.server there answers GET / with no pid.
NOT_OURS = f'exec {sys.executable} -m http.server --bind 127.0.0.1 "$last"'


@pytest.mark.parametrize("hang", ["sleep 30", NOT_OURS])
def test_a_gateway_that_never_answers_as_itself_fails_in_bounded_time(tmp_path: Path, hang: str) -> None:
    # Hung, or something that is not this gateway: either way no GET / with the started pid.
    python = wrapper(tmp_path, "ccrouter.cli.main serve", hang)
    started = time.monotonic()
    done = run_script(tmp_path, python, E2E_START_TIMEOUT="8")
    assert done.returncode == 1
    failed = r"FAIL: the gateway \(pid \d+\) did not answer http://127\.0\.0\.1:\d+/ within 8 s"
    assert re.search(failed, done.stderr), done.stderr
    assert time.monotonic() - started < 60
