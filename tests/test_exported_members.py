"""The public surface (``ccrouter.__all__``), as httpx's tests/test_exported_members.py checks its own:
every exported name is importable and documented, and the set is exactly what we promise."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys

import pytest

import ccrouter
import ccrouter.testing

# What users and plugin authors may rely on. A change here is a change of the public API: say so in
# the release notes.
PROMISED = {
    "__version__",
    # running the gateway
    "create_app",
    "serve",
    # configuration
    "Settings",
    "ProviderConfig",
    "ModelSpec",
    "RouterConfig",
    "RoutingConfig",
    # plugins
    "hookimpl",
    "Endpoint",
    "ProviderType",
    "Provider",
    "WireAdapter",
    "Exchange",
    "Attempt",
    "Observer",
    # the canonical model
    "MessagesRequest",
    "Message",
    "Tool",
    "ToolChoice",
    "ThinkingConfig",
    "ContentBlock",
    "TextBlock",
    "ImageBlock",
    "ToolUseBlock",
    "ToolResultBlock",
    "ThinkingBlock",
    "OtherBlock",
    "MessagesResponse",
    "Usage",
    "StreamEvent",
    "MessageStart",
    "BlockStart",
    "BlockDelta",
    "TextDelta",
    "InputJsonDelta",
    "ThinkingDelta",
    "SignatureDelta",
    "BlockStop",
    "MessageDelta",
    "MessageStop",
    "Ping",
    "StreamError",
    # errors
    "CCRouterError",
    "ConfigError",
    "PluginError",
    "RequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RequestTooLargeError",
    "RoutingError",
    "UpstreamError",
    "UpstreamStatusError",
    "UpstreamRateLimitError",
    "UpstreamOverloadedError",
    "UpstreamTimeoutError",
    "UpstreamConnectionError",
    "UpstreamProtocolError",
}
PROMISED_TESTING = {
    "FakeUpstream",
    "DefaultBehaviour",
    "Reply",
    "Fault",
    "ToolCall",
    "RecordedRequest",
    "item_from_dict",
    "item_to_dict",
    "simulated_reply",
    "SIMULATED_NOTICE",
    "SigningKey",
    "JwksServer",
    "forge",
    "jwks_document",
    # -- issue 16, Google Vertex AI
    "FakeVertex",
    "FakeAzureOpenAI",
    "ForwardProxy",
    "FakeGoogleAuth",
    # -- issue 16, AWS Bedrock
    "FakeBedrock",
    "StreamFault",
}


def test_the_surface_is_what_we_promise() -> None:
    assert set(ccrouter.__all__) == PROMISED
    assert len(ccrouter.__all__) == len(PROMISED), "a name is listed twice"
    assert ccrouter.__all__ == sorted(ccrouter.__all__), "keep __all__ sorted"
    assert set(ccrouter.testing.__all__) == PROMISED_TESTING


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_every_name_is_importable_and_documented(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from ccrouter import {name}", namespace)
    assert namespace[name] is getattr(ccrouter, name)
    assert name in dir(ccrouter)
    # Documented: the package's docstring says what each name is for (help(ccrouter) shows it).
    assert re.search(rf"``{re.escape(name)}``", ccrouter.__doc__ or ""), (
        f"{name} is not in ccrouter's docstring"
    )
    value = getattr(ccrouter, name)
    if inspect.isfunction(value):
        assert inspect.getdoc(value), f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(PROMISED_TESTING))
def test_the_shipped_fakes_are_importable(name: str) -> None:
    assert getattr(ccrouter.testing, name) is getattr(importlib.import_module("ccrouter.testing"), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'create_ap'"):
        _ = ccrouter.create_ap  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from ccrouter import dispatch_internals", {})


def test_importing_ccrouter_is_cheap() -> None:
    """The CLI and every plugin import the package: the web stack, pydantic and the app load only when
    a name that needs them is used."""
    heavy = ("aiohttp", "pydantic", "ccrouter.app", "ccrouter.config", "tiktoken")
    code = (
        "import sys, ccrouter; print(ccrouter.__version__); "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    version, loaded = out.splitlines()
    assert version == ccrouter.__version__
    assert loaded == "", f"import ccrouter loaded {loaded}"
