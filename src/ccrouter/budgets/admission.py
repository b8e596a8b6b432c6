"""Budgets: daily / weekly / monthly spending limits per client key, user, team, profile, project and
global; a managed key's own budget (``budget_usd`` per ``budget_period``) is a ``block`` budget of
that key, named ``key:<id>``.

Once a request is routed and before any provider call, ``BudgetAdmission.admit`` asks the shared store,
in one atomic step, how much each applicable budget has spent (ledger rows plus reservations of
requests in flight on any instance) and reserves the request's worst case at the price of the model
it goes to first: its input tokens (at the dearer of the input and cache-write prices) plus
``max_tokens`` of output, as clamped to that model's output limit. A ``block`` budget that the
reservation would cross refuses the request; a ``downgrade`` budget routes it to its cheaper model; a
``warn`` budget lets it through with a header, a log line and the alert hooks. When the exchange ends,
its ledger row (the actual cost; nothing for a failed call) replaces the reservation in the same
transaction, so the sums never count a request twice or not at all.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ccrouter.budgets.periods import period_bounds
from ccrouter.config import BudgetPeriod, BudgetRule, Settings
from ccrouter.errors import PermissionDeniedError
from ccrouter.exchange import Exchange
from ccrouter.messages import MessagesRequest, Usage
from ccrouter.pricing.table import PICOS_PER_USD, PriceTable, cost_picos, format_usd
from ccrouter.status import BudgetStatus
from ccrouter.store.base import Store, StoreUnavailableError, crosses
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

    async def admit(
        self,
        exchange: Exchange,
        request: MessagesRequest,
        route: str | None = None,
        alternatives: Callable[[], Sequence[tuple[str, int]]] | None = None,
    ) -> str | None:
        """``route``: the ``provider,model`` the request goes to first (None: ``router.default``);
        ``request`` as prepared for it, so ``max_tokens`` is within that model's output limit.
        ``alternatives()``: where else the cascade may serve it, with ``max_tokens`` as clamped there;
        the reservation is the dearest of those worst cases (a failover to a dearer fallback must
        not spend past the budget by more than one request)."""
        applied = self._applicable(exchange, exchange.started_at)
        if not applied:
            self._estimates.put(exchange, request)  # counted later, only if the provider reports nothing
            return None
        tokens = await self._counter.count_request_async(request)
        self._estimates.put(exchange, tokens)
        first = route or self._settings.router.default
        amount = max(
            self._worst_case(tokens, max_tokens, where)
            for where, max_tokens in ((first, request.max_tokens), *(alternatives() if alternatives else ()))
        )
        used, admitted = await self._store.reserve(
            reservation_token(exchange.request_id, exchange.started_at),
            exchange.started_at,
            [a.window for a in applied],
            amount,
            client_key_id=exchange.client_key_id,
            user_name=exchange.user,
            profile=exchange.profile,
            project=exchange.project,
            team=exchange.team,
        )
        downgrade: str | None = None
        for item, spent in zip(applied, used, strict=True):
            if not crosses(item.window, spent, amount):
                continue
            status = self._status(item, spent)
            self._alert(status)
            if item.rule.action == "block" and not admitted:
                raise BudgetExceededError(_blocked_message(item, spent))
            if item.rule.action == "downgrade" and downgrade is None:
                downgrade = item.rule.downgrade_to
                exchange.response_headers[WARNING_HEADER] = (
                    f"{item.rule.name}: spent, downgraded to {downgrade}"
                )
            elif item.rule.action == "warn":
                exchange.response_headers.setdefault(
                    WARNING_HEADER,
                    f"{item.rule.name}: ${format_usd(spent)} of ${item.rule.limit_usd:g} {item.rule.period}",
                )
        return downgrade

    async def settle(self, exchange: Exchange) -> None:
        """Bring the exchange's reservation down to what it cost as soon as its calls end (nothing
        when it failed), rather than when the ledger writer next commits: a client's next request
        must not be refused for a reservation that is already spent or void."""
        if not self._applicable(exchange, exchange.started_at):
            return
        actual = 0
        if exchange.usage is not None and exchange.provider is not None and exchange.model is not None:
            provider = self._settings.provider(exchange.provider)
            price = None if provider is None else self._prices.price(provider, exchange.model)
            actual = 0 if price is None else cost_picos(exchange.usage, price)
        try:
            await self._store.settle(reservation_token(exchange.request_id, exchange.started_at), actual)
        except StoreUnavailableError as exc:
            # The answer is already good; the ledger row settles the reservation when it is written.
            log.warning("budget reservation not settled early: %s", exc.message)

    def _applicable(self, exchange: Exchange, now: float) -> list[_Applied]:
        out = []
        for rule in self._rules_for(exchange):
            since, resets_at = period_bounds(rule.period, now)
            if rule.scope == "global":
                window, scope = Window(since, _limit_picos(rule), rule.action == "block"), "global"
            else:
                entity = _entity(exchange, rule.scope)
                if entity is None or rule.match not in (None, entity):
                    continue
                window = _window(rule, since, entity, blocking=rule.action == "block")
                scope = f"{rule.scope}:{entity}"
            out.append(_Applied(rule, window, scope, resets_at))
        return out

    def _rules_for(self, exchange: Exchange) -> Sequence[BudgetRule]:
        """The configured budgets, and the principal's own when it has one."""
        principal = exchange.principal
        if principal is None or principal.budget_usd is None or exchange.client_key_id is None:
            return self._rules
        own = _key_rule(exchange.client_key_id, principal.budget_usd, principal.budget_period or "monthly")
        return [*self._rules, own]

    def _worst_case(self, tokens: int, max_tokens: int, route: str) -> int:
        """The most the request can cost on ``route``: every input token at the dearer of the input
        and cache-write prices (a prompt may be written to the cache), and all of ``max_tokens``."""
        provider_name, _, model = route.partition(",")
        provider = self._settings.provider(provider_name.strip())
        price = None if provider is None else self._prices.price(provider, model.strip())
        if price is None:
            return 0
        worst = dataclasses.replace(price, input=max(price.input, price.cache_write))
        return cost_picos(Usage(input_tokens=tokens, output_tokens=max_tokens), worst)

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
                window = _window(rule, since, rule.match, blocking=False)
                spent_by = {rule.match or "": (await self._store.window_sums([window], now))[0]}
            for name, spent in sorted(spent_by.items()):
                scope = "global" if rule.scope == "global" else f"{rule.scope}:{name}"
                item = _Applied(rule, Window(since, _limit_picos(rule), False), scope, resets_at)
                out.append(self._status(item, spent))
        return out + await self._key_statuses(now)

    async def _key_statuses(self, now: float) -> list[BudgetStatus]:
        """The managed keys' own budgets, for the keys that spent something in their period."""
        out: list[BudgetStatus] = []
        spent_since: dict[float, dict[str, int]] = {}
        for record in await self._store.key_list():
            if record.budget_usd is None or record.revoked_at is not None:
                continue
            rule = _key_rule(record.id, record.budget_usd, record.budget_period or "monthly")
            since, resets_at = period_bounds(rule.period, now)
            if since not in spent_since:
                spent_since[since] = await self._store.spend_by("key", since)
            spent = spent_since[since].get(record.id, 0)
            if spent > 0:
                item = _Applied(rule, Window(since, _limit_picos(rule), False), rule.name, resets_at)
                out.append(self._status(item, spent))
        return out


