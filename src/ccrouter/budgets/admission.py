"""Budgets: daily / weekly / monthly spending limits per client key, per user and global.

Before a request is routed, ``BudgetAdmission.admit`` asks the shared store, in one atomic step, how
much each applicable budget has spent (ledger rows plus reservations of requests in flight on any
instance) and reserves the request's input cost. A ``block`` budget that the request would cross
refuses it; a ``downgrade`` budget routes it to its cheaper model; a ``warn`` budget lets it through
with a header, a log line and the alert hooks. The reservation is settled when the ledger row is
written. Output tokens are unknown in advance, so a budget can be overrun by at most the output of
the requests in flight when it fills.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ccrouter.budgets.periods import period_bounds
from ccrouter.config import BudgetRule, Settings
from ccrouter.errors import PermissionDeniedError
from ccrouter.exchange import Exchange
from ccrouter.messages import MessagesRequest, Usage
from ccrouter.pricing.table import PICOS_PER_USD, PriceTable, cost_picos, format_usd
from ccrouter.status import BudgetStatus
from ccrouter.store.base import Store, crosses
from ccrouter.store.ledger import InputEstimates
from ccrouter.store.records import Window, reservation_token
from ccrouter.tokens import TokenCounter

__all__ = ["WARNING_HEADER", "BudgetAdmission", "BudgetAlert", "BudgetExceededError"]

log = logging.getLogger("ccrouter.budgets")

WARNING_HEADER = "x-ccrouter-budget-warning"
BudgetAlert = Callable[[BudgetStatus], None]


class BudgetExceededError(PermissionDeniedError):
    """A ``block`` budget is spent. 403 ``permission_error``, not 429: Claude Code and the SDKs retry a
    429 with backoff, which cannot help until the period resets; a 403 is shown to the user at once."""


@dataclass(frozen=True, slots=True)
class _Applied:
    rule: BudgetRule
    window: Window
    scope: str
    resets_at: float


def _limit_picos(rule: BudgetRule) -> int:
    return round(rule.limit_usd * PICOS_PER_USD)


class BudgetAdmission:
    """The ``Admission`` for budgets, and their ``BudgetStatusSource``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        counter: TokenCounter,
        prices: PriceTable,
        estimates: InputEstimates,
        *,
        alerts: Sequence[BudgetAlert] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._rules = settings.budgets
        self._store = store
        self._counter = counter
        self._prices = prices
        self._estimates = estimates
        self.alerts = list(alerts)
        self._clock = clock

    async def admit(self, exchange: Exchange, request: MessagesRequest) -> str | None:
        applied = self._applicable(exchange, exchange.started_at)
        if not applied:
            self._estimates.put(exchange, request)  # counted later, only if the provider reports nothing
            return None
        tokens = await self._counter.count_request_async(request)
        self._estimates.put(exchange, tokens)
        amount = self._input_cost(tokens)
        used, admitted = await self._store.reserve(
            reservation_token(exchange.request_id, exchange.started_at),
            exchange.started_at,
            [a.window for a in applied],
            amount,
            client_key_id=exchange.client_key_id,
            user_name=exchange.user,
        )
        route: str | None = None
        for item, spent in zip(applied, used, strict=True):
            if not crosses(item.window, spent, amount):
                continue
            status = self._status(item, spent)
            self._alert(status)
            if item.rule.action == "block" and not admitted:
                raise BudgetExceededError(_blocked_message(item, spent))
            if item.rule.action == "downgrade" and route is None:
                route = item.rule.downgrade_to
                exchange.response_headers[WARNING_HEADER] = f"{item.rule.name}: spent, downgraded to {route}"
            elif item.rule.action == "warn":
                exchange.response_headers.setdefault(
                    WARNING_HEADER,
                    f"{item.rule.name}: ${format_usd(spent)} of ${item.rule.limit_usd:g} {item.rule.period}",
                )
        return route

    def _applicable(self, exchange: Exchange, now: float) -> list[_Applied]:
        out = []
        for rule in self._rules:
            key = user = None
            if rule.scope == "key":
                if exchange.client_key_id is None or rule.match not in (None, exchange.client_key_id):
                    continue
                key, scope = exchange.client_key_id, f"key:{exchange.client_key_id}"
            elif rule.scope == "user":
                if exchange.user is None or rule.match not in (None, exchange.user):
                    continue
                user, scope = exchange.user, f"user:{exchange.user}"
            else:
                scope = "global"
            since, resets_at = period_bounds(rule.period, now)
            window = Window(since, _limit_picos(rule), rule.action == "block", key, user)
            out.append(_Applied(rule, window, scope, resets_at))
        return out

    def _input_cost(self, tokens: int) -> int:
        """The request's input at the default route's price: what it costs at least, before routing."""
        provider_name, _, model = self._settings.router.default.partition(",")
        provider = self._settings.provider(provider_name.strip())
        price = None if provider is None else self._prices.price(provider, model.strip())
        return 0 if price is None else cost_picos(Usage(input_tokens=tokens), price)

    def _status(self, item: _Applied, spent: int) -> BudgetStatus:
        return BudgetStatus(
            name=item.rule.name,
            scope=item.scope,
            period=item.rule.period,
            limit_usd=item.rule.limit_usd,
            used_usd=spent / PICOS_PER_USD,
            action=item.rule.action,
            resets_at=item.resets_at,
        )

    def _alert(self, status: BudgetStatus) -> None:
        log.warning(
            "budget %s (%s, %s) is spent: $%.4f of $%g; action %s",
            status.name,
            status.scope,
            status.period,
            status.used_usd,
            status.limit_usd,
            status.action,
        )
        for alert in self.alerts:
            alert(status)

    async def budget_statuses(self) -> list[BudgetStatus]:
        """Every budget's use in its current period (per key / user for the per-entity ones)."""
        now = self._clock()
        out: list[BudgetStatus] = []
        for rule in self._rules:
            since, resets_at = period_bounds(rule.period, now)
            entity = rule.scope != "global" and rule.match is None
            if entity:
                spent_by = await self._store.spend_by(rule.scope, since)
            else:
                key = rule.match if rule.scope == "key" else None
                user = rule.match if rule.scope == "user" else None
                window = Window(since, _limit_picos(rule), False, key, user)
                spent_by = {rule.match or "": (await self._store.window_sums([window], now))[0]}
            for name, spent in sorted(spent_by.items()):
                scope = "global" if rule.scope == "global" else f"{rule.scope}:{name}"
                item = _Applied(rule, Window(since, _limit_picos(rule), False), scope, resets_at)
                out.append(self._status(item, spent))
        return out


def _blocked_message(item: _Applied, spent: int) -> str:
    reset = datetime.fromtimestamp(item.resets_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"ccrouter budget {item.rule.name!r} ({item.scope}, {item.rule.period}) is spent: "
        f"${format_usd(spent)} of ${item.rule.limit_usd:g}. It resets at {reset}."
    )
