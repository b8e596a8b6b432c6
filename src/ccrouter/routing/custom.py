"""The user's own routing hook (``router.custom: "package.module:function"``).

Like claude-code-router's ``CUSTOM_ROUTER_PATH``, the hook runs before every scenario and answers
``"provider,model"`` to decide, or None to let the scenarios decide::

    async def route(request: MessagesRequest, context: RouteContext) -> str | None:
        if context.counter.count_request(request) > 100_000:
            return "gemini,gemini-2.5-pro"
        return None
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ccrouter.config import Settings
from ccrouter.errors import ConfigError
from ccrouter.messages import MessagesRequest

if TYPE_CHECKING:
    from ccrouter.catalog import Catalog
    from ccrouter.tokens import TokenCounter

__all__ = ["CustomRouter", "RouteContext", "load_custom_router"]


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a custom router may consult besides the request."""

    settings: Settings
    catalog: Catalog
    counter: TokenCounter
    session_id: str | None
    # Input tokens (input + cache read + cache creation) the session's previous turn reported.
    last_input_tokens: int | None


CustomRouter = Callable[[MessagesRequest, RouteContext], Awaitable[str | None]]


def load_custom_router(spec: str) -> CustomRouter:
    """Import ``package.module:function`` and check it is an async callable."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name.strip() or not attribute.strip():
        raise ConfigError(f"router.custom: expected 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name.strip())
    except ImportError as exc:
        raise ConfigError(f"router.custom: cannot import {module_name!r}: {exc}") from exc
    target: object = module
    for part in attribute.strip().split("."):
        if not hasattr(target, part):
            raise ConfigError(f"router.custom: module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not _is_async_callable(target):
        raise ConfigError(
            f"router.custom: {spec!r} must be an async function (async def f(request, context)),"
            f" got {type(target).__name__}"
        )
    return cast(CustomRouter, target)


def _is_async_callable(target: object) -> bool:
    if inspect.iscoroutinefunction(target):
        return True
    # An instance whose class defines ``async def __call__`` is an async callable too.
    if not callable(target) or inspect.isclass(target) or inspect.isroutine(target):
        return False
    return inspect.iscoroutinefunction(type(target).__call__)
