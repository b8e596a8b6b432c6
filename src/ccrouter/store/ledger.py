"""The ledger's ``Observer``: one row per finished exchange, queued for the store's writer."""

from __future__ import annotations

import asyncio
import logging

from ccrouter.exchange import Exchange
from ccrouter.messages import MessagesRequest, Usage
from ccrouter.pricing.hook import CostHook
from ccrouter.store.base import Store
from ccrouter.store.records import UsageRecord, record_from_exchange
from ccrouter.tokens import TokenCounter

__all__ = ["DurableLedgerObserver", "InputEstimates", "LedgerObserver"]

log = logging.getLogger("ccrouter.ledger")

_MAX_PENDING = 10_000
_CHARS_PER_TOKEN = 4


class InputEstimates:
    """What admission saw of each request (its input-token count when budgets needed it, else the
    request itself, counted only if the provider reports no usage), kept until the exchange's row is
    written. Bounded: when full, the oldest entry (a request that never finished) is dropped."""

    def __init__(self, limit: int = _MAX_PENDING) -> None:
        self._limit = limit
        # By (request id, start time): clients choose request ids, so the id alone may repeat.
        self._items: dict[tuple[str, float], int | MessagesRequest] = {}

    def put(self, exchange: Exchange, seen: int | MessagesRequest) -> None:
        if len(self._items) >= self._limit:
            del self._items[next(iter(self._items))]
        self._items[(exchange.request_id, exchange.started_at)] = seen

    def pop(self, exchange: Exchange) -> int | MessagesRequest | None:
        return self._items.pop((exchange.request_id, exchange.started_at), None)

    def __len__(self) -> int:
        return len(self._items)


class LedgerObserver:
    """Prices the exchange if dispatch has not, fills in estimated usage, and queues its row."""

    def __init__(
        self, store: Store, cost: CostHook, counter: TokenCounter, estimates: InputEstimates | None = None
    ) -> None:
        self._store = store
        self._cost = cost
        self._counter = counter
        self._estimates = estimates if estimates is not None else InputEstimates()

    @property
    def estimates(self) -> InputEstimates:
        return self._estimates

    def on_exchange(self, exchange: Exchange) -> None:
        if exchange.ledgered:  # committed before the response ended (``DurableLedgerObserver``)
            return
        self._store.add(self._row(exchange))

    def _row(self, exchange: Exchange) -> UsageRecord:
        seen = self._estimates.pop(exchange)
        # Only a provider's answer is billed, and only endpoints that generate dispatch to a provider
        # (which names it on the exchange): no list of endpoints is needed here. A pre-dispatch
        # answer's usage is as it gave it.
        if (
            exchange.status < 400
            and exchange.provider is not None
            and exchange.answered_by is None
            and _empty(exchange.usage)
        ):
            # The provider reported nothing: bill what we count, and say it is an estimate. Rare, so
            # the count happens here rather than on every request. The response text is not kept:
            # output is estimated from its length (about four characters a token).
            tokens = self._counter.count_request(seen) if isinstance(seen, MessagesRequest) else seen
            output = -(-exchange.output_chars // _CHARS_PER_TOKEN)
            exchange.usage = Usage(input_tokens=tokens or 0, output_tokens=output)
            exchange.usage_estimated = True
        picos = self._cost.picos(exchange) if exchange.usage is not None else 0
        return record_from_exchange(exchange, picos)


class DurableLedgerObserver(LedgerObserver):
    """``store.durable``: the row is queued and committed before the response's last bytes go (the
    writer commits what is queued at once, so concurrent requests share one commit). Past
    ``timeout`` seconds the response ends anyway and the row is committed when the ledger can."""

    def __init__(
        self,
        store: Store,
        cost: CostHook,
        counter: TokenCounter,
        estimates: InputEstimates | None = None,
        *,
        timeout: float,
    ) -> None:
        super().__init__(store, cost, counter, estimates)
        self._timeout = timeout

    async def before_end(self, exchange: Exchange) -> None:
        if exchange.ledgered:
            return
        exchange.duration_s = exchange.elapsed()
        if not exchange.status:
            exchange.status = 200  # a stream's head went out as 200
        self._store.add(self._row(exchange))
        exchange.ledgered = True
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.flush()
        except TimeoutError:
            log.warning(
                "ledger: row %s not committed within %gs (store.durable_timeout_s); the response ends",
                exchange.request_id,
                self._timeout,
            )


def _empty(usage: Usage | None) -> bool:
    return usage is None or (
        usage.input_tokens == 0
        and usage.output_tokens == 0
        and usage.cache_read_input_tokens == 0
        and usage.cache_creation_input_tokens == 0
    )
