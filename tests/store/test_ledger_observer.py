"""The ledger observer: exchange -> row, priced, usage estimated (and marked) when none was reported."""

from __future__ import annotations

from pathlib import Path

from ccrouter.codecs.anthropic import codec
from ccrouter.config import Settings
from ccrouter.exchange import Attempt, Exchange
from ccrouter.messages import Usage
from ccrouter.pricing import CostHook, PriceTable
from ccrouter.store import InputEstimates, LedgerObserver
from ccrouter.store.sqlite import SQLiteStore
from ccrouter.tokens import TokenCounter

SETTINGS = Settings.model_validate(
    {
        "providers": [{"name": "p", "type": "anthropic", "models": ["m"]}],
        "router": {"default": "p,m"},
        "prices": {"m": {"input": 2, "output": 8}},
    }
)


async def test_rows_are_priced_and_missing_usage_is_estimated(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    await store.open()
    counter = TokenCounter()
    estimates = InputEstimates()
    observer = LedgerObserver(store, CostHook(SETTINGS, PriceTable.load(SETTINGS.prices)), counter, estimates)
    request = codec.decode_request(
        {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}
    )

    silent = Exchange(
        request_id="a",
        endpoint="messages",
        provider="p",
        model="m",
        status=200,
        usage=Usage(),
        output_chars=41,
    )
    estimates.put(silent, request)
    observer.on_exchange(silent)
    reported = Exchange(
        request_id="b",
        endpoint="messages",
        provider="p",
        model="m",
        status=200,
        usage=Usage(input_tokens=1000, output_tokens=100),
        attempts=[Attempt("q", "x", error_type="overloaded_error", status=529), Attempt("p", "m")],
        client_key_id="k",
        user="u",
        team="platform",
        session_id="s",
        duration_s=0.25,
        first_byte_s=0.125,
    )
    observer.on_exchange(reported)
    failed = Exchange(request_id="c", endpoint="messages", provider="p", model="m", status=502)
    observer.on_exchange(failed)
    await store.close()
    assert len(estimates) == 0

    store = SQLiteStore(tmp_path / "l.db")
    await store.open()
    first, second, third = await store.records()
    await store.close()
    tokens = counter.count_request(request)
    # Output estimated from 41 characters at about four a token: 11 tokens.
    assert (first.estimated, first.input_tokens, first.output_tokens) == (True, tokens, 11)
    assert first.cost_picos == tokens * 2_000_000 + 11 * 8_000_000
    assert (second.estimated, second.cost_picos) == (False, 1000 * 2_000_000 + 100 * 8_000_000)
    assert (second.client_key_id, second.user_name, second.session_id) == ("k", "u", "s")
    assert (first.team, second.team) == (None, "platform")
    assert (second.latency_ms, second.ttfb_ms, second.attempts) == (250.0, 125.0, 2)
    assert second.fallbacks == '[{"provider":"q","model":"x","status":529,"error_type":"overloaded_error"}]'
    assert (third.estimated, third.input_tokens, third.cost_picos) == (False, 0, 0)


def test_estimates_stay_bounded() -> None:
    estimates = InputEstimates(limit=2)
    exchanges = [Exchange(request_id=f"r{n}", endpoint="messages") for n in range(3)]
    for n, exchange in enumerate(exchanges):
        estimates.put(exchange, n)
    assert len(estimates) == 2
    assert estimates.pop(exchanges[0]) is None  # the oldest made room
    assert estimates.pop(exchanges[2]) == 2
