"""What the statusline shows of each Claude Code session: its last served request and its spend today.

``SessionLog`` keeps one small summary per session id, least recently used first, at most
``max_sessions`` (a few hundred bytes each). ``SessionObserver`` (a built-in observer, registered
after the ledger's, which fills in estimated usage) records every finished exchange that names a
session. The log is carried across configuration reloads (``ccrouter.services``); it covers what this
process served since it started, and ``GET /api/sessions/{id}`` (``ccrouter.api.sessions``) adds what
the ledger holds from before (``baseline``). With ``serve --workers N`` each worker keeps its own log.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ccrouter.exchange import Exchange
from ccrouter.pricing.hook import CostHook
from ccrouter.statusline.state import day_start
from ccrouter.statusline.summary import MAX_PASSED_OVER, valid_session_id

__all__ = ["Baseline", "LastRequest", "SessionLog", "SessionObserver", "SessionSummary"]


@dataclass(frozen=True, slots=True)
class LastRequest:
    """The last request of a session that a provider (or a pre-dispatch answer) served."""

    ts: float
    provider: str
    model: str
    scenario: str | None
    status: int
    # Routes ("provider,model") passed over before the one that served: failed or skipped.
    passed_over: tuple[str, ...]
    output_tokens: int
    duration_s: float | None
    first_byte_s: float | None
    estimated: bool


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the ledger held for a session before this process started: its spend on day ``since``
    (local midnight) and its last served request."""

    since: float
    requests: int
    cost_picos: int
    unpriced: int
    last: LastRequest | None


@dataclass(slots=True)
class SessionSummary:
    since: float = 0.0
    requests: int = 0
    cost_picos: int = 0
    unpriced: int = 0
    last: LastRequest | None = None
    baseline: Baseline | None = None


class SessionLog:
    """Per-session summaries of what this process served, LRU-bounded."""

    def __init__(self, *, max_sessions: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._max = max_sessions
        self._items: OrderedDict[str, SessionSummary] = OrderedDict()
        self.clock = clock
        # Rows the ledger got before this moment are the baseline's; after it, this log's.
        self.started_at = clock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, session_id: str) -> SessionSummary | None:
        summary = self._items.get(session_id)
        if summary is not None:
            self._items.move_to_end(session_id)
        return summary

    def _entry(self, session_id: str) -> SessionSummary:
        summary = self._items.get(session_id)
        if summary is None:
            summary = self._items[session_id] = SessionSummary()
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(session_id)
        return summary

    def set_baseline(self, session_id: str, baseline: Baseline) -> SessionSummary:
        summary = self._entry(session_id)
        summary.baseline = baseline
        return summary

    def record(self, exchange: Exchange, cost_picos: int | None) -> None:
        session = exchange.session_id
        if session is None or not valid_session_id(session):
            return
        summary = self._entry(session)
        since = day_start(exchange.started_at)
        if since > summary.since:  # the first request of a (new) day
            summary.since, summary.requests, summary.cost_picos, summary.unpriced = since, 0, 0, 0
        if since == summary.since:  # not a request of yesterday that ended after midnight
            summary.requests += 1
            summary.cost_picos += cost_picos or 0
            if cost_picos is None and exchange.usage is not None:
                summary.unpriced += 1
        if exchange.status < 400 and exchange.provider is not None and exchange.model is not None:
            usage = exchange.usage
            summary.last = LastRequest(
                ts=exchange.started_at,
                provider=exchange.provider,
                model=exchange.model,
                scenario=exchange.scenario,
                status=exchange.status,
                passed_over=tuple(f.partition("=")[0] for f in exchange.fallbacks[:MAX_PASSED_OVER]),
                output_tokens=usage.output_tokens if usage is not None else 0,
                duration_s=exchange.duration_s,
                first_byte_s=exchange.first_byte_s,
                estimated=exchange.usage_estimated,
            )


class SessionObserver:
    """Records each finished exchange in the log, priced as its ledger row is."""

    __slots__ = ("_cost", "_log")

    def __init__(self, log: SessionLog, cost: CostHook) -> None:
        self._log = log
        self._cost = cost

    def on_exchange(self, exchange: Exchange) -> None:
        if exchange.session_id is None:
            return
        picos = self._cost.picos(exchange) if exchange.usage is not None else 0
        self._log.record(exchange, picos)
