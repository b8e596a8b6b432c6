"""GET /api/budgets: every budget's use in its current period (role viewer; the dashboard's Costs page).

One row per budget and entity: the configured budgets (``budgets:``; a per-key / per-user budget
without ``match`` has a row for each entity that spent in the period, or one ``<scope>:*`` row at
zero when none did) and the managed keys' own budgets. Each row names its scope, limit, period,
the spend of the current window (ledger plus reservations in flight), the fraction used, when the
window resets and what happens at the limit. The sums are ``BudgetAdmission.budget_statuses``, the
same that the metrics and alerts read.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from ccrouter.api.state import services_of
from ccrouter.budgets import period_bounds
from ccrouter.config import BudgetRule
from ccrouter.status import BudgetStatus

__all__ = ["at_limit", "routes"]


def at_limit(action: str, downgrade_to: str | None) -> str:
    """What a request meets once the budget is spent, in words."""
    if action == "block":
        return "requests are refused (403) until the period resets"
    if action == "downgrade":
        return f"requests are routed to {downgrade_to}"
    return "requests pass with a warning header and an alert"


def _row(status: BudgetStatus, source: str, downgrade_to: str | None) -> dict[str, Any]:
    since = period_bounds(status.period, status.resets_at - 1)[0]
    return {
        "name": status.name,
        "source": source,
        "scope": status.scope,
        "period": status.period,
        "since": since,
        "resets_at": status.resets_at,
        "limit_usd": status.limit_usd,
        "used_usd": round(status.used_usd, 6),
        "use": round(status.used_usd / status.limit_usd, 4) if status.limit_usd else None,
        "action": status.action,
        "downgrade_to": downgrade_to,
        "at_limit": at_limit(status.action, downgrade_to),
    }


def _idle(rule: BudgetRule, now: float) -> BudgetStatus:
    """A configured budget that nothing spent under in this period."""
    scope = "global" if rule.scope == "global" else f"{rule.scope}:{rule.match or '*'}"
    resets_at = period_bounds(rule.period, now)[1]
    return BudgetStatus(rule.name, scope, rule.period, rule.limit_usd, 0.0, rule.action, resets_at)


async def budgets(request: web.Request) -> web.Response:
    services = services_of(request)
    now = time.time()
    await services.ledger.flush()  # the spend includes every request finished before the call
    statuses = await services.budgets.budget_statuses()
    rules = {rule.name: rule for rule in services.settings.budgets}
    seen = {status.name for status in statuses}
    rows = []
    for status in statuses:
        rule = rules.get(status.name)
        rows.append(_row(status, "config" if rule else "key", rule.downgrade_to if rule else None))
    rows += [
        _row(_idle(rule, now), "config", rule.downgrade_to)
        for rule in rules.values()
        if rule.name not in seen
    ]
    # The managed keys' own budgets that nothing spent under yet (budget_statuses lists the others).
    for record in await services.ledger.key_list():
        name = f"key:{record.id}"
        if record.budget_usd is None or record.status(now) != "active" or name in seen:
            continue
        rule = BudgetRule(
            name=name,
            scope="key",
            match=record.id,
            period=record.budget_period or "monthly",
            limit_usd=record.budget_usd,
        )
        rows.append(_row(_idle(rule, now), "key", None))
    rows.sort(key=lambda row: (row["source"] != "config", row["name"], row["scope"]))
    return web.Response(body=orjson.dumps({"budgets": rows}), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.get("/api/budgets", budgets)]
