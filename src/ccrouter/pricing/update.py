"""What ``ccrouter prices update FILE`` installs: a ccrouter price table as given, or LiteLLM's list
(``model_prices_and_context_window.json``) converted to one (``ccrouter.pricing.litellm``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from ccrouter.errors import ConfigError
from ccrouter.pricing.litellm import Conversion, convert, looks_like_litellm
from ccrouter.pricing.table import PriceTable, read_price_text

__all__ = ["PriceUpdate", "read_update"]

_SHAPES = (
    "expected ccrouter's price table (a mapping with a 'models' mapping, as the shipped prices.yaml) "
    "or LiteLLM's model_prices_and_context_window.json (an object of models)"
)


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """A checked table and the text to install; ``conversion`` is set when the file was LiteLLM's."""

    table: PriceTable
    text: str
    conversion: Conversion | None = None


def read_update(path: Path, *, today: str) -> PriceUpdate:
    """Read, detect, convert (LiteLLM's format) and check ``path``; ConfigError names any problem."""
    text = read_price_text(path)
    data = _parse(text, path)
    if looks_like_litellm(data):
        conversion = convert(data, origin=path.name, updated=today)
        if conversion.kept == 0:
            raise ConfigError(f"{path}: LiteLLM's format, but no text model with per-token prices in it")
        table = PriceTable.from_mapping(conversion.table, source=str(path))
        return PriceUpdate(table, _dump(conversion, path.name), conversion)
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f"{path}: {_SHAPES}")
    return PriceUpdate(PriceTable.from_mapping(data, source=str(path)), text)


def _parse(text: str, path: Path) -> Any:
    if text.lstrip().startswith("{"):
        # JSON: LiteLLM's list, or our table written as JSON. orjson refuses NaN and Infinity.
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: neither JSON nor YAML ({exc})") from None


def _dump(conversion: Conversion, origin: str) -> str:
    header = (
        f"# Converted by `ccrouter prices update` from LiteLLM's {origin} on {conversion.table['updated']}:\n"
        f"# {conversion.summary()}. Prices in USD per million tokens.\n"
    )
    table = conversion.table
    head = yaml.safe_dump(
        {"updated": table["updated"], "sources": table["sources"]}, sort_keys=False, width=200
    )
    # default_flow_style=None: each model's prices on one line, as in the shipped table.
    models = yaml.safe_dump({"models": table["models"]}, sort_keys=False, default_flow_style=None, width=200)
    return header + head + models
