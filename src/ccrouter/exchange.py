"""One client request's record as it crosses the gateway, and the two hooks that read it.

The API layer opens an ``Exchange`` per request (request id, client key, timing, final status);
dispatch fills in the route, the attempts and the usage. When the response is finished, every
``Observer`` gets the exchange (ledger, metrics, logs, alerts subscribe here). An ``Admission``
policy (budgets) may refuse a request or redirect it before it is routed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ccrouter.auth.roles import Principal
from ccrouter.catalog import ModelInfo
from ccrouter.messages import MessagesRequest, MessagesResponse, Usage

__all__ = [
    "Admission",
    "Attempt",
    "EndObserver",
    "Exchange",
    "ModelCalls",
    "Observer",
    "PreDispatch",
    "ResponseHook",
    "TargetStep",
    "UsageHook",
]


@dataclass(slots=True)
class Attempt:
    """One provider call made for the exchange (the first, then any fallbacks)."""

    provider: str
    model: str
    error_type: str | None = None
    status: int | None = None
    duration_s: float = 0.0
    # -- speed and scale (issue 17): set when the provider's connection pool was full
    # (``providers.deadline``): how the call went on, and the seconds it waited for a slot.
    pool_outcome: str | None = None
    pool_wait_s: float | None = None

    def pool_report(self, outcome: str, seconds: float) -> None:
        """``providers.deadline.PoolReport``: the call found its provider's pool full."""
        self.pool_outcome, self.pool_wait_s = outcome, seconds


@dataclass(slots=True)
class Exchange:
    request_id: str
    # "messages", "count_tokens", "chat_completions", "models"...
    endpoint: str
    started_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    client_key_id: str | None = None
    user: str | None = None
    # -- a team's gateway (issue 14): the caller's team, and who it is with its limits (set by the
    # authentication middleware; None on a gateway without client auth and without a credential).
    team: str | None = None
    principal: Principal | None = None
    session_id: str | None = None
    # The request's project and profile (``x-ccrouter-project`` / ``-profile``), and whether Claude
    # Code marked it as a subagent's (the billing line's ``cc_is_subagent``, or the subagent tag).
    project: str | None = None
    profile: str | None = None
    subagent: bool = False
    requested_model: str | None = None
    stream: bool = False
    scenario: str | None = None
    provider: str | None = None
    model: str | None = None
    route_reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    # The candidates passed over before the one that served, failed or skipped (cooling down, breaker
    # open), as ``x-ccrouter-fallbacks`` names them: "provider,model=why".
    fallbacks: list[str] = field(default_factory=list)
    # The pre-dispatch answerer that served the request without a provider call (``PreDispatch.name``).
    answered_by: str | None = None
    usage: Usage | None = None
    # True when the provider reported no usage and the counts are our estimate.
    usage_estimated: bool = False
    cost_usd: float | None = None
    # Characters of generated text, thinking and tool arguments: the basis of an output estimate
    # when the provider reports no usage.
    output_chars: int = 0
    status: int = 0
    error_type: str | None = None
    error_message: str | None = None
    first_byte_s: float | None = None
    duration_s: float | None = None
    # The request id of the client request this exchange is a call made for (an image agent's
    # vision call); None: a client request.
    parent_id: str | None = None
    # Response headers observers want to add before the response starts (cost, budget warnings...).
    response_headers: dict[str, str] = field(default_factory=dict)
    # -- issue 17: what the response writer awaits before its last bytes (``EndObserver``s; None: none)
    before_end: Callable[[], Awaitable[None]] | None = None
    # The ledger row went in before the response ended (``store.durable``): not again at the end.
    ledgered: bool = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class UsageHook(Protocol):
    """Called by dispatch as soon as a provider call's usage is known, before the response is sent
    (non-streamed), so it can price it and add ``response_headers``. Must be fast and not block."""

    def __call__(self, exchange: Exchange) -> None: ...


class Observer(Protocol):
    """Told about every finished exchange. Must not block: queue any I/O for a background task."""

    def on_exchange(self, exchange: Exchange) -> None: ...


@runtime_checkable
class EndObserver(Protocol):
    """An ``Observer`` that must have done its part before the client gets the end of the response
    (``store.durable``: the ledger row committed first). Awaited once per exchange, just before the
    last bytes go (a stream's end, or a whole answer's send); bounded by the observer itself."""

    async def before_end(self, exchange: Exchange) -> None: ...


class Admission(Protocol):
    """Decides, once routed and before any call, whether a request may go on. ``request`` is as
    prepared for ``route`` (the ``provider,model`` tried first: ``max_tokens`` clamped to its limit).
    Returns None to go on as routed, or a ``provider,model`` route to use instead (a downgrade);
    raises a ``CCRouterError`` to refuse."""

    async def admit(
        self,
        exchange: Exchange,
        request: MessagesRequest,
        route: str,
        alternatives: Callable[[], Sequence[tuple[str, int]]] | None = None,
    ) -> str | None:
        """``alternatives()``: the other ``(provider,model, max_tokens as clamped there)`` the cascade
        may fail over to, so that a worst case can be priced wherever the request ends up (a call,
        made only by a policy that prices the request)."""
        ...

    async def settle(self, exchange: Exchange) -> None:
        """The exchange's calls ended (served, failed or refused): whatever ``admit`` held for it
        becomes its actual cost from ``exchange.usage`` (nothing when it has none)."""
        ...


class PreDispatch(Protocol):
    """May answer a routed request without calling any provider (a cache, a guardrail, a mock);
    ``request`` is as fitted to the route that would serve it (``exchange.provider``/``model``).
    Returns None to let the providers answer, or raises a ``CCRouterError`` to refuse the request.
    Its answer is not a provider call: no live state (windows, latency, breakers) sees it; the ledger
    records it with the route as decided and the answer's ``usage``. A streamed request gets the
    answer as a stream (``ccrouter.predispatch``); ``x-ccrouter-answered-by`` names ``name``."""

    @property
    def name(self) -> str: ...

    async def answer(self, request: MessagesRequest, exchange: Exchange) -> MessagesResponse | None: ...


class ResponseHook(Protocol):
    """Called as an API response is about to start (its head not yet sent), streamed or not, errors
    too: may add to ``headers``. Must be fast and not block."""

    def __call__(self, exchange: Exchange, headers: MutableMapping[str, str]) -> None: ...


class ModelCalls(Protocol):
    """Calls a ``TargetStep`` may make on a client request's behalf."""

    async def call(
        self, request: MessagesRequest, route: str, *, scenario: str, parent: Exchange
    ) -> MessagesResponse:
        """``request`` (not streamed) sent to ``route`` (``provider,model``) through the usual
        machinery: the fallbacks of ``scenario`` (only models that can take the request's images),
        limits, breakers, budgets. Recorded as an exchange of its own (a ledger row under
        ``scenario``, with the parent's session, key and user). Raises the ``CCRouterError`` that
        ended it."""
        ...


class TargetStep(Protocol):
    """Rewrites a routed client request for the target about to serve it (each candidate of the
    cascade, before its call). ``wants`` is asked first and must be cheap; ``prepare`` may call
    models through ``calls``. Must not mutate ``request`` (copy-on-write, ``ccrouter.messages``)."""

    @property
    def name(self) -> str: ...

    def wants(self, request: MessagesRequest, info: ModelInfo) -> bool: ...

    async def prepare(
        self, request: MessagesRequest, exchange: Exchange, calls: ModelCalls
    ) -> MessagesRequest: ...