def _key_rule(key_id: str, limit_usd: float, period: BudgetPeriod) -> BudgetRule:
    """A managed key's own budget as a ``block`` rule of that key."""
    return BudgetRule(name=f"key:{key_id}", scope="key", match=key_id, period=period, limit_usd=limit_usd)


def _entity(exchange: Exchange, scope: str) -> str | None:
    """The key id, user, team, profile or project a ``scope`` budget counts ``exchange`` under."""
    return {
        "key": exchange.client_key_id,
        "user": exchange.user,
        "team": exchange.team,
        "profile": exchange.profile,
        "project": exchange.project,
    }[scope]


def _window(rule: BudgetRule, since: float, entity: str | None, *, blocking: bool) -> Window:
    """``rule``'s window over one entity of its scope (None with scope ``global``: everything)."""
    return Window(
        since,
        _limit_picos(rule),
        blocking,
        client_key_id=entity if rule.scope == "key" else None,
        user_name=entity if rule.scope == "user" else None,
        profile=entity if rule.scope == "profile" else None,
        project=entity if rule.scope == "project" else None,
        team=entity if rule.scope == "team" else None,
    )


def _blocked_message(item: _Applied, spent: int) -> str:
    reset = datetime.fromtimestamp(item.resets_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"ccrouter budget {item.rule.name!r} ({item.scope}, {item.rule.period}) is spent: "
        f"${format_usd(spent)} of ${item.rule.limit_usd:g}. It resets at {reset}."
    )
