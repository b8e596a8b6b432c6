"""The base of every settings model (frozen, unknown keys refused, YAML 1.1's boolean words given
back) and the validation context that names the plugin registry. Re-exported by ``ccrouter.config``."""

from __future__ import annotations

import types
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationInfo,
    model_validator,
)

__all__ = ["registry_context"]


def registry_context(registry: Any) -> dict[str, Any]:
    """The pydantic validation context under which ``providers[].type`` and ``vendor`` are checked
    against a ``ccrouter.plugins.Registry`` (what the plugins registered). Without it they are
    checked when the app is built (``providers.registry.check_providers``)."""
    return {"registry": registry}


def _registry(info: ValidationInfo) -> Any:
    return info.context.get("registry") if isinstance(info.context, dict) else None


# YAML 1.1 (PyYAML) reads these unquoted words as booleans: `auto_fallback: off` arrives as False.
_YAML_TRUE = ("on", "yes", "true")
_YAML_FALSE = ("off", "no", "false")


def _literal_words(annotation: Any) -> tuple[str, ...]:
    """The string values of ``Literal[...]`` (or ``Literal[...] | None``); () when bool is also allowed."""
    if get_origin(annotation) is Literal:
        return tuple(arg for arg in get_args(annotation) if isinstance(arg, str))
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        if bool in args:
            return ()
        return tuple(word for arg in args for word in _literal_words(arg))
    return ()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # field -> {False: "off", ...}: Literal fields offering a word YAML 1.1 turns into a boolean.
    _yaml_bools: ClassVar[dict[str, dict[bool, str]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        found: dict[str, dict[bool, str]] = {}
        for name, field in cls.model_fields.items():
            words = _literal_words(field.annotation)
            mapping = {
                flag: word
                for flag, spellings in ((True, _YAML_TRUE), (False, _YAML_FALSE))
                for word in words
                if word in spellings
            }
            if mapping:
                found[name] = mapping
        cls._yaml_bools = found

    @model_validator(mode="before")
    @classmethod
    def _yaml_bool_words(cls, data: Any) -> Any:
        """Give back the word an unquoted ``off`` / ``on`` / ``yes`` / ``no`` meant (config load only)."""
        if not cls._yaml_bools or not isinstance(data, dict):
            return data
        fixed = dict(data)
        for name, mapping in cls._yaml_bools.items():
            value = fixed.get(name)
            if isinstance(value, bool) and value in mapping:
                fixed[name] = mapping[value]
        return fixed
