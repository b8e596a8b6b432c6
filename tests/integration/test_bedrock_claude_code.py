"""The real Claude Code CLI through the gateway to the shipped fake Bedrock: Claude through
``InvokeModelWithResponseStream`` (the binary event stream, its CRCs checked) and a non-Claude model
through ``ConverseStream``, each a Glob round with SigV4-signed calls (the fake verifies the
signatures with the configured secret)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from claude_cli_support import FILES, claude_cli, make_project, run_claude
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeBedrock, Reply, ToolCall

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
KEY, SECRET = "AKIDCLAUDECODETEST01", "claude-code-secret-key-for-tests-0123456"


@pytest.fixture
def cli() -> Path:
    return claude_cli()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


@pytest.fixture
async def bedrock() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock(region="us-east-1", keys={KEY: SECRET}, rate_limit_headers=False) as server:
        yield server


def _settings(bedrock: FakeBedrock, model: str) -> Settings:
    provider = {
        "name": "br",
        "type": "bedrock",
        "region": "us-east-1",
        "base_url": bedrock.url,
        "models": [CLAUDE, NOVA],
        "aws_access_key_id": KEY,
        "aws_secret_access_key": SECRET,
    }
    # Every scenario to the one model: Claude Code's side requests land there too.
    route = f"br,{model}"
    return Settings.model_validate(
        {"providers": [provider], "router": {"default": route, "background": route}}
    )


def _tool_results(body: dict[str, Any], converse: bool) -> list[str]:
    if converse:
        return [
            json.dumps(block["toolResult"]["content"])
            for message in body["messages"]
            for block in message["content"]
            if "toolResult" in block
        ]
    return [
        json.dumps(block["content"])
        for message in body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


@pytest.mark.parametrize(
    ("model", "action"), [(CLAUDE, "invoke-with-response-stream"), (NOVA, "converse-stream")]
)
async def test_claude_code_runs_a_tool_round_on_bedrock(
    model: str, action: str, bedrock: FakeBedrock, gateway: GatewayFactory, cli: Path, project: Path
) -> None:
    url = await gateway(_settings(bedrock, model))
    bedrock.script(
        Reply(tool_calls=[ToolCall("Glob", {"pattern": "*"}, id="toolu_glob")]),
        Reply(text="Three files: alpha.txt, beta.py, gamma.md."),
    )

    status, output = await run_claude(cli, url, project.parent / "home", project)

    assert status == 0, output[-2000:]
    calls = [request for request in bedrock.requests if request.path.endswith("/" + action)]
    assert len(calls) == 2, [request.path for request in bedrock.requests]
    results = _tool_results(calls[1].body, converse=action == "converse-stream")
    assert results
    for name in FILES:
        assert name in results[-1]
    for call in calls:
        assert call.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")
    final = json.loads(output.strip().splitlines()[-1])
    assert final["type"] == "result"
    assert "gamma.md" in final["result"]
