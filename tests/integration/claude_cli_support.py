"""The real Claude Code CLI (and Codex CLI), found and run against a gateway: shared by the tests that
drive them.

The CLI is found from ``$CCROUTER_TEST_CLAUDE``, ``./node_modules/.bin/claude`` or
``.cache/claude-code/node_modules/.bin/claude`` (``scripts/check-test-prereqs.py`` installs it there);
without it the test fails.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI_PLACES = ("node_modules/.bin/claude", ".cache/claude-code/node_modules/.bin/claude")
CODEX_PLACES = ("node_modules/.bin/codex", ".cache/codex/node_modules/.bin/codex")
RUN_TIMEOUT_S = 45
FILES = ("alpha.txt", "beta.py", "gamma.md")


def make_project(tmp_path: Path) -> Path:
    """A fresh HOME (``tmp_path/home``) and a project with known files; call it before the loop runs
    (no blocking I/O on the loop)."""
    (tmp_path / "home").mkdir()
    folder = tmp_path / "project"
    folder.mkdir()
    for name in FILES:
        (folder / name).write_text("x\n")
    return folder


def claude_cli() -> Path:
    given = os.environ.get("CCROUTER_TEST_CLAUDE")
    candidates = [Path(given)] if given else [ROOT / place for place in CLI_PLACES]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "the Claude Code CLI is needed: set CCROUTER_TEST_CLAUDE, or run scripts/check-test-prereqs.py "
        "(it installs @anthropic-ai/claude-code into .cache/claude-code); looked in "
        + ", ".join(str(c) for c in candidates)
    )


async def run_claude(
    cli: Path,
    url: str,
    home: Path,
    project: Path,
    prompt: str = "List the files here.",
    allowed_tools: str = "Glob",
) -> tuple[int, str]:
    """Run ``claude -p prompt`` in ``project`` with a fresh ``home`` against the gateway at ``url``;
    its exit status and its whole output (stream-json lines)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=url,
        ANTHROPIC_AUTH_TOKEN="ccrouter-test",
        ANTHROPIC_API_KEY="",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK="1",
    )
    process = await asyncio.create_subprocess_exec(
        str(cli),
        "-p",
        prompt,
        "--allowedTools",
        allowed_tools,
        "--max-turns",
        "6",
        "--output-format",
        "stream-json",
        "--verbose",
        cwd=project,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, output.decode("utf-8", "replace")


def codex_cli() -> Path:
    """``$CCROUTER_TEST_CODEX``, else where ``scripts/check-test-prereqs.py`` installs Codex CLI."""
    given = os.environ.get("CCROUTER_TEST_CODEX")
    candidates = [Path(given)] if given else [ROOT / place for place in CODEX_PLACES]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "the Codex CLI is needed: set CCROUTER_TEST_CODEX, or run scripts/check-test-prereqs.py "
        "(it installs @openai/codex into .cache/codex); looked in " + ", ".join(str(c) for c in candidates)
    )
