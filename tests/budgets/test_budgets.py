"""Budget periods, rule validation, and the admission's decisions and statuses over a real SQLite ledger."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ccrouter.budgets import BudgetAdmission, BudgetExceededError, period_bounds
from ccrouter.codecs.anthropic import codec
from ccrouter.config import BudgetRule, Settings
from ccrouter.exchange import Exchange
from ccrouter.pricing import PriceTable
from ccrouter.status import BudgetStatus
from ccrouter.store import InputEstimates, UsageRecord
from ccrouter.store.sqlite import SQLiteStore
from ccrouter.tokens import TokenCounter


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_periods() -> None:
    now = utc(2026, 12, 31, 23, 59)  # a Thursday
    assert period_bounds("daily", now) == (utc(2026, 12, 31), utc(2027, 1, 1))
    assert period_bounds("weekly", now) == (utc(2026, 12, 28), utc(2027, 1, 4))
    assert period_bounds("monthly", now) == (utc(2026, 12, 1), utc(2027, 1, 1))
    assert period_bounds("monthly", utc(2027, 2, 10)) == (utc(2027, 2, 1), utc(2027, 3, 1))


def test_rules_are_checked() -> None:
    with pytest.raises(ValidationError, match="downgrade_to"):
        BudgetRule(name="x", period="daily", limit_usd=1, action="downgrade")
    with pytest.raises(ValidationError, match="global budget takes no match"):
        BudgetRule(name="x", period="daily", limit_usd=1, match="bob")
    with pytest.raises(ValidationError):
        BudgetRule(name="x", period="yearly", limit_usd=1)  # type: ignore[arg-type]


def settings(budgets: list[dict[str, Any]]) -> Settings:
    return Settings.model_validate(
        {
            "providers": [{"name": "p", "type": "anthropic", "models": ["m"]}],
            "router": {"default": "p,m"},
            "prices": {"m": {"input": 1000000, "output": 0}},  # one dollar per input token
            "budgets": budgets,
        }
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    ledger = SQLiteStore(tmp_path / "l.db", flush_interval_s=0.01)
    await ledger.open()
    yield ledger
    await ledger.close()


def request_with_tokens() -> tuple[Any, int]:
    request = codec.decode_request(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )
    return request, TokenCounter().count_request(request)


async def test_block_names_the_budget_and_its_reset(store: SQLiteStore) -> None:
    request, tokens = request_with_tokens()
    config = settings([{"name": "keys", "scope": "key", "period": "daily", "limit_usd": tokens * 2}])
    alerts: list[BudgetStatus] = []
    admission = BudgetAdmission(
        config,
        store,
        TokenCounter(),
        PriceTable.load(config.prices),
        InputEstimates(),
        alerts=[alerts.append],
    )
    now = time.time()
    for n in range(2):
        exchange = Exchange(request_id=f"r{n}", endpoint="messages", client_key_id="k1", started_at=now)
        assert await admission.admit(exchange, request) is None
    other_key = Exchange(request_id="r-other", endpoint="messages", client_key_id="k2", started_at=now)
    assert await admission.admit(other_key, request) is None  # each key has its own limit
    no_key = Exchange(request_id="r-none", endpoint="messages", started_at=now)
    assert await admission.admit(no_key, request) is None  # a per-key budget needs a key
    with pytest.raises(BudgetExceededError) as caught:
        await admission.admit(Exchange(request_id="r3", endpoint="messages", client_key_id="k1"), request)
    assert caught.value.status == 403
    reset = datetime.fromtimestamp(period_bounds("daily", now)[1], UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert caught.value.message.endswith(f"It resets at {reset}.")
    assert "'keys' (key:k1, daily)" in caught.value.message
    assert [(a.name, a.scope, a.action) for a in alerts] == [("keys", "key:k1", "block")]


async def test_statuses_read_the_ledger(store: SQLiteStore) -> None:
    config = settings(
        [
            {"name": "all", "period": "monthly", "limit_usd": 100, "action": "warn"},
            {"name": "per-user", "scope": "user", "period": "weekly", "limit_usd": 5, "action": "warn"},
            {
                "name": "bob",
                "scope": "user",
                "match": "bob",
                "period": "daily",
                "limit_usd": 2,
                "action": "warn",
            },
        ]
    )
    now = time.time()
    for user, picos in (("bob", 1_500_000_000_000), ("eve", 250_000_000_000)):
        store.add(
            UsageRecord(
                ts=now, request_id=user, endpoint="messages", status=200, user_name=user, cost_picos=picos
            )
        )
    await store.flush()
    admission = BudgetAdmission(
        config, store, TokenCounter(), PriceTable.load(config.prices), InputEstimates()
    )
    statuses = await admission.budget_statuses()
    assert [(s.name, s.scope, s.used_usd, s.limit_usd) for s in statuses] == [
        ("all", "global", 1.75, 100),
        ("per-user", "user:bob", 1.5, 5),
        ("per-user", "user:eve", 0.25, 5),
        ("bob", "user:bob", 1.5, 2),
    ]
    assert statuses[3].resets_at == period_bounds("daily", now)[1]
