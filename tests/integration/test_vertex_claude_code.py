"""The real Claude Code CLI through the gateway to the shipped fake Vertex AI (Claude by
``streamRawPredict``), its Google tokens short-lived so one is refreshed during the run.

The fake is scripted to call Glob, then to answer; Claude Code runs Glob in a project with known files,
and the second call to Vertex must carry Glob's result and a newer access token than the first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from claude_cli_support import FILES, claude_cli, make_project, run_claude
from gateway_support import GatewayFactory

from ccrouter.config import Settings
from ccrouter.testing import FakeGoogleAuth, FakeVertex, Reply, ToolCall

CLAUDE = "claude-sonnet-4-5@20250929"
TOKEN_LIFETIME_S = 2.0  # fresh for one second: the first answer takes longer, so the second call refreshes


@pytest.fixture
def cli() -> Path:
    return claude_cli()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


@pytest.fixture
async def auth() -> AsyncIterator[FakeGoogleAuth]:
    async with FakeGoogleAuth(expires_in=TOKEN_LIFETIME_S) as server:
        yield server


@pytest.fixture
async def vertex(auth: FakeGoogleAuth) -> AsyncIterator[FakeVertex]:
    async with FakeVertex(auth, rate_limit_headers=False) as server:
        yield server


def _bearer(headers: dict[str, str]) -> str:
    return headers["authorization"].removeprefix("Bearer ")


async def test_claude_code_runs_a_tool_round_on_vertex_across_a_token_refresh(
    auth: FakeGoogleAuth, vertex: FakeVertex, gateway: GatewayFactory, cli: Path, project: Path
) -> None:
    key_file = project.parent / "service-account.json"
    await asyncio.to_thread(key_file.write_bytes, orjson.dumps(auth.service_account()))
    settings = Settings.model_validate(
        {
            "providers": [
                {
                    "name": "vx",
                    "type": "vertex",
                    "project": "fake-project",
                    "region": "us-east5",
                    "base_url": vertex.url,
                    "credentials_file": str(key_file),
                    "models": [CLAUDE],
                }
            ],
            # Every scenario to Vertex: Claude Code's side requests (titles, quotas) land there too.
            "router": {"default": f"vx,{CLAUDE}", "background": f"vx,{CLAUDE}"},
        }
    )
    url = await gateway(settings)
    vertex.script(
        # 20 frames 80 ms apart: the first answer outlives the first token's fresh second.
        Reply(
            tool_calls=[ToolCall("Glob", {"pattern": "*"}, id="toolu_glob")], chunk_size=1, chunk_delay=0.08
        ),
        Reply(text="Three files: alpha.txt, beta.py, gamma.md."),
    )

    status, output = await run_claude(cli, url, project.parent / "home", project)

    assert status == 0, output[-2000:]
    calls = [request for request in vertex.requests if request.path.endswith(":streamRawPredict")]
    assert len(calls) == 2, [request.path for request in vertex.requests]
    prefix = "/v1/projects/fake-project/locations/us-east5/publishers/anthropic/models/"
    assert {request.path for request in calls} == {prefix + CLAUDE + ":streamRawPredict"}
    first, second = calls
    for call in calls:
        assert call.body["anthropic_version"] == "vertex-2023-10-16"
        assert "model" not in call.body
    results = [
        block
        for message in second.body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert results
    assert results[-1]["tool_use_id"] == "toolu_glob"
    for name in FILES:
        assert name in json.dumps(results[-1]["content"])
    # A token was refreshed during the run, and each call carried one the endpoint had issued.
    assert len(auth.issued) >= 2
    assert _bearer(first.headers) != _bearer(second.headers)
    issued = {token.value for token in auth.issued}
    assert {_bearer(call.headers) for call in calls} <= issued
    final = json.loads(output.strip().splitlines()[-1])
    assert final["type"] == "result"
    assert "gamma.md" in final["result"]
