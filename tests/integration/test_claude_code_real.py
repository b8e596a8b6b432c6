"""The real Claude Code CLI through the gateway, with its tool search, to OpenAI-format and Gemini fakes.

The fake is scripted to call ToolSearch (``select:Glob,NotebookEdit``), then Glob, then to answer.
Claude Code runs both tools in a temporary project with known files; the fake must then have got the
references as text, the deferred tool it loaded as an ordinary tool (never the placeholder, never
``defer_loading``), and Glob's result with the file names.

Claude Code 2.1.332 sends Glob and Grep only when ``--allowedTools`` (or ``--tools``) names one of them
(otherwise it points the model at ``find`` through Bash); NotebookEdit stays deferred, so one run shows
both a referenced loaded tool and a referenced deferred one (``tests/fixtures/claude_code_tool_search.json``).

The CLI is found from ``$CCROUTER_TEST_CLAUDE``, ``./node_modules/.bin/claude`` or
``.cache/claude-code/node_modules/.bin/claude`` (``scripts/check-test-prereqs.py`` installs it there);
without it the test fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from claude_cli_support import FILES, claude_cli, make_project, run_claude
from gateway_support import GatewayFactory, settings_for

from ccrouter.testing import FakeUpstream
from ccrouter.testing.script import RecordedRequest, Reply, ToolCall


@pytest.fixture
def cli() -> Path:
    return claude_cli()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def generations(fake: FakeUpstream, wire: str) -> list[RecordedRequest]:
    marker = "chat/completions" if wire == "openai" else "GenerateContent"
    return [request for request in fake.requests if marker in request.path]


def offered_tools(request: RecordedRequest, wire: str) -> list[str]:
    body = request.body
    if wire == "openai":
        return [tool["function"]["name"] for tool in body.get("tools", [])]
    return [item["name"] for group in body.get("tools", []) for item in group.get("functionDeclarations", [])]


def tool_results(request: RecordedRequest, wire: str) -> list[str]:
    body = request.body
    if wire == "openai":
        return [str(m["content"]) for m in body["messages"] if m["role"] == "tool"]
    results: list[str] = []
    for content in body["contents"]:
        for part in content["parts"]:
            if "functionResponse" in part:
                response: dict[str, Any] = part["functionResponse"]["response"]
                results.append(str(response.get("output", response.get("error"))))
    return results


@pytest.mark.parametrize("wire", ["openai", "gemini"])
async def test_tool_search_then_glob_through_the_gateway(
    wire: str, fake: FakeUpstream, gateway: GatewayFactory, cli: Path, project: Path
) -> None:
    fake.script(
        Reply(tool_calls=[ToolCall("ToolSearch", {"query": "select:Glob,NotebookEdit"}, id="call_search")]),
        Reply(tool_calls=[ToolCall("Glob", {"pattern": "*"}, id="call_glob")]),
        Reply(text="Three files: alpha.txt, beta.py, gamma.md."),
    )
    url = await gateway(settings_for(fake.url, wire))

    status, output = await run_claude(cli, url, project.parent / "home", project)

    assert status == 0, output[-2000:]
    calls = generations(fake, wire)
    assert len(calls) == 3, output[-2000:]
    first, after_search, after_glob = calls
    for call in calls:
        assert "DeferredToolPlaceholder" not in offered_tools(call, wire)
        assert b"defer_loading" not in call.raw
    assert "NotebookEdit" not in offered_tools(first, wire)
    # The deferred tool ToolSearch loaded is offered as an ordinary tool from the next request on.
    assert "NotebookEdit" in offered_tools(after_search, wire)
    assert "Glob" in offered_tools(after_search, wire)
    assert tool_results(after_search, wire) == ["Loaded tools: Glob, NotebookEdit"]
    glob_result = tool_results(after_glob, wire)[-1]
    for name in FILES:
        assert name in glob_result
    final = json.loads(output.strip().splitlines()[-1])
    assert final["type"] == "result"
    assert "gamma.md" in final["result"]
