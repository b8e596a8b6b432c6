"""LiteLLM's public price list (``model_prices_and_context_window.json``) as a ccrouter price table.

LiteLLM keys its top-level object by model name ("claude-sonnet-4-5", "azure/gpt-4o",
"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "vertex_ai/claude-sonnet-4-5@20250929"), each entry
giving USD per token (``input_cost_per_token``, ``output_cost_per_token``,
``cache_read_input_token_cost``, ``cache_creation_input_token_cost``), its ``litellm_provider`` and
``mode``; a ``sample_spec`` entry documents the fields. https://github.com/BerriAI/litellm
(model_prices_and_context_window.json; https://docs.litellm.ai/docs/completion/token_usage).

``convert`` is pure: it keeps the text models (modes chat, completion, responses), turns per-token
prices into ours (USD per million tokens), and names each entry as ccrouter's lookup sees a model:
the part after the last "/" ("azure/gpt-4o" is "gpt-4o"), since the lookup drops a "vendor/" from the
model a request names. Where several providers sell one name, the model's maker wins (anthropic,
openai, gemini), then other providers, then the clouds (bedrock, vertex_ai, azure), then the entry with
the shorter path ("bedrock/REGION/x" loses to "x"). Entries it cannot convert are counted, not fatal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Conversion", "convert", "looks_like_litellm"]

_SPEC_KEY = "sample_spec"
_TEXT_MODES = frozenset({"chat", "completion", "responses"})
_PER_MILLION = Decimal(10**6)
# A billionth of a dollar per million tokens: below any published price, above float noise
# (LiteLLM writes 1.6500000000000002e-06).
_QUANTUM = Decimal("1e-9")
# The fields that mark an entry as LiteLLM's.
_MARKERS = frozenset({"litellm_provider", "input_cost_per_token", "output_cost_per_token", "mode"})
_PRICE_FIELDS = (
    ("input", "input_cost_per_token"),
    ("output", "output_cost_per_token"),
    ("cache_read", "cache_read_input_token_cost"),
    ("cache_write", "cache_creation_input_token_cost"),
)
# The model's maker sells it under its own name; litellm_provider values as LiteLLM spells them.
_MAKERS = frozenset({"anthropic", "openai", "text-completion-openai", "gemini"})
_CLOUDS = ("bedrock", "vertex_ai", "azure")


@dataclass(frozen=True, slots=True)
class Conversion:
    """The converted table (``models.yaml``'s shape) and what was left out, by reason."""

    table: dict[str, Any]
    kept: int
    skipped: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: how many were kept and why the others were not."""
        if not self.skipped:
            return f"{self.kept} models converted"
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        return f"{self.kept} models converted; skipped {sum(self.skipped.values())} ({reasons})"


def looks_like_litellm(data: Any) -> bool:
    """Whether ``data`` is LiteLLM's shape: model entries at the top level, no ``models`` mapping."""
    if not isinstance(data, dict) or isinstance(data.get("models"), dict):
        return False
    if _SPEC_KEY in data:
        return True
    return any(isinstance(entry, dict) and _MARKERS & entry.keys() for entry in data.values())


def convert(data: Mapping[str, Any], *, origin: str, updated: str) -> Conversion:
    """LiteLLM's ``data`` as a price table; ``origin`` (its file or URL) and ``updated`` are recorded."""
    skipped: Counter[str] = Counter()
    chosen: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
    for key, entry in data.items():
        if key == _SPEC_KEY:
            continue
        if not isinstance(entry, dict):
            skipped["not an object"] += 1
            continue
        if entry.get("mode") not in _TEXT_MODES:
            skipped["not a text model"] += 1
            continue
        provider = entry.get("litellm_provider")
        provider = provider if isinstance(provider, str) and provider else "unknown"
        converted = _prices(entry)
        name = str(key).strip().lower().rsplit("/", 1)[-1]
        if converted is None or not name:
            skipped["without per-token prices"] += 1
            continue
        rank = (_rank(provider), str(key).count("/"))
        previous = chosen.get(name)
        if previous is not None:
            skipped["sold under a name already taken"] += 1
            if previous[0] <= rank:
                continue
        chosen[name] = (rank, {**converted, "source": f"litellm:{provider}"})
    models = {name: entry for name, (_, entry) in chosen.items()}
    providers = sorted({str(entry["source"]) for entry in models.values()})
    sources = {key: f"{origin} (LiteLLM, litellm_provider {key.split(':', 1)[1]})" for key in providers}
    table = {"updated": updated, "sources": sources, "models": models}
    return Conversion(table=table, kept=len(models), skipped=dict(skipped))


def _rank(provider: str) -> int:
    if provider in _MAKERS:
        return 0
    return 2 if provider.startswith(_CLOUDS) else 1


def _prices(entry: Mapping[str, Any]) -> dict[str, int | float] | None:
    """Our four prices (USD per million tokens) from ``entry``, or None when input or output lacks one.

    A missing cache price is left out: the table then charges cached tokens as input, never as free.
    """
    out: dict[str, int | float] = {}
    for ours, theirs in _PRICE_FIELDS:
        if theirs not in entry:
            if ours in ("input", "output"):
                return None
            continue
        value = _per_million(entry[theirs])
        if value is None:
            return None
        out[ours] = value
    return out


def _per_million(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = (Decimal(str(value)) * _PER_MILLION).quantize(_QUANTUM).normalize()
    except InvalidOperation:  # inf, nan, or too large to quantize
        return None
    if not number.is_finite() or number < 0:
        return None
    # int or float: YAML writes them as numbers; the table reads them back through str(), exactly.
    return int(number) if number == number.to_integral_value() else float(number)
