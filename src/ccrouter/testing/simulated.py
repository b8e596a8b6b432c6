"""The simulated provider: a deterministic stand-in model for newcomers without API keys (and for tests).

It can drive one real tool round offline: a last user turn saying ``Run: <command>`` (or
``run `<command>` ``) while a ``Bash`` tool is offered gets a Bash tool call; the tool result that comes
back is echoed. A JSON-output request without tools (Claude Code's session-title request) gets a small
valid JSON object. Anything else gets a plain note that no real model was called.

The turn to answer is everything after the last assistant message, its system messages (and
``<system-reminder>`` notes) left out: Claude Code follows each tool result with a system message,
which ccrouter sends to OpenAI and Gemini as a user note after the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ccrouter.testing.script import RecordedRequest, Reply, ToolCall

__all__ = ["SIMULATED_NOTICE", "simulated_reply"]

SIMULATED_NOTICE = (
    "This answer comes from ccrouter's simulated provider: no real model was called. "
    "To use a real model, add a provider and its API key to ~/.ccrouter/config.yaml, then restart ccrouter."
)
_RESULT_LIMIT = 2000
_ECHO_LIMIT = 200
# Claude Code wraps context it injects into user turns in these tags; they are not what the user typed.
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
_RUN_BACKTICK = re.compile(r"\brun\s+`([^`\n]+)`", re.IGNORECASE)
_RUN_COLON = re.compile(r"^\s*run:[ \t]*(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)
# Roles that give context rather than a turn to answer (OpenAI's ``developer`` is its new ``system``).
_CONTEXT_ROLES = frozenset({"system", "developer"})


@dataclass(slots=True)
class _Turn:
    text: str = ""
    tool_results: list[str] = field(default_factory=list)


def simulated_reply(request: RecordedRequest) -> Reply:
    """The default answer to ``request`` (any of the wire formats)."""
    body = request.body if isinstance(request.body, dict) else {}
    reader = _READERS[request.wire]
    turn = reader.turn(body)
    tools = reader.tools(body)
    schema = reader.json_schema(body)
    if not tools and schema is not None:
        return Reply(text=orjson.dumps(_json_sample(schema)).decode())
    if turn.tool_results:
        return Reply(text="The command finished. Output:\n" + "\n".join(turn.tool_results)[:_RESULT_LIMIT])
    said = _REMINDER.sub("", turn.text).strip()
    command = _command(said)
    if command is not None and "Bash" in tools:
        arguments = {"command": command, "description": "Run the requested command"}
        return Reply(text="I'll run that command.", tool_calls=[ToolCall(name="Bash", arguments=arguments)])
    echo = said[:_ECHO_LIMIT]
    return Reply(text=f"{SIMULATED_NOTICE}\n\nYou said: {echo}" if echo else SIMULATED_NOTICE)


def _command(text: str) -> str | None:
    match = _RUN_BACKTICK.search(text) or _RUN_COLON.search(text)
    return match.group(1).strip() if match else None


def _json_sample(schema: dict[str, Any]) -> dict[str, Any]:
    """A small object that fits a flat object schema; ``{"title": ...}`` when it names no properties."""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        return {"title": "Simulated session"}
    samples = {"string": "Simulated session", "integer": 0, "number": 0, "boolean": False}
    result: dict[str, Any] = {}
    for name, prop in properties.items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        result[name] = [] if kind == "array" else {} if kind == "object" else samples.get(str(kind), "")
    return result


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _content_text(content: Any) -> str:
    """Text of a string content or of a list of ``{"type": "text"}`` blocks (Anthropic and OpenAI)."""
    if isinstance(content, str):
        return content
    return "\n".join(
        str(block.get("text", ""))
        for block in _list(content)
        if isinstance(block, dict) and block.get("type") in ("text", "input_text", "output_text")
    )


def _last_turn(items: Any, key: str, model_role: str) -> list[dict[str, Any]]:
    """The last run of user-side entries (``key`` not ``model_role``), in order: the turn to answer,
    also when a prefilled model message ends the list. System messages in it are context, not the
    turn (Claude Code sends one after each tool result)."""
    entries = [
        item for item in _list(items) if isinstance(item, dict) and item.get(key) not in _CONTEXT_ROLES
    ]
    end = len(entries)
    while end and entries[end - 1].get(key) == model_role:
        end -= 1
    start = end
    while start and entries[start - 1].get(key) != model_role:
        start -= 1
    return entries[start:end]


class _Anthropic:
    @staticmethod
    def turn(body: dict[str, Any]) -> _Turn:
        turn = _Turn()
        texts: list[str] = []
        for message in _last_turn(body.get("messages"), "role", "assistant"):
            content = message.get("content")
            blocks = [block for block in _list(content) if isinstance(block, dict)]
            turn.tool_results += [
                _content_text(b.get("content")) for b in blocks if b.get("type") == "tool_result"
            ]
            texts.append(_content_text(content))
        turn.text = "\n".join(texts)
        return turn

    @staticmethod
    def tools(body: dict[str, Any]) -> list[str]:
        return [str(tool.get("name")) for tool in _list(body.get("tools")) if isinstance(tool, dict)]

    @staticmethod
    def json_schema(body: dict[str, Any]) -> dict[str, Any] | None:
        fmt = _dict(_dict(body.get("output_config")).get("format")) or _dict(body.get("output_format"))
        return _dict(fmt.get("schema")) if fmt.get("type") == "json_schema" else None


class _OpenAI:
    @staticmethod
    def turn(body: dict[str, Any]) -> _Turn:
        turn = _Turn()
        texts: list[str] = []
        for message in _last_turn(body.get("messages"), "role", "assistant"):
            if message.get("role") == "tool":
                turn.tool_results.append(_content_text(message.get("content")))
            else:
                texts.append(_content_text(message.get("content")))
        turn.text = "\n".join(texts)
        return turn

    @staticmethod
    def tools(body: dict[str, Any]) -> list[str]:
        return [
            str(_dict(tool.get("function")).get("name"))
            for tool in _list(body.get("tools"))
            if isinstance(tool, dict)
        ]

    @staticmethod
    def json_schema(body: dict[str, Any]) -> dict[str, Any] | None:
        fmt = _dict(body.get("response_format"))
        if fmt.get("type") == "json_schema":
            return _dict(_dict(fmt.get("json_schema")).get("schema"))
        return {} if fmt.get("type") == "json_object" else None


class _Gemini:
    @staticmethod
    def turn(body: dict[str, Any]) -> _Turn:
        parts = [
            part
            for content in _last_turn(body.get("contents"), "role", "model")
            for part in _list(content.get("parts"))
            if isinstance(part, dict)
        ]
        texts = [
            part["text"] for part in parts if isinstance(part.get("text"), str) and not part.get("thought")
        ]
        results = [_response_text(part["functionResponse"]) for part in parts if "functionResponse" in part]
        return _Turn(text="\n".join(texts), tool_results=results)

    @staticmethod
    def tools(body: dict[str, Any]) -> list[str]:
        names: list[str] = []
        for entry in _list(body.get("tools")):
            tool = _dict(entry)
            declarations = tool.get("functionDeclarations", tool.get("function_declarations"))
            names.extend(str(_dict(declaration).get("name")) for declaration in _list(declarations))
        return names

    @staticmethod
    def json_schema(body: dict[str, Any]) -> dict[str, Any] | None:
        config = _dict(body.get("generationConfig", body.get("generation_config")))
        mime = config.get("responseMimeType", config.get("response_mime_type"))
        if mime != "application/json":
            return None
        for key in ("responseJsonSchema", "responseSchema", "response_json_schema", "response_schema"):
            if isinstance(config.get(key), dict):
                return _dict(config[key])
        return {}


def _response_text(function_response: Any) -> str:
    """The text of a Gemini ``functionResponse``: its output field when it has one, else its JSON."""
    response = _dict(function_response).get("response")
    if isinstance(response, dict):
        for key in ("output", "result", "content"):
            if isinstance(response.get(key), str):
                return str(response[key])
    return orjson.dumps(response).decode()


class _Responses:
    """The OpenAI Responses API: ``input`` items; the model's are assistant messages and function calls."""

    @staticmethod
    def turn(body: dict[str, Any]) -> _Turn:
        items = [
            {**item, "side": "model" if _Responses._by_model(item) else item.get("role", "user")}
            for item in _list(body.get("input"))
            if isinstance(item, dict)
        ]
        turn = _Turn()
        texts: list[str] = []
        for item in _last_turn(items, "side", "model"):
            if item.get("type") == "function_call_output":
                turn.tool_results.append(_content_text(item.get("output")))
            else:
                texts.append(_content_text(item.get("content")))
        turn.text = "\n".join(texts)
        return turn

    @staticmethod
    def _by_model(item: dict[str, Any]) -> bool:
        return item.get("type") in ("function_call", "reasoning") or item.get("role") == "assistant"

    @staticmethod
    def tools(body: dict[str, Any]) -> list[str]:
        return [str(tool.get("name")) for tool in _list(body.get("tools")) if isinstance(tool, dict)]

    @staticmethod
    def json_schema(body: dict[str, Any]) -> dict[str, Any] | None:
        fmt = _dict(_dict(body.get("text")).get("format"))
        if fmt.get("type") == "json_schema":
            return _dict(fmt.get("schema"))
        return {} if fmt.get("type") == "json_object" else None


_READERS: dict[str, type[_Anthropic] | type[_OpenAI] | type[_Gemini] | type[_Responses]] = {
    "anthropic": _Anthropic,
    "openai": _OpenAI,
    "gemini": _Gemini,
    "openai_responses": _Responses,
}
