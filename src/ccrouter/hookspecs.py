"""The hook specification: every way a plugin (or a built-in) extends ccrouter.

A plugin is a module or object with functions marked ``@hookimpl`` whose names are the hooks below
(pluggy, as simonw/llm does it). ccrouter's own providers, vendors, strategies, routing rules,
transformers and observers are registered through these same hooks (``ccrouter.builtins``).

Two kinds of hook:

- ``register_*`` hooks run when the plugins are loaded or the configuration is (re)loaded, never per
  request. Each receives a ``register`` callable and calls it once per thing it adds. What they
  register is gathered into one frozen ``ccrouter.plugins.Registry``; the hot path reads that, so a
  hook nobody implements costs nothing per request.
- Hooks that take ``settings`` are called again on every configuration reload, with the new settings,
  and build fresh objects for it; the others run once, when the plugins are loaded.

A plugin that raises while a request is served turns into a clean error for that request (the
plugin is named in the log); one that raises while registering is named in the start (or reload)
error, and a reload then keeps the running state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from ccrouter.api.endpoints import Endpoint
    from ccrouter.config import Settings
    from ccrouter.exchange import Observer, PreDispatch, ResponseHook, TargetStep
    from ccrouter.providers.base import ProviderType
    from ccrouter.providers.openai_vendors import Vendor
    from ccrouter.routing.rules import RoutingRule
    from ccrouter.routing.strategies import StrategyFactory
    from ccrouter.services import ObserverContext
    from ccrouter.telemetry.alerts import Sender
    from ccrouter.transformers.base import TransformerFactory

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "ccrouter"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(register: Callable[[ProviderType], None]) -> None:
    """Provider types, named by ``providers[].type`` in the config: a wire format spoken over HTTP
    (an adapter factory: ``anthropic``, ``openai``, ``gemini``) or a provider of its own
    (an opener: ``simulated``)."""


@hookspec
def register_vendors(register: Callable[[Vendor], None]) -> None:
    """Quirk profiles of OpenAI-compatible vendors (``providers[].vendor``): base URL, headers and
    the per-model ``Dialect`` the OpenAI chat codec follows."""


@hookspec
def register_strategies(register: Callable[[str, StrategyFactory], None]) -> None:
    """Ranking strategies by name (``routing.strategy``): a factory that builds, from the routing
    settings, the policy that orders the candidates of one tier."""


@hookspec
def register_routing_rules(register: Callable[[RoutingRule], None], settings: Settings) -> None:
    """Scenario rules, asked in order until one decides where a request goes. Built-ins come in
    claude-code-router's order; a plugin's rule is asked before the built-in feature scenarios
    (``RoutingRule.order`` places it exactly)."""


@hookspec
def register_transformers(register: Callable[[str, TransformerFactory], None]) -> None:
    """Request/response transformers by name, as ``providers[].transformers`` (and per model) name
    them: claude-code-router's transformer idea, applied on the canonical model. The factory takes the
    entry's options and returns a ``ccrouter.transformers.Transformer`` (``ConfigError`` for bad ones);
    it runs when the app is built, never per request."""


@hookspec
def register_pre_dispatch(register: Callable[[PreDispatch], None], settings: Settings) -> None:
    """Answers that need no provider: asked in order after routing and before any provider call (a
    response cache, a guardrail, a mock). An answer is not a provider call: live state (windows,
    latency, breakers) does not see it."""


@hookspec
def register_target_steps(register: Callable[[TargetStep], None], settings: Settings) -> None:
    """Steps that rewrite a routed client request for the target about to serve it, asked in
    order for each candidate the cascade tries, before its call (the built-in image agent describes
    images for a model without vision). A step may call models on the request's behalf (each call
    its own ledger row). Not wired in at all when no plugin registers one; a step's state lives as
    long as the configuration (a reload builds new steps)."""


@hookspec
def register_observers(register: Callable[[Observer], None], context: ObserverContext) -> None:
    """Observers told about every finished exchange (the ledger, metrics, the request log and the
    alerts' window are built-ins of this kind). ``context`` holds the services they may need."""


@hookspec
def register_response_hooks(register: Callable[[ResponseHook], None], settings: Settings) -> None:
    """Called as each response is about to start (streamed or not, errors too; its head not yet
    sent): may add response headers from the exchange. ``exchange.endpoint`` tells which API answered
    ("messages", "chat_completions"...; "other" for the rest). A hook that raises is logged with the
    plugin's name and the response goes on without it. Not wired in at all when no plugin has one."""


@hookspec
def register_alert_channels(register: Callable[[Sender], None], settings: Settings) -> None:
    """Where alert notices go besides the configured webhook (chat, pager, email...)."""


@hookspec
def register_endpoints(register: Callable[[Endpoint], None]) -> None:
    """Client-facing endpoints (``ccrouter.api.endpoints.Endpoint``: method, path, handler, error
    envelope, and the name its requests are labelled and recorded under in the metrics and the
    ledger): a new front such as OpenAI's Responses API is one entry. A later entry for the same
    method and path replaces an earlier one."""


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """CLI command groups: add commands or sub-apps to the ``ccrouter`` command."""
