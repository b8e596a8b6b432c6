from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccrouter.catalog import Catalog
from ccrouter.config import Settings
from ccrouter.errors import ConfigError, RoutingError
from ccrouter.messages import Message, MessagesRequest, TextBlock, Usage
from ccrouter.routing.custom import CustomRouter, load_custom_router
from ccrouter.routing.scenarios import Router
from ccrouter.routing.session import SessionUsage
from ccrouter.tokens import TokenCounter

HOOKS = textwrap.dedent(
    """
    SEEN = []

    async def route(request, context):
        SEEN.append((request.model, request.system[0].text if request.system else None,
                     context.session_id, context.last_input_tokens))
        if request.model == "pick-groq":
            return "groq,llama-3.3-70b-versatile"
        if request.model == "bad-type":
            return 42
        if request.model == "bad-route":
            return "groq,gpt-99"
        return None

    def sync_route(request, context):
        return None

    class Hook:
        async def __call__(self, request, context):
            return "deepseek,deepseek-reasoner"

    class SyncHook:
        def __call__(self, request, context):
            return None

    hook = Hook()
    sync_hook = SyncHook()
    NOT_CALLABLE = 3

    class Nested:
        @staticmethod
        async def route(request, context):
            return None
    """
)
_counter = itertools.count()


@pytest.fixture
def hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh importable module holding the hooks above; yields its name."""
    name = f"ccr_test_hooks_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(HOOKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _settings() -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "deepseek",
                    "type": "openai",
                    "base_url": "https://api.deepseek.com/v1",
                    "models": ["deepseek-chat", "deepseek-reasoner"],
                },
                {
                    "name": "groq",
                    "type": "openai",
                    "base_url": "https://api.groq.com/openai/v1",
                    "models": ["llama-3.3-70b-versatile"],
                },
            ],
            "router": {"default": "deepseek,deepseek-chat", "think": "deepseek,deepseek-reasoner"},
        }
    )


def _request(model: str, system: str | None = None) -> MessagesRequest:
    return MessagesRequest(
        model=model,
        max_tokens=100,
        system=[TextBlock(system)] if system else [],
        messages=[Message("user", [TextBlock("hi")])],
    )


def _seen(module: str) -> list[tuple[object, ...]]:
    seen: list[tuple[object, ...]] = sys.modules[module].SEEN
    return seen


def _router(custom: CustomRouter, sessions: SessionUsage | None = None) -> Router:
    return Router(_settings(), Catalog.load(), TokenCounter(), sessions or SessionUsage(), custom)


async def test_async_function_is_loaded_and_decides_first(hooks: str) -> None:
    sessions = SessionUsage()
    sessions.record("s1", Usage(input_tokens=1234))
    router = _router(load_custom_router(f"{hooks}:route"), sessions)
    tagged = "<CCR-SUBAGENT-MODEL>deepseek,deepseek-chat</CCR-SUBAGENT-MODEL>Reviewer."
    request = _request("pick-groq", system=tagged)
    decision = await router.route(request, session_id="s1")
    assert (decision.scenario, decision.provider, decision.model) == (
        "custom",
        "groq",
        "llama-3.3-70b-versatile",
    )
    assert decision.reason == "custom router route chose groq,llama-3.3-70b-versatile"
    # The hook saw the request as the client sent it, with the session's context...
    assert _seen(hooks) == [("pick-groq", tagged, "s1", 1234)]
    # ...and the subagent tag is removed before the request goes anywhere.
    assert request.system[0].text == "Reviewer."


async def test_none_continues_with_the_scenarios(hooks: str) -> None:
    router = _router(load_custom_router(f"{hooks}:route"))
    decision = await router.route(_request("claude-opus-4-6"), session_id=None)
    assert (decision.scenario, decision.provider, decision.model) == ("default", "deepseek", "deepseek-chat")
    assert _seen(hooks) == [("claude-opus-4-6", None, None, None)]


async def test_async_callable_instance_and_dotted_attribute(hooks: str) -> None:
    decision = await _router(load_custom_router(f"{hooks}:hook")).route(_request("x"), session_id=None)
    assert (decision.scenario, decision.model) == ("custom", "deepseek-reasoner")
    assert load_custom_router(f"{hooks}:Nested.route") is sys.modules[hooks].Nested.route


async def test_bad_answers_are_routing_errors(hooks: str) -> None:
    router = _router(load_custom_router(f"{hooks}:route"))
    with pytest.raises(
        RoutingError, match=r"custom router route returned 42, expected 'provider,model' or None"
    ):
        await router.route(_request("bad-type"), session_id=None)
    with pytest.raises(RoutingError, match=r"^custom router route: provider 'groq' has no model 'gpt-99'"):
        await router.route(_request("bad-route"), session_id=None)


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("sync_route", r"must be an async function .* got function"),
        ("sync_hook", r"must be an async function .* got SyncHook"),
        ("Hook", r"must be an async function .* got type"),
        ("NOT_CALLABLE", r"must be an async function .* got int"),
        ("missing", r"has no attribute 'missing'"),
    ],
)
def test_rejected_targets(hooks: str, attribute: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_custom_router(f"{hooks}:{attribute}")


@pytest.mark.parametrize("spec", ["no_colon_here", ":route", "module:", "  :  "])
def test_malformed_spec(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"expected 'package\.module:function'"):
        load_custom_router(spec)


def test_missing_module() -> None:
    with pytest.raises(ConfigError, match=r"cannot import 'ccr_no_such_module_xyz'"):
        load_custom_router("ccr_no_such_module_xyz:route")
