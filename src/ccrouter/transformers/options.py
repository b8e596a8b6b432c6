"""Transformer options from the config, checked by a small pydantic model per transformer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ccrouter.errors import ConfigError

__all__ = ["Options", "parse_options"]


class Options(BaseModel):
    """Base of every transformer's options: frozen, and an unknown option is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


_O = TypeVar("_O", bound=Options)


def parse_options(model: type[_O], options: Mapping[str, Any]) -> _O:
    """``options`` as ``model``, or a ``ConfigError`` naming each bad option."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'options'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"bad options: {problems}") from None
