"""The price table: per model, USD per million input / output / cache-read / cache-write tokens."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ccrouter.catalog import _candidates
from ccrouter.config import PriceOverride, ProviderConfig
from ccrouter.errors import ConfigError
from ccrouter.messages import Usage

__all__ = [
    "MAX_PRICE_FILE_BYTES",
    "PICOS_PER_USD",
    "PRICE_FILE_NAME",
    "ModelPrice",
    "PriceTable",
    "cost",
    "cost_picos",
    "format_usd",
    "load_price_file",
    "read_price_text",
]

PICOS_PER_USD = 10**12
PRICE_FILE_NAME = "prices.yaml"
# LiteLLM's whole list is under 2 MiB; a file this size is a mistake, not a table.
MAX_PRICE_FILE_BYTES = 32 * 2**20
# A price per million tokens times this is pico-dollars per token.
_PICOS_PER_TOKEN_PER_MTOK = Decimal(10**6)
_BOUNDARY = frozenset("-.:@_")
_FIELDS = ("input", "output", "cache_read", "cache_write")
# Models served from the user's own machine cost nothing.
_LOCAL_VENDORS = frozenset({"ollama"})


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. ``source`` says where the figure comes from."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    source: str = ""


FREE = ModelPrice(Decimal(0), Decimal(0), Decimal(0), Decimal(0), "local")


def cost_picos(usage: Usage, price: ModelPrice) -> int:
    """Exact cost of ``usage`` in pico-dollars (1e-12 USD), rounded half-even to a whole pico."""
    total = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_input_tokens * price.cache_read
        + usage.cache_creation_input_tokens * price.cache_write
    ) * _PICOS_PER_TOKEN_PER_MTOK
    return int(total.to_integral_value(rounding=ROUND_HALF_EVEN))


def cost(usage: Usage, price: ModelPrice) -> float:
    """Cost of ``usage`` in USD (sum ``cost_picos`` instead when adding many up)."""
    return cost_picos(usage, price) / PICOS_PER_USD


def format_usd(picos: int) -> str:
    """Pico-dollars as a plain decimal string of USD, at most 12 places, no trailing zeros."""
    text = format(Decimal(picos) / PICOS_PER_USD, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"price table: {where} must be a number, got {value!r}")
    try:
        # str() first: Decimal(0.1) would carry the float's binary error into every sum.
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"price table: {where} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ConfigError(f"price table: {where} must be a non-negative number, got {value!r}")
    return number


def _price(entry: Any, where: str, sources: Mapping[str, str]) -> ModelPrice:
    if not isinstance(entry, dict):
        raise ConfigError(f"price table: {where} must be a mapping")
    unknown = set(entry) - {*_FIELDS, "source"}
    if unknown:
        raise ConfigError(f"price table: {where} has unknown keys {sorted(unknown)}")
    for required in ("input", "output"):
        if required not in entry:
            raise ConfigError(f"price table: {where} needs {required!r}")
    input_price = _decimal(entry["input"], f"{where}.input")
    source = str(entry.get("source", ""))
    return ModelPrice(
        input=input_price,
        output=_decimal(entry["output"], f"{where}.output"),
        # Without a cache price, cached tokens are charged like fresh input (never free by accident).
        cache_read=_decimal(entry.get("cache_read", entry["input"]), f"{where}.cache_read"),
        cache_write=_decimal(entry.get("cache_write", entry["input"]), f"{where}.cache_write"),
        source=sources.get(source, source),
    )


def _source_text(value: Any, where: str) -> str:
    """A source as one line: a string as it is, or ``{url, retrieved, note}`` joined."""
    if not isinstance(value, dict):
        return str(value)
    if not isinstance(value.get("url"), str):
        raise ConfigError(f"price table: {where} needs a 'url'")
    text: str = value["url"]
    if value.get("retrieved") is not None:
        text += f" (retrieved {value['retrieved']})"
    if value.get("note") is not None:
        text += f"; {value['note']}"
    return text


def _override(value: PriceOverride) -> ModelPrice:
    def dec(number: float | None, fallback: float) -> Decimal:
        return Decimal(str(fallback if number is None else number))

    return ModelPrice(
        input=dec(value.input, value.input),
        output=dec(value.output, value.output),
        cache_read=dec(value.cache_read, value.input),
        cache_write=dec(value.cache_write, value.input),
        source="config",
    )


_MEMO_ENTRIES = 1024


class PriceTable:
    """Model prices with the catalog's name matching, plus the config's overrides."""

    def __init__(
        self,
        models: Mapping[str, ModelPrice],
        *,
        updated: str = "",
        overrides: Mapping[str, PriceOverride] | None = None,
    ) -> None:
        self._models = {name.lower(): price for name, price in models.items()}
        self._families = sorted(self._models, key=len, reverse=True)
        self._overrides = {key: _override(value) for key, value in (overrides or {}).items()}
        self.updated = updated
        # lookup() answers per model name; the family scan is too slow to repeat per request. Names
        # may come from clients (``provider,model``), so the memo is bounded.
        self._memo: dict[str, ModelPrice | None] = {}

    @classmethod
    def from_mapping(
        cls, data: Any, *, overrides: Mapping[str, PriceOverride] | None = None, source: str = "price table"
    ) -> PriceTable:
        """Build from the YAML document's shape: ``updated``, ``sources``, ``models``."""
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            raise ConfigError(f"{source}: expected a mapping with a 'models' mapping")
        sources = data.get("sources") or {}
        if not isinstance(sources, dict):
            raise ConfigError(f"{source}: 'sources' must be a mapping")
        described = {str(key): _source_text(value, f"sources.{key}") for key, value in sources.items()}
        models = {
            str(name): _price(entry, f"models.{name}", described) for name, entry in data["models"].items()
        }
        return cls(models, updated=str(data.get("updated", "")), overrides=overrides)

    @classmethod
    def load(
        cls, overrides: Mapping[str, PriceOverride] | None = None, config_dir: Path | None = None
    ) -> PriceTable:
        """The installed table (``<config_dir>/prices.yaml``) if any, else the shipped one."""
        installed = None if config_dir is None else config_dir / PRICE_FILE_NAME
        data = load_price_file(installed) if installed is not None and installed.exists() else _shipped()
        return cls.from_mapping(data, overrides=overrides)

    def __len__(self) -> int:
        return len(self._models)

    def items(self) -> list[tuple[str, ModelPrice]]:
        """The table's entries, then the config's overrides, in file order."""
        return [*self._models.items(), *self._overrides.items()]

    def price(self, provider: ProviderConfig, model: str) -> ModelPrice | None:
        """The price of ``model`` on ``provider``: config override, local (free), then the table."""
        base = provider.catalog_model(model)  # an Azure deployment is priced as its model
        found = (
            self._overrides.get(f"{provider.name},{model}")
            or self._overrides.get(model)
            or (self._overrides.get(base) if base != model else None)
        )
        if found is not None:
            return found
        if provider.type == "simulated" or (provider.vendor or "").lower() in _LOCAL_VENDORS:
            return FREE
        if provider.base_url and ":11434" in provider.base_url:  # Ollama's default port
            return FREE
        return self.lookup(base)

    def lookup(self, model: str) -> ModelPrice | None:
        """The table's price for ``model`` (exact, then family prefix), or None when unknown."""
        try:
            return self._memo[model]
        except KeyError:
            pass
        if len(self._memo) >= _MEMO_ENTRIES:
            self._memo.clear()
        found = self._memo[model] = self._find(model)
        return found

    def _find(self, model: str) -> ModelPrice | None:
        candidates = _candidates(model)
        for name in candidates:
            if name in self._models:
                return self._models[name]
        for name in candidates:
            for family in self._families:
                if len(name) > len(family) and name.startswith(family) and name[len(family)] in _BOUNDARY:
                    return self._models[family]
        return None


def read_price_text(path: Path) -> str:
    """The text of a price file, at most ``MAX_PRICE_FILE_BYTES``; ConfigError names the problem."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PRICE_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the price table ({exc.strerror or exc})") from None
    if len(raw) > MAX_PRICE_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_PRICE_FILE_BYTES // 2**20} MiB, not a price table")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def load_price_file(path: Path) -> Any:
    """Parse and validate a price file; ConfigError names the problem."""
    try:
        data = yaml.safe_load(read_price_text(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}") from None
    PriceTable.from_mapping(data, source=str(path))
    return data


@functools.cache
def _shipped() -> Any:
    text = resources.files("ccrouter.data").joinpath(PRICE_FILE_NAME).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
