"""Price table and cost computation: what a request cost, from its real usage.

``PriceTable.load()`` reads the shipped ``data/prices.yaml`` (or the one ``ccrouter prices update``
installed in the config folder) and applies the config's ``prices:`` overrides; ``cost_picos`` is exact
integer arithmetic (pico-dollars, 1e-12 USD), so ledger sums never drift.
"""

from ccrouter.pricing.hook import CostHook
from ccrouter.pricing.table import (
    PICOS_PER_USD,
    ModelPrice,
    PriceTable,
    cost,
    cost_picos,
    format_usd,
    load_price_file,
)

__all__ = [
    "PICOS_PER_USD",
    "CostHook",
    "ModelPrice",
    "PriceTable",
    "cost",
    "cost_picos",
    "format_usd",
    "load_price_file",
]
