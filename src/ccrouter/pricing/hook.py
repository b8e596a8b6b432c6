"""Prices each exchange as soon as its usage is known, and tells the client in a header."""

from __future__ import annotations

from collections.abc import Mapping

from ccrouter.config import ProviderConfig, Settings
from ccrouter.exchange import Exchange
from ccrouter.pricing.table import PICOS_PER_USD, PriceTable, cost_picos, format_usd

__all__ = ["COST_HEADER", "CostHook"]

COST_HEADER = "x-ccrouter-cost-usd"


class CostHook:
    """A ``UsageHook``: sets ``exchange.cost_usd`` and the ``x-ccrouter-cost-usd`` header.

    Streamed responses send their headers before the usage is known, so they carry no cost header;
    the cost is still in the ledger, the logs and the metrics.
    """

    def __init__(self, settings: Settings, table: PriceTable) -> None:
        self._table = table
        self._providers: Mapping[str, ProviderConfig] = {p.name: p for p in settings.providers}

    def picos(self, exchange: Exchange) -> int | None:
        """The exchange's cost in pico-dollars, or None when its model has no known price."""
        if exchange.usage is None or exchange.provider is None or exchange.model is None:
            return None
        provider = self._providers.get(exchange.provider)
        price = None if provider is None else self._table.price(provider, exchange.model)
        return None if price is None else cost_picos(exchange.usage, price)

    def __call__(self, exchange: Exchange) -> None:
        picos = self.picos(exchange)
        if picos is None:
            return
        exchange.cost_usd = picos / PICOS_PER_USD
        exchange.response_headers[COST_HEADER] = format_usd(picos)
