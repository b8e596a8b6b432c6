"""One request's walk down its ordered candidates: which to try next, and what a failure means.

Routing (``ccrouter.routing``) is pure policy; this module is where its order meets live state
(``ccrouter.resilience.live``): it takes each candidate's concurrency slot, rotates credentials, and
tells live state how each call ended. Dispatch drives it, one call at a time::

    cascade = Cascade(plan, targets)
    while (step := await cascade.next()) is not None:
        try:
            response = await step.provider.complete(step.request, step.model)
        except CCRouterError as exc:
            await cascade.failed(step, exc)  # raises when the client must see exc
            continue
        await cascade.succeeded(step, response.usage, None)
        return response
    raise cascade.final_error()

A 429, 5xx, 529, timeout or connection error moves on to the next candidate; a context-window error
moves to the long-context route; 401/403 set that credential aside and try the provider's next one;
any other 4xx goes back to the client at once. A stream that has sent its first event to the client
is ``commit``-ted: a later failure is recorded but cannot fail over.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from ccrouter.errors import (
    CCRouterError,
    PoolExhaustedError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamRateLimitError,
)
from ccrouter.exchange import Attempt, Exchange
from ccrouter.messages import MessagesRequest, Usage
from ccrouter.providers.base import Provider
from ccrouter.providers.deadline import use_pool
from ccrouter.resilience.live import LiveState
from ccrouter.routing.rules import RouteDecision
from ccrouter.routing.strategies import Scored

__all__ = ["Cascade", "Plan", "Step", "Targets", "header_value"]

log = logging.getLogger("ccrouter.dispatch")

# Phrases providers use for "the prompt does not fit the context window" (Anthropic "prompt is too
# long", OpenAI "maximum context length", Gemini "exceeds the maximum number of tokens"...).
_CONTEXT_PHRASES = (
    "prompt is too long",
    "context length",
    "context window",
    "maximum number of tokens",
    "too many tokens",
    "context_length_exceeded",
)


@dataclass(slots=True)
class Plan:
    """Where a request goes: the decision, the request as prepared for the first candidate, and the
    ordered candidates the cascade walks."""

    decision: RouteDecision
    provider: Provider
    request: MessagesRequest
    session_id: str | None
    exchange: Exchange
    # The ordered candidates with their scores (the first is ``decision``); empty: no cascade.
    candidates: list[Scored] = field(default_factory=list)
    original: MessagesRequest | None = None
    # Failed attempts as "provider,model=error" for the x-ccrouter-fallbacks header.
    fallbacks: list[str] = field(default_factory=list)
    # Whether the caller may use a ``provider,model`` route (its allow-lists); None: any.
    allows: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class Targets:
    """What every cascade of one configuration calls on (built once by the dispatcher)."""

    live: LiveState
    # provider -> credential id -> provider
    pools: Mapping[str, Mapping[str, Provider]]
    # ``router.long_context``: where a context-window error moves to.
    long_context: str | None
    # The request fitted to (provider, model).
    prepare: Callable[[MessagesRequest, str, str], MessagesRequest]
    # Told (session, "provider,model") when a candidate serves the request (sticky sessions).
    served: Callable[[str | None, str], None]
    # The request rewritten for (provider, model) by the target steps (the image agent); None: none.
    rewrite: Callable[[MessagesRequest, Exchange, str, str], Awaitable[MessagesRequest]] | None = None


@dataclass(slots=True)
class Step:
    """One provider call the cascade lets through: its slot is taken; end it with ``succeeded``,
    ``failed`` or ``abandon``."""

    scored: Scored
    credential: str
    provider: Provider
    request: MessagesRequest
    attempt: Attempt
    started: float = field(default_factory=time.perf_counter)

    @property
    def name(self) -> str:
        return self.scored.candidate.provider

    @property
    def model(self) -> str:
        return self.scored.candidate.model


class Cascade:
    """One request's walk down ``plan.candidates``."""

    def __init__(self, plan: Plan, targets: Targets) -> None:
        self._t = targets
        self._plan = plan
        self._queue: list[Scored] = list(plan.candidates)
        self._creds: dict[str, list[str]] = {}
        self._skipped: list[str] = []
        self._last_error: CCRouterError | None = None
        self._cooldowns: list[float] = []
        self._long_context_tried = False
        # route -> the request as rewritten for it (credential retries reuse it).
        self._rewritten: dict[str, MessagesRequest] = {}

    async def next(self) -> Step | None:
        """The next call to make (its slot taken), or None when no candidate is left."""
        while self._queue:
            scored = self._queue[0]
            candidate = scored.candidate
            if scored.assessment.tier == 2:
                self._queue.pop(0)
                self._cooldowns.append(scored.assessment.cooldown_s)
                self._skipped.append(f"{candidate.route}=skipped({'; '.join(scored.assessment.notes)})")
                continue
            if self._t.rewrite is not None and candidate.route not in self._rewritten:
                # Before the target's slot is taken: the rewrite may call other models meanwhile.
                self._rewritten[candidate.route] = await self._t.rewrite(
                    self._request_for(scored), self._plan.exchange, candidate.provider, candidate.model
                )
            creds = self._creds.setdefault(candidate.route, self._credential_order(scored))
            while creds:
                cred = creds.pop(0)
                refused = await self._t.live.acquire(candidate.provider, candidate.model, cred)
                if refused is None:
                    return self._step(scored, cred)
                self._skipped.append(f"{candidate.route}=skipped({refused})")
                if refused.retry_after_s is not None:
                    self._cooldowns.append(refused.retry_after_s)
                if refused.reason.startswith("breaker"):
                    break
            self._queue.pop(0)
        return None

    def _has_next(self) -> bool:
        """Whether another candidate than the one at the head of the queue could still serve (the
        provider's other credentials share its pool, so they do not count)."""
        return any(item.assessment.tier < 2 for item in self._queue[1:])

    def _credential_order(self, scored: Scored) -> list[str]:
        pool = list(self._t.pools[scored.candidate.provider])
        first = scored.assessment.credential
        return [first, *(c for c in pool if c != first)] if first in pool else pool

    def _request_for(self, scored: Scored) -> MessagesRequest:
        candidate = scored.candidate
        plan = self._plan
        first = plan.candidates[0].candidate if plan.candidates else None
        if candidate == first or plan.original is None:
            return plan.request
        return self._t.prepare(plan.original, candidate.provider, candidate.model)

    def _step(self, scored: Scored, cred: str) -> Step:
        candidate = scored.candidate
        plan = self._plan
        request = self._rewritten.get(candidate.route) or self._request_for(scored)
        attempt = Attempt(candidate.provider, candidate.model)
        plan.exchange.attempts.append(attempt)
        # A call that can go elsewhere skips a long wait for a free connection (providers.deadline).
        use_pool(fail_over=self._has_next(), report=attempt.pool_report)
        return Step(scored, cred, self._t.pools[candidate.provider][cred], request, attempt)

    def commit(self, step: Step) -> None:
        """The step's answer is going to the client: headers and the exchange name it."""
        plan = self._plan
        exchange = plan.exchange
        route = step.scored.candidate.route
        exchange.provider, exchange.model = step.name, step.model
        tried = [*plan.fallbacks, *self._skipped]
        exchange.fallbacks = tried
        waited = step.attempt.pool_wait_s
        if step.attempt.pool_outcome == "waited" and waited is not None:
            exchange.route_reason = (
                f"{exchange.route_reason}; waited {waited:.2f}s for a free connection to {step.name}"
                " (its pool was full)"
            )
        headers = exchange.response_headers
        headers["x-ccrouter-provider"] = step.name
        headers["x-ccrouter-model"] = step.model
        headers["x-ccrouter-fallbacks"] = header_value(", ".join(tried)) if tried else "0"
        if tried:
            exchange.route_reason = f"{exchange.route_reason}; served by {route} after {', '.join(tried)}"
        headers["x-ccrouter-route-reason"] = header_value(exchange.route_reason or "")
        self._t.served(plan.session_id, route)

    async def succeeded(self, step: Step, usage: Usage, ttft: float | None) -> None:
        """The call answered (``ttft``: a stream's time to its first event; None: not streamed, so
        it is committed now)."""
        duration = time.perf_counter() - step.started
        step.attempt.duration_s = duration
        if ttft is None:
            self.commit(step)
        await self._t.live.on_success(step.name, step.model, step.credential, duration, usage, ttft)

    def abandon(self, step: Step) -> None:
        """The client went away: the call neither failed nor succeeded; its slot is given back."""
        self._t.live.release(step.name, step.model, step.credential)

    async def failed(self, step: Step, exc: CCRouterError, *, committed: bool = False) -> None:
        """Record the failure; raise it when the client must see it, else queue what comes next."""
        duration = time.perf_counter() - step.started
        step.attempt.duration_s = duration
        step.attempt.error_type = exc.error_type
        step.attempt.status = exc.status
        if isinstance(exc, PoolExhaustedError):
            # Our own pool was full: nothing the provider did, so neither breaker nor health hear of it.
            self._t.live.release(step.name, step.model, step.credential)
            outcome = "pool_full"
        else:
            outcome = await self._t.live.on_failure(step.name, step.model, step.credential, exc, duration)
        route = step.scored.candidate.route
        log.info("%s via %s failed (%s): %s", self._plan.exchange.request_id, route, outcome, exc.message)
        if committed:
            return
        self._last_error = exc
        kind = "pool_full" if isinstance(exc, PoolExhaustedError) else exc.error_type
        self._plan.fallbacks.append(f"{route}={kind}/{exc.status}")
        if exc.status in (401, 403):
            # That credential is set aside (live state); the provider's next one is tried first.
            if self._creds.get(route):
                return
            self._queue.pop(0)
            return
        if _is_context_error(exc):
            self._queue.pop(0)
            if not self._queue_long_context(step):
                raise exc
            return
        if not _moves_on(exc):
            raise exc
        self._queue.pop(0)
        if isinstance(exc, UpstreamRateLimitError) and exc.retry_after is not None:
            self._cooldowns.append(exc.retry_after)

    def _queue_long_context(self, step: Step) -> bool:
        route = self._t.long_context
        if route is None or self._long_context_tried:
            return False
        self._long_context_tried = True
        provider, _, model = (part.strip() for part in route.partition(","))
        if f"{provider},{model}" == step.scored.candidate.route or provider not in self._t.pools:
            return False
        if self._plan.allows is not None and not self._plan.allows(f"{provider},{model}"):
            return False  # the caller's allow-list holds for the long-context move too
        assessment = dataclasses.replace(step.scored.assessment, provider=provider, model=model, tier=0)
        assessment.credential = self._t.live.credentials(provider)[0]
        candidate = dataclasses.replace(
            step.scored.candidate, provider=provider, model=model, origin="long_context"
        )
        self._queue.insert(0, Scored(candidate, assessment, None, -1))
        return True

    def final_error(self) -> CCRouterError:
        """Nothing served the request: the last provider error, or why nothing was tried."""
        tried = ", ".join([*self._plan.fallbacks, *self._skipped])
        if self._last_error is not None:
            error = self._last_error
            if isinstance(error, UpstreamError) and self._cooldowns and error.retry_after is None:
                error.retry_after = min(self._cooldowns)
            return error
        if self._cooldowns and min(self._cooldowns) > 0:
            return UpstreamRateLimitError(
                f"every candidate is rate limited or cooling down ({tried})", retry_after=min(self._cooldowns)
            )
        return UpstreamOverloadedError(f"no candidate is available right now ({tried})")


def _moves_on(exc: CCRouterError) -> bool:
    """429, 5xx, 529, timeouts, connection and protocol errors go to the next candidate."""
    return isinstance(exc, UpstreamError) and (exc.status >= 500 or exc.status in (408, 409, 429))


def _is_context_error(exc: CCRouterError) -> bool:
    if exc.status not in (400, 413):
        return False
    message = exc.message.lower()
    return any(phrase in message for phrase in _CONTEXT_PHRASES)


def header_value(text: str, limit: int = 1024) -> str:
    """Header-safe text: printable ASCII on one line, at most ``limit`` characters."""
    # Printable ASCII (the usual case) needs no per-character pass; isprintable() excludes \n and \t.
    clean = (
        text
        if text.isascii() and text.isprintable()
        else "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    )
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."
