"""The one place that joins routing and providers: plan a request, then send it.

``Dispatcher.plan`` asks the router where a request goes and prepares a copy of the request for that
target (billing-header line removed where it would defeat a provider's prompt cache, ``max_tokens``
clamped to the model's limit, thinking fitted to the model). ``complete`` and ``stream`` call the
provider and record the usage the session reported, which the long-context scenario reads.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from ccrouter.catalog import Catalog, ModelInfo, clamp_max_tokens
from ccrouter.config import ProviderConfig, Settings
from ccrouter.errors import CCRouterError, RoutingError
from ccrouter.exchange import Admission, Attempt, Exchange, UsageHook
from ccrouter.messages import (
    MessageDelta,
    MessagesRequest,
    MessagesResponse,
    MessageStart,
    StreamEvent,
    ThinkingConfig,
    Usage,
)
from ccrouter.providers.base import Provider
from ccrouter.routing.prepare import strip_billing_header
from ccrouter.routing.scenarios import RouteDecision, Router
from ccrouter.routing.session import SessionUsage, session_id

__all__ = ["Dispatcher", "Plan"]

# Anthropic requires 1,024 <= budget_tokens < max_tokens for enabled thinking.
_MIN_THINKING_BUDGET = 1024


@dataclass(slots=True)
class Plan:
    decision: RouteDecision
    provider: Provider
    request: MessagesRequest
    session_id: str | None
    exchange: Exchange


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, Provider],
        router: Router,
        catalog: Catalog,
        sessions: SessionUsage,
        admission: Admission | None = None,
        usage_hooks: Sequence[UsageHook] = (),
    ) -> None:
        self._admission = admission
        self._usage_hooks = usage_hooks
        self._settings = settings
        self._providers = providers
        self._router = router
        self._catalog = catalog
        self._sessions = sessions

    async def plan(self, request: MessagesRequest, headers: Mapping[str, str], exchange: Exchange) -> Plan:
        session = session_id(request, headers)
        exchange.session_id = session
        exchange.requested_model = request.model
        exchange.stream = request.stream
        override = await self._admission.admit(exchange, request) if self._admission is not None else None
        if override is not None:
            provider_name, _, model = override.partition(",")
            decision = RouteDecision("downgrade", provider_name, model, f"admission policy chose {override}")
        else:
            decision = await self._router.route(request, session_id=session)
        exchange.scenario = decision.scenario
        exchange.provider = decision.provider
        exchange.model = decision.model
        exchange.route_reason = decision.reason
        provider = self._providers.get(decision.provider)
        config = self._settings.provider(decision.provider)
        if provider is None or config is None:
            raise RoutingError(f"provider {decision.provider!r} is not configured")
        prepared = _prepare(request, config, self._catalog.info(config, decision.model))
        return Plan(
            decision=decision, provider=provider, request=prepared, session_id=session, exchange=exchange
        )

    async def complete(self, plan: Plan) -> MessagesResponse:
        attempt = Attempt(plan.decision.provider, plan.decision.model)
        plan.exchange.attempts.append(attempt)
        started = time.perf_counter()
        try:
            response = await plan.provider.complete(plan.request, plan.decision.model)
        except CCRouterError as exc:
            _failed(attempt, exc)
            raise
        finally:
            attempt.duration_s = time.perf_counter() - started
        self._record(plan, response.usage)
        return response

    async def stream(self, plan: Plan) -> AsyncIterator[StreamEvent]:
        attempt = Attempt(plan.decision.provider, plan.decision.model)
        plan.exchange.attempts.append(attempt)
        started = time.perf_counter()
        usage = Usage()
        try:
            async for event in plan.provider.stream(plan.request, plan.decision.model):
                if isinstance(event, MessageStart):
                    usage = event.usage
                    plan.exchange.usage = usage
                elif isinstance(event, MessageDelta):
                    usage = _merge_usage(usage, event.usage)
                    plan.exchange.usage = usage
                yield event
        except CCRouterError as exc:
            _failed(attempt, exc)
            raise
        finally:
            attempt.duration_s = time.perf_counter() - started
        self._record(plan, usage)

    def _record(self, plan: Plan, usage: Usage) -> None:
        plan.exchange.usage = usage
        for hook in self._usage_hooks:
            hook(plan.exchange)
        if plan.session_id is not None:
            self._sessions.record(plan.session_id, usage)


def _failed(attempt: Attempt, exc: CCRouterError) -> None:
    attempt.error_type = exc.error_type
    attempt.status = exc.status


def _merge_usage(start: Usage, final: Usage) -> Usage:
    """message_delta usage is cumulative but may omit input counts that message_start gave."""
    return Usage(
        input_tokens=final.input_tokens or start.input_tokens,
        output_tokens=final.output_tokens or start.output_tokens,
        cache_read_input_tokens=final.cache_read_input_tokens or start.cache_read_input_tokens,
        cache_creation_input_tokens=final.cache_creation_input_tokens or start.cache_creation_input_tokens,
    )


def _is_official_anthropic(config: ProviderConfig) -> bool:
    return config.type == "anthropic" and (config.base_url is None or "api.anthropic.com" in config.base_url)


def _prepare(request: MessagesRequest, config: ProviderConfig, info: ModelInfo) -> MessagesRequest:
    """A copy of ``request`` fitted to the target. Shallow: unchanged parts are shared, not copied."""
    prepared = dataclasses.replace(request)
    if not _is_official_anthropic(config):
        # The line changes on every request; left in, it defeats the provider's prefix cache.
        if prepared.raw is not None:
            prepared.raw = dict(prepared.raw)
        prepared.system = list(prepared.system)
        strip_billing_header(prepared)
    prepared.max_tokens = clamp_max_tokens(request.max_tokens, info)
    thinking = _fit_thinking(request.thinking, prepared.max_tokens, info)
    if not info.thinking and prepared.effort is not None:
        # Reasoning effort means nothing to a model without reasoning; OpenAI-style APIs reject it.
        prepared.effort = None
    if thinking != request.thinking:
        prepared.thinking = thinking
        if prepared.raw is not None and prepared.raw_format == "anthropic":
            prepared.raw = {**prepared.raw, "thinking": _thinking_wire(thinking)}
    return prepared


def _fit_thinking(thinking: ThinkingConfig, max_tokens: int, info: ModelInfo) -> ThinkingConfig:
    if not thinking.on:
        return thinking
    if not info.thinking:
        return ThinkingConfig(type="disabled")
    if (
        thinking.type == "enabled"
        and thinking.budget_tokens is not None
        and thinking.budget_tokens >= max_tokens
    ):
        if max_tokens <= _MIN_THINKING_BUDGET:
            return ThinkingConfig(type="disabled")
        return ThinkingConfig(type="enabled", budget_tokens=max(_MIN_THINKING_BUDGET, max_tokens // 2))
    return thinking


def _thinking_wire(thinking: ThinkingConfig) -> dict[str, object]:
    if thinking.type == "enabled":
        return {"type": "enabled", "budget_tokens": thinking.budget_tokens}
    return {"type": thinking.type}
