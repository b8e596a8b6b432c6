"""The one place that joins routing and providers: plan a request, then send it down a cascade.

``Dispatcher.plan`` asks the router where a request goes (the scenario's route), gathers who else can
serve it (the scenario's fallback list, then automatic candidates), and lets the strategy order each of
those tiers by live state (``ccrouter.resilience``): headroom, latency, cost, reliability. Across tiers
only live state reorders (``routing.strategies.rank_tiers``). The caller's allowed routes
(``auth.limits``) refuse a route outside them and drop such fallbacks. Admission (client limits, then
budgets) then counts the request and reserves its worst case at the dearest candidate's price, settled
when the calls end. ``complete`` and
``stream`` first ask the pre-dispatch answerers (``ccrouter.predispatch``), then walk that order down
the fallback cascade (``ccrouter.cascade``: which failure moves on, at most ``routing.max_fallbacks``
after the first). A stream fails over only before its first event reaches the client.

Each request is prepared per target (billing-header line removed where it would defeat a provider's
prompt cache, ``max_tokens`` clamped to the model's limit, thinking fitted to the model), and the usage
the session reported is recorded, which the long-context scenario reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Protocol

import orjson

from ccrouter.auth.limits import Allowance, RoutePolicy
from ccrouter.cascade import Cascade, Plan, Targets, header_value
from ccrouter.catalog import Catalog, clamp_max_tokens
from ccrouter.codecs.events import response_events
from ccrouter.config import ProviderConfig, Settings
from ccrouter.errors import CCRouterError, RoutingError, UpstreamProtocolError
from ccrouter.exchange import Admission, Exchange, Observer, PreDispatch, TargetStep, UsageHook
from ccrouter.messages import (
    BlockDelta,
    ContentBlock,
    Delta,
    InputJsonDelta,
    MessageDelta,
    MessagesRequest,
    MessagesResponse,
    MessageStart,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    Usage,
)
from ccrouter.predispatch import Answerers
from ccrouter.pricing.table import ModelPrice
from ccrouter.providers.base import Provider
from ccrouter.resilience.live import LiveState
from ccrouter.routing.candidates import candidates_for, needs
from ccrouter.routing.fit import fit_request
from ccrouter.routing.project import project_context
from ccrouter.routing.scenarios import RouteDecision, Router
from ccrouter.routing.session import SessionUsage, session_id
from ccrouter.routing.strategies import (
    BUILTIN_STRATEGIES,
    PRIORITY,
    RankingPolicy,
    Scored,
    passed_over,
    rank_tiers,
    strategy_named,
)

__all__ = ["Dispatcher", "Plan", "PriceLookup", "header_value"]

log = logging.getLogger("ccrouter.dispatch")

# Scenarios where a policy named the target (and "explicit" when the client wrote provider,model):
# it goes first whatever the scores say.
_PINNED = frozenset({"custom", "subagent", "downgrade", "image_agent"})


class PriceLookup(Protocol):
    """What the cost factor needs from a price table (``ccrouter.pricing.PriceTable`` fits)."""

    def price(self, provider: ProviderConfig, model: str) -> ModelPrice | None: ...


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
        *,
        pools: Mapping[str, Mapping[str, Provider]] | None = None,
        live: LiveState | None = None,
        prices: PriceLookup | None = None,
        strategy: RankingPolicy | None = None,
        pre_dispatch: Sequence[PreDispatch] = (),
        owner: Callable[[object], str] | None = None,
        profile_strategies: Mapping[str, RankingPolicy] | None = None,
        target_steps: Sequence[TargetStep] = (),
        observers: Sequence[Observer] = (),
        routes: RoutePolicy | None = None,
    ) -> None:
        """``pools``: provider -> credential id -> provider (``providers.registry.open_pools``); without
        it each provider of ``providers`` is its own one-credential pool. ``strategy``: the ranking
        policy ``routing.strategy`` names (``routing.strategies.strategy_named``; default: a built-in);
        ``pre_dispatch``: the answerers asked before any provider call, ``owner`` naming their plugin
        (``plugins.Extensions``); ``profile_strategies``: the policy of each profile that names its own
        strategy (``profiles.<name>.routing.strategy``); ``target_steps``: what rewrites a client request
        for each candidate before its call; ``observers``: told of the calls those steps make (``call``);
        ``routes``: the routes each caller may use (``auth.limits``: a route outside them is a 403,
        fallbacks outside them are dropped)."""
        self._admission = admission
        self._routes = routes
        self._profile_strategies = profile_strategies or {}
        self._usage_hooks = usage_hooks
        self._settings = settings
        self._router = router
        self._catalog = catalog
        self._sessions = sessions
        self.live = live if live is not None else LiveState(settings)
        if pools is None:
            pools = {name: {self.live.credentials(name)[0]: p} for name, p in providers.items()}
        self._pools = pools
        self._prices = prices
        if strategy is None:
            strategy = strategy_named(BUILTIN_STRATEGIES, settings.routing)
        self._strategy = strategy
        # None without answerers: the hot path checks that once per request, nothing more.
        self._answers = Answerers(pre_dispatch, owner) if pre_dispatch else None
        self._steps = tuple(target_steps)
        self._observers = tuple(observers)
        self._targets = Targets(
            self.live,
            pools,
            settings.router.long_context,
            self._prepare_for,
            self._remember,
            # None without steps: the cascade checks that once per candidate, nothing more.
            self._rewrite if self._steps else None,
        )

    async def plan(self, request: MessagesRequest, headers: Mapping[str, str], exchange: Exchange) -> Plan:
        session = session_id(request, headers)
        exchange.session_id = session
        if session is not None:
            # With shared state, a session another instance served is read once (its route, size).
            await self._sessions.load(session)
        exchange.requested_model = request.model
        exchange.stream = request.stream
        project = project_context(headers, self._settings, self._router.check_route)
        exchange.project, exchange.profile = project.project, project.profile
        decision, context = await self._router.decide(request, session_id=session, project=project)
        exchange.subagent = context.is_subagent()
        strategy = self._profile_strategies.get(project.profile) if project.profile else None
        return await self._plan(request, decision, session, exchange, strategy)

    async def _plan(
        self,
        request: MessagesRequest,
        decision: RouteDecision,
        session: str | None,
        exchange: Exchange,
        strategy: RankingPolicy | None = None,
    ) -> Plan:
        allowance = self._routes.allowance(exchange) if self._routes is not None else None
        if allowance is not None:
            allowance.check(f"{decision.provider},{decision.model}")
        ranked, why = await self._ranked(request, decision, session, strategy, allowance)
        first = ranked[0].candidate
        prepared = self._prepare_for(request, first.provider, first.model)
        if self._admission is not None:
            # Admission prices the worst case where the request goes first: its input, and max_tokens
            # of output as clamped to that model's limit (the request as prepared for it).
            override = await self._admission.admit(
                exchange, prepared, first.route, lambda: self._alternatives(request, ranked)
            )
            if override is not None:
                if allowance is not None and not allowance.allows(override):
                    await self._admission.settle(exchange)
                    allowance.check(override)
                provider_name, _, model = override.partition(",")
                decision = RouteDecision(
                    "downgrade", provider_name, model, f"admission policy chose {override}"
                )
                ranked, why = await self._ranked(request, decision, session, strategy, allowance)
                first = ranked[0].candidate
                prepared = self._prepare_for(request, first.provider, first.model)
        decision = RouteDecision(
            decision.scenario, first.provider, first.model, f"{decision.reason}; {why}", decision.tokens
        )
        exchange.scenario = decision.scenario
        exchange.provider = decision.provider
        exchange.model = decision.model
        exchange.route_reason = decision.reason
        log.debug("route %s: %s", exchange.request_id, decision.reason)
        provider = next(iter(self._pools[decision.provider].values()))
        allows = allowance.allows if allowance is not None else None
        return Plan(decision, provider, prepared, session, exchange, ranked, request, allows=allows)

    def _alternatives(self, request: MessagesRequest, ranked: list[Scored]) -> list[tuple[str, int]]:
        """Where else the cascade may serve ``request`` (the usable candidates after the first, and
        the long-context route a context error moves to), each with ``max_tokens`` as clamped there."""
        routes = [
            (item.candidate.provider, item.candidate.model) for item in ranked[1:] if item.assessment.tier < 2
        ]
        long_context = self._settings.router.long_context
        if long_context is not None:
            provider, _, model = (part.strip() for part in long_context.partition(","))
            routes.append((provider, model))
        out: list[tuple[str, int]] = []
        for provider, model in routes:
            config = self._settings.provider(provider)
            if config is not None:
                info = self._catalog.info(config, model)
                out.append((f"{provider},{model}", clamp_max_tokens(request.max_tokens, info)))
        return out

    async def _ranked(
        self,
        request: MessagesRequest,
        decision: RouteDecision,
        session: str | None,
        strategy: RankingPolicy | None = None,
        allowance: Allowance | None = None,
    ) -> tuple[list[Scored], str]:
        if self._settings.provider(decision.provider) is None or decision.provider not in self._pools:
            raise RoutingError(f"provider {decision.provider!r} is not configured")
        return await self._rank(request, decision, session, strategy or self._strategy, allowance)

    async def _rank(
        self,
        request: MessagesRequest,
        decision: RouteDecision,
        session: str | None,
        chosen_by: RankingPolicy,
        allowance: Allowance | None = None,
    ) -> tuple[list[Scored], str]:
        """The candidates in the order to try them (the fallbacks ``allowance`` allows), and the
        explanation."""
        chosen, automatic = candidates_for(self._settings, self._catalog, request, decision)
        if allowance is not None:
            chosen = chosen[:1] + [c for c in chosen[1:] if allowance.allows(c.route)]
            automatic = [c for c in automatic if allowance.allows(c.route)]
        chosen = [c for c in chosen if c.provider in self._pools]
        automatic = [c for c in automatic if c.provider in self._pools]
        everyone = chosen + automatic
        assessments = await self.live.assess([(c.provider, c.model) for c in everyone])
        scored = [
            Scored(c, a, self._price(c.provider, c.model), i)
            for i, (c, a) in enumerate(zip(everyone, assessments, strict=True))
        ]
        route, listed, auto = scored[0], scored[1 : len(chosen)], scored[len(chosen) :]
        strategy = chosen_by
        if decision.scenario in _PINNED or (decision.scenario == "explicit" and "," in request.model):
            strategy = PRIORITY
        # Tiers in order (the route, the fallback list, automatic candidates), each ranked by the
        # strategy; live state decides across them: usable before blocked. Blocked ones stay listed
        # (skipped, they explain the answer and give the Retry-After).
        ordered = rank_tiers([(strategy, [route]), (strategy, listed), (chosen_by, auto)])
        usable = [s for s in ordered if s.assessment.tier < 2][: 1 + self._settings.routing.max_fallbacks]
        ordered = usable + [s for s in ordered if s.assessment.tier == 2]
        sticky = self._sessions.route(session) if session and self._settings.routing.sticky_sessions else None
        why = f"strategy {strategy.name} within tiers"
        for index, item in enumerate(ordered):
            if (
                item.candidate.route == sticky
                and item.assessment.tier == 0
                and item.assessment.breaker == "closed"
            ):
                ordered.insert(0, ordered.pop(index))
                why += f"; session kept on {sticky}"
                break
        if (reason := passed_over(route, ordered)) is not None and sticky != ordered[0].candidate.route:
            why += f"; {reason}"
        return ordered, why + ": " + " | ".join(f"{s.candidate.origin} {s.explain()}" for s in ordered)

    def _price(self, provider: str, model: str) -> float | None:
        config = self._settings.provider(provider)
        price = self._prices.price(config, model) if self._prices is not None and config else None
        if price is None:
            return None
        # Claude Code traffic is input-heavy: weigh input three to one.
        return float(3 * price.input + price.output) / 4

    def _prepare_for(self, request: MessagesRequest, provider: str, model: str) -> MessagesRequest:
        config = self._settings.provider(provider)
        if config is None:
            raise RoutingError(f"provider {provider!r} is not configured")
        return fit_request(request, self._catalog.info(config, model))

    # ------------------------------------------------------------------ calls on a request's behalf

    async def _rewrite(
        self, request: MessagesRequest, exchange: Exchange, provider: str, model: str
    ) -> MessagesRequest:
        """``request`` as the target steps rewrite it for ``provider``/``model`` (client requests
        only: a call a step makes is not rewritten again)."""
        if exchange.parent_id is not None:
            return request
        config = self._settings.provider(provider)
        if config is None:
            return request
        info = self._catalog.info(config, model)
        for step in self._steps:
            if step.wants(request, info):
                request = await step.prepare(request, exchange, self)
        return request

    async def call(
        self, request: MessagesRequest, route: str, *, scenario: str, parent: Exchange
    ) -> MessagesResponse:
        """``exchange.ModelCalls``: ``request`` sent to ``route`` down its own cascade (the
        ``scenario``'s fallbacks), recorded as an exchange of its own, told to the observers."""
        exchange = _child(parent, scenario)
        provider, _, model = (part.strip() for part in route.partition(","))
        try:
            decision = RouteDecision(
                scenario, provider, model, f"{scenario}: {route} for {parent.request_id}"
            )
            # No session: a call on a request's behalf neither moves its sticky route nor counts as
            # its context usage (the long-context scenario reads that); the ledger row keeps it.
            plan = await self._plan(request, decision, None, exchange)
            if needs(request)[1]:
                plan.candidates = [plan.candidates[0]] + [
                    item for item in plan.candidates[1:] if self._sees_images(item.candidate.route)
                ]
            response = await self.complete(plan)
            exchange.status = 200
            return response
        except CCRouterError as exc:
            exchange.status = exc.status
            exchange.error_type = exc.error_type
            exchange.error_message = exc.message
            raise
        except BaseException:
            exchange.status = 499  # cancelled: the client went away (usage may be spent)
            exchange.error_type = "client_closed_request"
            raise
        finally:
            exchange.duration_s = exchange.elapsed()
            for observer in self._observers:
                try:
                    observer.on_exchange(exchange)
                except Exception:  # the boundary: one failing observer must not silence the others
                    log.exception("observer %s failed on %s", type(observer).__name__, exchange.request_id)

    def _sees_images(self, route: str) -> bool:
        provider, _, model = route.partition(",")
        config = self._settings.provider(provider)
        return config is not None and self._catalog.info(config, model).vision

    # ------------------------------------------------------------------ sending

    async def complete(self, plan: Plan) -> MessagesResponse:
        try:
            if self._answers is not None and (answer := await self._answer(self._answers, plan)) is not None:
                return answer
            return await self._complete(plan)
        finally:
            await self._settle(plan)

    async def _answer(self, answers: Answerers, plan: Plan) -> MessagesResponse | None:
        """A pre-dispatch answer, accounted as the exchange's usage (priced by the usage hooks) but
        not as a provider call: no live state, no session usage."""
        answer = await answers.ask(plan.request, plan.exchange)
        if answer is not None:
            plan.exchange.output_chars = sum(_block_chars(block) for block in answer.content)
            plan.exchange.usage = answer.usage
            for hook in self._usage_hooks:
                hook(plan.exchange)
        return answer

    async def _settle(self, plan: Plan) -> None:
        # Not when cancelled (the client went away): the ledger row settles the reservation then.
        if self._admission is not None and not _cancelling():
            await self._admission.settle(plan.exchange)

    async def _complete(self, plan: Plan) -> MessagesResponse:
        cascade = Cascade(plan, self._targets)
        while (step := await cascade.next()) is not None:
            try:
                response = await step.provider.complete(step.request, step.model)
            except CCRouterError as exc:
                await cascade.failed(step, exc)
                continue
            except BaseException:  # cancelled (the client went away): neither success nor failure
                cascade.abandon(step)
                raise
            await cascade.succeeded(step, response.usage, None)
            plan.exchange.output_chars = sum(_block_chars(block) for block in response.content)
            self._record(plan, response.usage)
            return response
        raise cascade.final_error()

    async def stream(self, plan: Plan) -> AsyncIterator[list[StreamEvent]]:
        """The events of the first candidate that starts a stream, as the provider reads them
        (``Provider.stream``); usage and output are accounted per event on the way through."""
        ended = False
        try:
            async for batch in self._stream(plan):
                yield batch
            ended = True
        except CCRouterError:
            ended = True
            raise
        finally:
            if ended:  # not closed early by a client that went away
                await self._settle(plan)

    async def _stream(self, plan: Plan) -> AsyncIterator[list[StreamEvent]]:
        if self._answers is not None and (answer := await self._answer(self._answers, plan)) is not None:
            yield response_events(answer)
            return
        cascade = Cascade(plan, self._targets)
        while (step := await cascade.next()) is not None:
            events = aiter(step.provider.stream(step.request, step.model))
            try:
                first = await anext(events)
            except StopAsyncIteration:
                await cascade.failed(
                    step,
                    UpstreamProtocolError(
                        f"{step.name}: the stream ended before any event", provider=step.name
                    ),
                )
                continue
            except CCRouterError as exc:
                await _close(events)
                await cascade.failed(step, exc)
                continue
            # Committed: the first events go to the client; a later failure cannot fail over.
            cascade.commit(step)
            ttft = time.perf_counter() - step.started
            usage = Usage()
            done = False
            try:
                batch: list[StreamEvent] | None = first
                while batch is not None:
                    for event in batch:
                        if isinstance(event, MessageStart):
                            usage = event.usage
                            plan.exchange.usage = usage
                        elif isinstance(event, MessageDelta):
                            usage = _merge_usage(usage, event.usage)
                            plan.exchange.usage = usage
                        elif isinstance(event, BlockDelta):
                            plan.exchange.output_chars += _delta_chars(event.delta)
                    yield batch
                    batch = await anext(events, None)
                done = True
            except CCRouterError as exc:
                done = True
                await cascade.failed(step, exc, committed=True)
                raise
            finally:
                await _close(events)
                if not done:  # the client went away: the call neither failed nor succeeded
                    cascade.abandon(step)
            await cascade.succeeded(step, usage, ttft)
            self._record(plan, usage)
            return
        raise cascade.final_error()

    def _record(self, plan: Plan, usage: Usage) -> None:
        plan.exchange.usage = usage
        for hook in self._usage_hooks:
            hook(plan.exchange)
        if plan.session_id is not None:
            self._sessions.record(plan.session_id, usage)

    def _remember(self, session: str | None, route: str) -> None:
        if session is not None:
            self._sessions.remember(session, route)


def _child(parent: Exchange, scenario: str) -> Exchange:
    """An exchange for a call made on ``parent``'s behalf: its identity (key, user, session and
    whatever else names who asked) kept, everything about the call itself fresh."""
    return dataclasses.replace(
        parent,
        request_id=f"{parent.request_id}.{scenario}.{os.urandom(4).hex()}",
        parent_id=parent.request_id,
        started_at=time.time(),
        started=time.perf_counter(),
        requested_model=None,
        stream=False,
        scenario=scenario,
        provider=None,
        model=None,
        route_reason=None,
        attempts=[],
        answered_by=None,
        usage=None,
        usage_estimated=False,
        cost_usd=None,
        output_chars=0,
        status=0,
        error_type=None,
        error_message=None,
        first_byte_s=None,
        duration_s=None,
        response_headers={},
    )


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _close(events: AsyncIterator[list[StreamEvent]]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        with contextlib.suppress(CCRouterError):
            await close()


def _delta_chars(delta: Delta) -> int:
    """Characters of generated output in a delta (kept so usage can be estimated when a provider
    reports none)."""
    if isinstance(delta, TextDelta):
        return len(delta.text)
    if isinstance(delta, ThinkingDelta):
        return len(delta.thinking)
    if isinstance(delta, InputJsonDelta):
        return len(delta.partial_json)
    return 0


def _block_chars(block: ContentBlock) -> int:
    if isinstance(block, TextBlock):
        return len(block.text)
    if isinstance(block, ThinkingBlock):
        return len(block.thinking)
    if isinstance(block, ToolUseBlock):
        return len(orjson.dumps(block.input))
    return 0


def _merge_usage(start: Usage, final: Usage) -> Usage:
    """message_delta usage is cumulative but may omit input counts that message_start gave."""
    return Usage(
        input_tokens=final.input_tokens or start.input_tokens,
        output_tokens=final.output_tokens or start.output_tokens,
        cache_read_input_tokens=final.cache_read_input_tokens or start.cache_read_input_tokens,
        cache_creation_input_tokens=final.cache_creation_input_tokens or start.cache_creation_input_tokens,
    )
