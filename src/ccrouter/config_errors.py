"""Configuration problems as people read them: the key path of each (``providers[0].base_url``), a
"did you mean" for a misspelt key, and every missing environment variable at once.

Pure functions over pydantic's error dicts and the ``Settings`` model's fields; ``config_file`` calls
them while loading.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel

from ccrouter.config import Settings

__all__ = ["MissingVariable", "describe", "key_path", "known_keys", "missing_variables_message", "suggest"]

# Paths whose offending value must never be echoed in an error message.
_SECRET_KEYS = frozenset({"api_key", "api_keys", "headers", "proxy"})
# An unknown key with no close match lists the known ones, when there are this few.
_MAX_LISTED = 20


class MissingVariable(NamedTuple):
    """A ``${NAME}`` (or ``$NAME``) reference to an unset variable, and the key path using it."""

    name: str
    path: str
    reference: str


def key_path(loc: Sequence[int | str]) -> str:
    """``("providers", 0, "base_url")`` -> ``providers[0].base_url``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold: itself, or inside Optional/Union/list/dict values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _models_in(args[0])
    if origin is dict:
        return _models_in(args[1]) if len(args) == 2 else []
    if origin in (list, tuple, set, frozenset, Union, types.UnionType):
        return [model for arg in args for model in _models_in(arg)]
    return []


def known_keys(loc: Sequence[int | str], root: type[BaseModel] = Settings) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (the path of that mapping, not of a key in it);
    empty when the path does not lead to a model (a free-form mapping such as ``options``)."""
    models: list[type[BaseModel]] = [root]
    for part in loc:
        if isinstance(part, int):  # a list index: the element's models are already the candidates
            continue
        fields = [model.model_fields[part] for model in models if part in model.model_fields]
        if fields:
            models = [model for field in fields for model in _models_in(field.annotation)]
        else:
            # A union member's tag (pydantic puts ``ClientKey`` in the path) or a dict key: the
            # candidates stay, narrowed to the named member when it is one.
            models = [model for model in models if model.__name__ == part] or models
        if not models:
            return []
    return sorted({name for model in models for name in model.model_fields})


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (difflib's ratio of at least 0.6), if any."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_key(loc: Sequence[int | str]) -> str:
    if not loc:
        return "unknown key"
    known = known_keys(loc[:-1])
    guess = suggest(str(loc[-1]), known)
    if guess is not None:
        return f"unknown key; did you mean {guess!r}?"
    if known and len(known) <= _MAX_LISTED:
        return f"unknown key (known keys here: {', '.join(known)})"
    return "unknown key"


def describe(error: Any) -> str:
    """One line for one pydantic error: the key path, then what is wrong (never a secret's value)."""
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    kind = error["type"]
    if kind == "missing":
        message = "required key is missing"
    elif kind == "extra_forbidden":
        message = _unknown_key(loc)
    elif (
        isinstance(error.get("input"), str | int | float | bool)
        and not _SECRET_KEYS.intersection(str(part) for part in loc)
        and len(str(error["input"])) <= 80
        and repr(error["input"]) not in message
    ):
        message += f" (got {error['input']!r})"
    if not loc and ":" in message:
        # Model-level validators (e.g. Settings._routes_exist) already lead with the key path.
        return message
    return f"{key_path(loc)}: {message}"


def missing_variables_message(missing: Sequence[MissingVariable]) -> str:
    """Every unset variable, each with the key that uses it, in one message."""
    names = list(dict.fromkeys(item.name for item in missing))
    if len(names) == 1:
        head = f"environment variable {names[0]} is not set (export it; $$ is a literal dollar sign)"
    else:
        head = f"{len(names)} environment variables are not set: {', '.join(names)} (export them)"
    lines = [
        f"  {item.path}: environment variable {item.name} is not set (used as {item.reference})"
        for item in missing
    ]
    return "\n".join([head, *lines])
