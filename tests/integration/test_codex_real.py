"""The real Codex CLI (``codex exec``) through the gateway's ``POST /v1/responses`` to an Anthropic-format
fake, pointed there by the same ``-c`` overrides ``ccrouter codex`` passes (``ccrouter.cli.codex_env``):
the fake asks for a shell command, Codex runs it in a project with known files and sends its output
back as a ``function_call_output``, and the fake's answer is what Codex prints."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from claude_cli_support import FILES, codex_cli, make_project
from gateway_support import GatewayFactory, settings_for

from ccrouter.cli.codex_env import KEY_VARIABLE, codex_args
from ccrouter.testing import FakeUpstream, Reply, ToolCall

RUN_TIMEOUT_S = 60
ANSWER = "Three files: alpha.txt, beta.py, gamma.md."


@pytest.fixture
def cli() -> Path:
    return codex_cli()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


async def test_codex_exec_runs_a_shell_command_round_through_the_responses_front(
    fake: FakeUpstream, gateway: GatewayFactory, cli: Path, project: Path
) -> None:
    url = await gateway(settings_for(fake.url, "anthropic"))
    fake.script(
        Reply(tool_calls=[ToolCall("exec_command", {"cmd": "ls"}, id="toolu_ls")]),
        Reply(text=ANSWER),
    )
    home = project.parent / "home"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "CODEX_"))}
    env.update(HOME=str(home), CODEX_HOME=str(home), NO_COLOR="1", **{KEY_VARIABLE: "ccrouter-test"})
    process = await asyncio.create_subprocess_exec(
        # No sandbox: bubblewrap cannot start Codex's sandbox helper in every CI container.
        str(cli), *codex_args(url), "exec", "--skip-git-repo-check", "--sandbox", "danger-full-access",
        "List the files here.",
        cwd=project, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode("utf-8", "replace")

    assert process.returncode == 0, text[-3000:]
    calls = [request for request in fake.requests if request.path == "/v1/messages"]
    assert len(calls) == 2, text[-3000:]
    first, second = calls
    assert "exec_command" in [tool["name"] for tool in first.body["tools"]]
    results = [
        block
        for message in second.body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert [block["tool_use_id"] for block in results] == ["toolu_ls"]
    for name in FILES:
        assert name in str(results[0]["content"])
    assert ANSWER in text
