"""A realistic, self-written Claude-Code-sized request body (about 100 KB), for tests and benchmarks.

Shaped like what Claude Code 2.x sends (see shared notes): three system blocks (the per-request
billing-header line, then two blocks with ``cache_control``), ~24 tools with JSON Schema 2020-12
(``$schema``, ``anyOf``, ``const``, ``additionalProperties: false``), a ``role: "system"`` message
inside ``messages``, adaptive thinking with signed thinking blocks in the history, tool calls and
results, ``metadata.user_id`` as a JSON string, ``context_management`` and ``output_config``.
The text is generated, not copied from Claude Code.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["TOOL_NAMES", "claude_code_request"]

TOOL_NAMES = [
    "Bash",
    "Read",
    "Write",
    "Edit",
    "MultiEdit",
    "Glob",
    "Grep",
    "LS",
    "NotebookRead",
    "NotebookEdit",
    "WebFetch",
    "WebSearch",
    "TodoWrite",
    "Task",
    "ExitPlanMode",
    "BashOutput",
    "KillShell",
    "SlashCommand",
    "AskUserQuestion",
    "Skill",
    "ListMcpResources",
    "ReadMcpResource",
    "mcp__ide__getDiagnostics",
    "mcp__ide__executeCode",
]

_SENTENCES = [
    "You are an interactive command line tool that helps users with software engineering tasks.",
    "Use the instructions below and the tools available to you to assist the user.",
    "Prefer editing existing files to creating new ones, and keep changes minimal and focused.",
    "When you run a non-trivial command, explain what it does and why you are running it.",
    "Never introduce code that exposes or logs secrets and keys; never commit secrets to the repository.",
    "Use the task list tool to plan multi-step work and mark each task done as soon as it is finished.",
    "Answer concisely: fewer than four lines unless the user asks for detail; no preamble or postamble.",
    "Before editing a file, read it; match its existing style, naming, imports and framework choices.",
]


def _prose(words: int, seed: int) -> str:
    parts: list[str] = []
    count = 0
    index = seed
    while count < words:
        sentence = _SENTENCES[index % len(_SENTENCES)]
        parts.append(f"{sentence} (section {index})")
        count += len(sentence.split()) + 2
        index += 3
    return " ".join(parts)


def _schema(name: str, index: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "description": {"type": "string", "description": f"A short description of what {name} will do."},
        "timeout": {"type": "number", "description": "Optional timeout in milliseconds (max 600000)."},
        "mode": {"anyOf": [{"const": "default"}, {"const": "plan"}, {"const": "accept_edits"}]},
        "paths": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "Absolute paths the tool may touch.",
        },
        "options": {
            "type": "object",
            "properties": {
                "recursive": {"type": "boolean", "default": False},
                "limit": {"type": "integer", "exclusiveMinimum": 0, "maximum": 10_000},
                "pattern": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "additionalProperties": False,
        },
    }
    for extra in range(index % 4):
        properties[f"extra_{extra}"] = {"type": "string", "description": _prose(20, index + extra)}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": ["description"],
        "additionalProperties": False,
    }


def _tools() -> list[dict[str, Any]]:
    return [
        {"name": name, "description": _prose(150 + 10 * (i % 5), i), "input_schema": _schema(name, i)}
        for i, name in enumerate(TOOL_NAMES)
    ]


def _history(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>" + _prose(120, 5) + "</system-reminder>"},
                {"type": "text", "text": "Look at the failing test in tests/test_app.py and fix it."},
            ],
        },
        {
            "role": "system",
            "content": "The user's working directory is /home/dev/project (a git repository).",
        },
    ]
    for turn in range(turns):
        tool_id = f"toolu_01{turn:04d}ABCDEFGHIJKLMNOPQ"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": _prose(40, turn),
                        "signature": f"EqQBCkYIBxgCKkA{turn:06d}sig" * 4,
                    },
                    {"type": "text", "text": f"Let me check step {turn}."},
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": "Bash",
                        "input": {
                            "command": f"pytest -x tests/test_app.py -k case_{turn}",
                            "description": "Run one test",
                        },
                    },
                ],
            }
        )
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": tool_id,
            "content": [{"type": "text", "text": f"===== case_{turn} =====\n" + _prose(90, turn + 1)}],
        }
        if turn == turns - 1:
            result["cache_control"] = {"type": "ephemeral"}
        messages.append({"role": "user", "content": [result]})
    return messages


def claude_code_request(
    *, model: str = "claude-opus-4-1", stream: bool = True, turns: int = 12
) -> dict[str, Any]:
    """A fresh request body (a new dict each call, safe to mutate)."""
    session = {
        "device_id": "4f1c" * 16,
        "account_uuid": "",
        "session_id": "0b7e6a52-3c1d-4c8e-9a55-7d1f2e3a4b5c",
    }
    # In the order Claude Code 2.1.197 writes the fields (captured from the CLI).
    return {
        "model": model,
        "messages": _history(turns),
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=sdk-cli;",
            },
            {
                "type": "text",
                "text": "You are Claude Code, a command line coding assistant.",
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "text", "text": _prose(4200, 1), "cache_control": {"type": "ephemeral"}},
        ],
        "tools": _tools(),
        "metadata": {"user_id": json.dumps(session)},
        "max_tokens": 64000,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "stream": stream,
    }
