"""What known models can do: context window, output limit, tools, vision, thinking.

The figures live in the shipped ``ccrouter/data/models.yaml`` (dated, each entry naming its source);
this module reads it once and answers lookups by exact name, by vendor-prefixed name
("anthropic/claude-sonnet-4.5"), by the cloud spellings of a model's name (Bedrock's inference-profile
ARNs, region prefixes and "anthropic." ids; Vertex's "@version"), and by family prefix, falling back
to a conservative default. A provider's ``models[]`` entries in the config override the table field by
field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import yaml

from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError

__all__ = ["Catalog", "ModelInfo", "clamp_max_tokens"]

_FIELDS = ("context_window", "max_output_tokens", "tools", "vision", "thinking")
# A family key matches a longer name only where the name continues with one of these, so that
# "gpt-4" covers "gpt-4-0613" but not "gpt-4o".
_BOUNDARY = frozenset("-.:@_")
_SIMULATED_KEY = "sim-1"
# OpenRouter writes Claude versions with dots ("claude-3.5-sonnet"); Anthropic's ids use dashes.
_CLAUDE_DOTTED = re.compile(r"(?<=\d)\.(?=\d)")
# Bedrock's system-defined cross-Region inference profiles put a geography before the model id
# ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "global.anthropic.claude-opus-4-6-v1"); the
# profile serves the model the rest of the id names. Only followed by "vendor." (so never "gpt-4.1").
# https://docs.aws.amazon.com/bedrock/latest/userguide/cross-region-inference.html
_BEDROCK_GEOGRAPHY = re.compile(r"^(?:global|us|us-gov|eu|apac|jp|au)\.(?=[a-z0-9-]+\.)")
# Bedrock's Claude ids are Anthropic's model names behind "anthropic." (the "-v1:0" tail is a family
# boundary). Other Bedrock vendors keep their prefix: "meta.llama3-..." is not Ollama's "llama3".
_BEDROCK_SAME_NAMES = ("anthropic.",)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    context_window: int
    max_output_tokens: int
    tools: bool
    vision: bool
    thinking: bool


class Catalog:
    """An immutable table of model capabilities with name matching (see the module docstring)."""

    def __init__(self, models: Mapping[str, ModelInfo], default: ModelInfo, *, updated: str = "") -> None:
        self._models = {name.lower(): info for name, info in models.items()}
        # Longest first, so the first boundary-respecting prefix found is the most specific.
        self._families = sorted(self._models, key=len, reverse=True)
        self.default = default
        self.updated = updated
        self._lookups: dict[str, ModelInfo | None] = {}

    @classmethod
    def load(cls) -> Catalog:
        """The shipped table, parsed once per process (the file never changes at run time)."""
        return _shipped()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Catalog:
        """Build from the YAML document's shape: ``default``, ``models``, ``updated``."""
        default = _info(data.get("default"), None, "default")
        models = data.get("models")
        if not isinstance(models, dict):
            raise ConfigError("model catalog: 'models' must be a mapping")
        table = {str(name): _info(entry, default, f"models.{name}") for name, entry in models.items()}
        return cls(table, default, updated=str(data.get("updated", "")))

    def lookup(self, model: str) -> ModelInfo | None:
        """The table's entry for ``model`` (exact, then family prefix), or None when unknown."""
        if model in self._lookups:
            return self._lookups[model]
        found = self._match(model)
        if len(self._lookups) < 4096:  # model names come from config and clients: bounded anyway
            self._lookups[model] = found
        return found

    def info(self, provider: ProviderConfig, model: str) -> ModelInfo:
        """Capabilities of ``model`` served by ``provider``: the table, overridden by the config."""
        base = self.lookup(provider.catalog_model(model))
        if base is None:
            simulated = self._models.get(_SIMULATED_KEY) if provider.type == "simulated" else None
            base = simulated or self.default
        spec = provider.model(model)
        if spec is None:
            return base
        overrides = {name: getattr(spec, name) for name in _FIELDS if getattr(spec, name) is not None}
        return replace(base, **overrides) if overrides else base

    def _match(self, model: str) -> ModelInfo | None:
        candidates = _candidates(model)
        for name in candidates:
            if name in self._models:
                return self._models[name]
        best: str | None = None
        for name in candidates:
            for family in self._families:
                if best is not None and len(family) <= len(best):
                    break
                if len(name) > len(family) and name.startswith(family) and name[len(family)] in _BOUNDARY:
                    best = family
                    break
        return None if best is None else self._models[best]


def clamp_max_tokens(requested: int, info: ModelInfo) -> int:
    """``requested`` bounded by the model's output limit (and at least 1)."""
    return max(1, min(requested, info.max_output_tokens))


def _candidates(model: str) -> list[str]:
    """Spellings of ``model`` to try, most literal first."""
    name = model.strip().lower()
    out = [name]
    if name.startswith("arn:"):
        # arn:aws:bedrock:REGION:ACCOUNT:inference-profile/us.anthropic.claude-... (or
        # foundation-model/anthropic.claude-...): the model id is the resource after the last "/".
        out = [name.rsplit("/", 1)[-1]]
    elif "/" in name:
        out.append(name.rsplit("/", 1)[1])
    for item in list(out):
        if ":" in item:
            out.append(item.split(":", 1)[0])
    for item in list(out):
        if (geography := _BEDROCK_GEOGRAPHY.match(item)) is not None:
            out.append(item[geography.end() :])
    for item in list(out):
        for vendor in _BEDROCK_SAME_NAMES:
            if item.startswith(vendor):
                out.append(item[len(vendor) :])
    for item in list(out):
        if item.startswith("claude") and "." in item:
            out.append(_CLAUDE_DOTTED.sub("-", item))
    return list(dict.fromkeys(out))


def _info(entry: Any, default: ModelInfo | None, where: str) -> ModelInfo:
    if not isinstance(entry, dict):
        raise ConfigError(f"model catalog: {where} must be a mapping")
    unknown = set(entry) - {*_FIELDS, "source"}
    if unknown:
        raise ConfigError(f"model catalog: {where} has unknown keys {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name in _FIELDS:
        value = entry.get(name, None if default is None else getattr(default, name))
        expected = int if name in ("context_window", "max_output_tokens") else bool
        if type(value) is not expected or (expected is int and value <= 0):
            kind = "a positive integer" if expected is int else "true or false"
            raise ConfigError(f"model catalog: {where}.{name} must be {kind}, got {value!r}")
        values[name] = value
    return ModelInfo(**values)


@functools.cache
def _shipped() -> Catalog:
    text = resources.files("ccrouter.data").joinpath("models.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(text, Loader=loader)
    if not isinstance(data, dict):
        raise ConfigError("model catalog: the shipped models.yaml is not a mapping")
    return Catalog.from_mapping(data)
