"""The built-in routing: claude-code-router's scenario rules (the custom hook among them) and the
ranking strategies, registered through the same hooks a plugin uses."""

from __future__ import annotations

from collections.abc import Callable

from ccrouter.config import Settings
from ccrouter.errors import ConfigError, PluginError
from ccrouter.hookspecs import hookimpl
from ccrouter.routing.custom import load_custom_router
from ccrouter.routing.rules import RoutingRule
from ccrouter.routing.scenarios import builtin_rules
from ccrouter.routing.strategies import BUILTIN_STRATEGIES, StrategyFactory

__all__ = ["register_routing_rules", "register_strategies"]


@hookimpl
def register_strategies(register: Callable[[str, StrategyFactory], None]) -> None:
    for name, factory in BUILTIN_STRATEGIES.items():
        register(name, factory)


@hookimpl
def register_routing_rules(register: Callable[[RoutingRule], None], settings: Settings) -> None:
    try:
        custom = load_custom_router(settings.router.custom) if settings.router.custom else None
    except ConfigError as exc:
        # A PluginError goes out as it is (any other error is wrapped in one naming this module):
        # the user's own hook is at fault, and the message says so.
        raise PluginError(exc.message) from exc
    for rule in builtin_rules(settings, custom):
        register(rule)
