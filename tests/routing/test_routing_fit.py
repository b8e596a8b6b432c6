"""fit_request: the request as one target can take it."""

from __future__ import annotations

import dataclasses

from ccrouter.catalog import ModelInfo
from ccrouter.codecs.anthropic.codec import decode_request
from ccrouter.messages import ThinkingConfig
from ccrouter.routing.fit import fit_request

THINKER = ModelInfo(context_window=200_000, max_output_tokens=64_000, tools=True, vision=True, thinking=True)
PLAIN = ModelInfo(context_window=128_000, max_output_tokens=4_000, tools=True, vision=False, thinking=False)


def _request(**fields: object) -> dict[str, object]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 8000,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [{"role": "user", "content": "hi"}],
        **fields,
    }


def test_a_request_that_fits_is_a_copy_with_every_field_shared() -> None:
    request = decode_request(_request())
    fitted = fit_request(request, THINKER)
    assert fitted is not request
    assert fitted.thinking is request.thinking
    assert fitted.messages is request.messages
    assert fitted.max_tokens == 8000


def test_max_tokens_clamped_and_thinking_fitted_to_the_model() -> None:
    request = decode_request(
        _request(max_tokens=50_000, thinking={"type": "enabled", "budget_tokens": 30_000})
    )
    fitted = fit_request(request, dataclasses.replace(PLAIN, thinking=True))
    assert fitted.max_tokens == 4_000
    assert fitted.thinking == ThinkingConfig(type="enabled", budget_tokens=2_000)
    assert request.max_tokens == 50_000  # the original is not changed
    assert request.thinking == ThinkingConfig(type="enabled", budget_tokens=30_000)


def test_a_model_without_reasoning_gets_no_thinking_and_no_effort() -> None:
    request = decode_request(_request(output_config={"effort": "high"}))
    fitted = fit_request(request, PLAIN)
    assert fitted.thinking == ThinkingConfig(type="disabled")
    assert fitted.effort is None
    assert request.effort == "high"


def test_fitting_ignores_the_provider() -> None:
    # Anthropic's own rule for thinking after a foreign tool turn lives with the Anthropic adapter
    # (tests/providers/test_anthropic_rules.py): fitting is the same whatever the target's wire.
    body = _request(
        messages=[
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "a"}]},
        ]
    )
    assert fit_request(decode_request(body), THINKER).thinking.type == "enabled"


def test_request_copy_is_a_shallow_copy_of_every_field() -> None:
    # MessagesRequest.copy lists its fields by hand (for speed): a field added later and not listed
    # would be lost in every fitted request. Give every field a distinct value and compare.
    from ccrouter.messages import MessagesRequest

    values: dict[str, object] = {f.name: object() for f in dataclasses.fields(MessagesRequest)}
    original = MessagesRequest(**values)  # type: ignore[arg-type]
    copied = original.copy()
    assert copied is not original
    for name, value in values.items():
        assert getattr(copied, name) is value, name
    copied.model = "other"
    assert original.model is values["model"]
