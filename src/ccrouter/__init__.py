"""ccrouter: a gateway between Claude Code (or any Anthropic/OpenAI SDK client) and many providers.

The public surface, for users and plugin authors (``tests/test_exported_members.py`` holds it to this
list); anything else is internal and may change. The fakes the tests use are ``ccrouter.testing``.

Running the gateway:
    ``create_app``: the aiohttp application for a ``Settings``; ``serve``: run it in the foreground.

Configuration (frozen, validated; what a plugin's hooks receive):
    ``Settings``: the whole configuration; ``ProviderConfig``: one provider and its ``ModelSpec``
    models; ``RouterConfig``: scenario routes (``router:``); ``RoutingConfig``: ranking and
    resilience (``routing:``).

Plugins (``ccrouter.hookspecs`` documents every hook):
    ``hookimpl``: marks a plugin's hook implementations; ``Endpoint``: a client-facing front, for
    ``register_endpoints``; ``ProviderType``: a provider type, for ``register_providers``;
    ``Provider`` and ``WireAdapter``: the provider interface and the pure wire translation behind it;
    ``Exchange``, with its ``Attempt`` list: one request's record as observers see it; ``Observer``:
    told about every finished exchange.

The canonical model every wire format is translated to and from:
    ``MessagesRequest``, ``Message``, ``Tool``, ``ToolChoice``, ``ThinkingConfig``; content blocks
    ``TextBlock``, ``ImageBlock``, ``ToolUseBlock``, ``ToolResultBlock``, ``ThinkingBlock``,
    ``OtherBlock`` (any block of the union ``ContentBlock``); ``MessagesResponse`` and its ``Usage``;
    the stream events of ``StreamEvent``: ``MessageStart``, ``BlockStart``, ``BlockDelta`` (carrying a
    ``TextDelta``, ``InputJsonDelta``, ``ThinkingDelta`` or ``SignatureDelta``), ``BlockStop``,
    ``MessageDelta``, ``MessageStop``, ``Ping``, ``StreamError``.

Errors (one root; the tree, with each class's status and error type, is drawn in ``ccrouter.errors``):
    ``CCRouterError``; ``ConfigError``, ``PluginError``; ``RequestError``, ``AuthenticationError``,
    ``PermissionDeniedError``, ``NotFoundError``, ``RequestTooLargeError``; ``RoutingError``;
    ``UpstreamError``, ``UpstreamStatusError``, ``UpstreamRateLimitError``,
    ``UpstreamOverloadedError``, ``UpstreamTimeoutError``, ``UpstreamConnectionError``,
    ``UpstreamProtocolError``.

``__version__`` is the installed version. ``import ccrouter`` stays cheap (the CLI and every plugin
import it): each name is imported from its module on first use.
"""

from __future__ import annotations

import importlib

# Not ``typing.TYPE_CHECKING``: importing typing costs ~3 ms, which ``ccrouter statusline`` (run by
# Claude Code every 300 ms) would pay on every run; type checkers treat this name alike.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ccrouter.api.endpoints import Endpoint
    from ccrouter.app import create_app, serve
    from ccrouter.config import ModelSpec, ProviderConfig, RouterConfig, RoutingConfig, Settings
    from ccrouter.errors import (
        AuthenticationError,
        CCRouterError,
        ConfigError,
        NotFoundError,
        PermissionDeniedError,
        PluginError,
        RequestError,
        RequestTooLargeError,
        RoutingError,
        UpstreamConnectionError,
        UpstreamError,
        UpstreamOverloadedError,
        UpstreamProtocolError,
        UpstreamRateLimitError,
        UpstreamStatusError,
        UpstreamTimeoutError,
    )
    from ccrouter.exchange import Attempt, Exchange, Observer
    from ccrouter.hookspecs import hookimpl
    from ccrouter.messages import (
        BlockDelta,
        BlockStart,
        BlockStop,
        ContentBlock,
        ImageBlock,
        InputJsonDelta,
        Message,
        MessageDelta,
        MessagesRequest,
        MessagesResponse,
        MessageStart,
        MessageStop,
        OtherBlock,
        Ping,
        SignatureDelta,
        StreamError,
        StreamEvent,
        TextBlock,
        TextDelta,
        ThinkingBlock,
        ThinkingConfig,
        ThinkingDelta,
        Tool,
        ToolChoice,
        ToolResultBlock,
        ToolUseBlock,
        Usage,
    )
    from ccrouter.providers.base import Provider, ProviderType, WireAdapter

__version__ = "0.1.0"

# Where each public name lives.
_MODULES = {
    "ccrouter.app": ("create_app", "serve"),
    "ccrouter.config": ("ModelSpec", "ProviderConfig", "RouterConfig", "RoutingConfig", "Settings"),
    "ccrouter.hookspecs": ("hookimpl",),
    "ccrouter.api.endpoints": ("Endpoint",),
    "ccrouter.providers.base": ("Provider", "ProviderType", "WireAdapter"),
    "ccrouter.exchange": ("Attempt", "Exchange", "Observer"),
    "ccrouter.messages": (
        "BlockDelta",
        "BlockStart",
        "BlockStop",
        "ContentBlock",
        "ImageBlock",
        "InputJsonDelta",
        "Message",
        "MessageDelta",
        "MessageStart",
        "MessageStop",
        "MessagesRequest",
        "MessagesResponse",
        "OtherBlock",
        "Ping",
        "SignatureDelta",
        "StreamError",
        "StreamEvent",
        "TextBlock",
        "TextDelta",
        "ThinkingBlock",
        "ThinkingConfig",
        "ThinkingDelta",
        "Tool",
        "ToolChoice",
        "ToolResultBlock",
        "ToolUseBlock",
        "Usage",
    ),
    "ccrouter.errors": (
        "AuthenticationError",
        "CCRouterError",
        "ConfigError",
        "NotFoundError",
        "PermissionDeniedError",
        "PluginError",
        "RequestError",
        "RequestTooLargeError",
        "RoutingError",
        "UpstreamConnectionError",
        "UpstreamError",
        "UpstreamOverloadedError",
        "UpstreamProtocolError",
        "UpstreamRateLimitError",
        "UpstreamStatusError",
        "UpstreamTimeoutError",
    ),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "Attempt",
    "AuthenticationError",
    "BlockDelta",
    "BlockStart",
    "BlockStop",
    "CCRouterError",
    "ConfigError",
    "ContentBlock",
    "Endpoint",
    "Exchange",
    "ImageBlock",
    "InputJsonDelta",
    "Message",
    "MessageDelta",
    "MessageStart",
    "MessageStop",
    "MessagesRequest",
    "MessagesResponse",
    "ModelSpec",
    "NotFoundError",
    "Observer",
    "OtherBlock",
    "PermissionDeniedError",
    "Ping",
    "PluginError",
    "Provider",
    "ProviderConfig",
    "ProviderType",
    "RequestError",
    "RequestTooLargeError",
    "RouterConfig",
    "RoutingConfig",
    "RoutingError",
    "Settings",
    "SignatureDelta",
    "StreamError",
    "StreamEvent",
    "TextBlock",
    "TextDelta",
    "ThinkingBlock",
    "ThinkingConfig",
    "ThinkingDelta",
    "Tool",
    "ToolChoice",
    "ToolResultBlock",
    "ToolUseBlock",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamOverloadedError",
    "UpstreamProtocolError",
    "UpstreamRateLimitError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
    "Usage",
    "WireAdapter",
    "__version__",
    "create_app",
    "hookimpl",
    "serve",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ccrouter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
