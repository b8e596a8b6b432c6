"""fit_request: the request as one target can take it."""

from __future__ import annotations

from ccrouter.catalog import ModelInfo
from ccrouter.codecs.anthropic.codec import decode_request
from ccrouter.config import ProviderConfig
from ccrouter.routing.fit import fit_request

THINKER = ModelInfo(context_window=200_000, max_output_tokens=64_000, tools=True, vision=True, thinking=True)
ANTHROPIC = ProviderConfig(name="an", type="anthropic", api_key="sk-x")
OPENAI = ProviderConfig(name="oa", type="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-x")


def _tool_turn(first_block: dict[str, object] | None) -> dict[str, object]:
    assistant: list[dict[str, object]] = [] if first_block is None else [first_block]
    assistant.append({"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}})
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 8000,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": assistant},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"}]},
        ],
    }


def test_anthropic_keeps_thinking_after_its_own_signed_thinking() -> None:
    body = _tool_turn({"type": "thinking", "thinking": "hmm", "signature": "EqQBsig"})
    fitted = fit_request(decode_request(body), ANTHROPIC, THINKER)
    assert fitted.thinking.type == "enabled"
    assert fitted.raw is not None
    assert fitted.raw["thinking"] == body["thinking"]


def test_anthropic_turns_thinking_off_after_a_foreign_tool_turn() -> None:
    # The turn came from another provider: its thinking (signature ccr:openai) will be dropped, and
    # Anthropic would refuse thinking on a tool turn that does not start with a block it signed.
    for first in ({"type": "thinking", "thinking": "hmm", "signature": "ccr:openai"}, None):
        body = _tool_turn(first)
        fitted = fit_request(decode_request(body), ANTHROPIC, THINKER)
        assert fitted.thinking.type == "disabled"
        assert fitted.raw is not None
        assert fitted.raw["thinking"] == {"type": "disabled"}
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000}  # the client's body untouched


def test_other_wire_formats_keep_thinking_after_a_foreign_tool_turn() -> None:
    body = _tool_turn({"type": "thinking", "thinking": "hmm", "signature": "ccr:openai"})
    fitted = fit_request(decode_request(body), OPENAI, THINKER)
    assert fitted.thinking.type == "enabled"


def test_request_copy_is_a_shallow_copy_of_every_field() -> None:
    # MessagesRequest.copy lists its fields by hand (for speed): a field added later and not listed
    # would be lost in every fitted request. Give every field a distinct value and compare.
    import dataclasses

    from ccrouter.messages import MessagesRequest

    values: dict[str, object] = {f.name: object() for f in dataclasses.fields(MessagesRequest)}
    original = MessagesRequest(**values)  # type: ignore[arg-type]
    copied = original.copy()
    assert copied is not original
    for name, value in values.items():
        assert getattr(copied, name) is value, name
    copied.model = "other"
    assert original.model is values["model"]
