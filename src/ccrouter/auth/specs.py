"""What a caller may ask of a managed key, validated: ``KeySpec`` (a new key) and ``KeyChanges`` (an
update; a field given as null is cleared). Both refuse unknown fields and bound every size, so a
body from the admin API and the CLI's options are checked by the same rules."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ccrouter.auth.roles import Role
from ccrouter.errors import RequestError
from ccrouter.projects import MAX_NAME, NAME_PATTERN

__all__ = ["BUDGET_FIELDS", "KeyChanges", "KeySpec", "expiry_at", "field_error"]

BUDGET_FIELDS = frozenset({"budget_usd", "budget_period"})
# A key expires at most ten years ahead.
MAX_EXPIRY_S = 3650 * 86_400.0
_MAX_MODELS = 100
_DURATION = re.compile(r"^([0-9]{1,7})([dhm])$")
_UNIT_S = {"d": 86_400, "h": 3_600, "m": 60}

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN)]
Owner = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f]+$")]
# A route it may use: ``provider,model``, ``provider,*`` or a model name (no spaces, no control bytes).
Route = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f]+$")]
PerMinute = Annotated[int, Field(gt=0, le=1_000_000_000)]
Usd = Annotated[float, Field(gt=0, le=10_000_000)]
Expiry = Annotated[str, Field(min_length=1, max_length=40)]
BudgetPeriod = Literal["daily", "weekly", "monthly"]


def _expiry(value: str) -> tuple[str, float]:
    """``("in", seconds)`` for ``30d``/``12h``/``90m``; ``("at", unix seconds)`` for an ISO date
    (midnight UTC) or date-time (UTC unless it names a zone)."""
    match = _DURATION.match(value)
    if match is not None:
        seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
        if not 0 < seconds <= MAX_EXPIRY_S:
            raise ValueError("a duration from 1m to 3650d")
        return "in", float(seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("expected a duration (30d, 12h, 90m) or an ISO date / date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return "at", moment.timestamp()


def expiry_at(value: str, now: float) -> float:
    """The unix time ``value`` (already validated) names, counted from ``now``; a time in the past
    or more than ten years ahead is a ``RequestError``."""
    kind, amount = _expiry(value)
    when = now + amount if kind == "in" else amount
    if when <= now:
        raise RequestError(f"expires: {value!r} is in the past")
    if when - now > MAX_EXPIRY_S:
        raise RequestError(f"expires: {value!r} is more than ten years ahead")
    return when


def field_error(exc: ValidationError) -> str:
    """The first problem of ``exc`` as one line naming its key path."""
    error = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown field"
    message = error["msg"].removeprefix("Value error, ")
    # A check of the whole input names its field in its message.
    return f"{path}: {message}" if path else message


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("expires", check_fields=False)
    @classmethod
    def _valid_expiry(cls, value: str | None) -> str | None:
        if value is not None:
            _expiry(value)
        return value

    @field_validator("models", check_fields=False)
    @classmethod
    def _distinct_models(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))


class KeySpec(_Input):
    """A new key: its name, owner, role, routes, limits, budget and expiry."""

    name: Name
    user: Owner | None = None
    team: Owner | None = None
    role: Role = "client"
    models: Annotated[list[Route], Field(min_length=1, max_length=_MAX_MODELS)] | None = None
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None
    budget_usd: Usd | None = None
    budget_period: BudgetPeriod | None = None
    expires: Expiry | None = None

    @model_validator(mode="after")
    def _budget_with_period(self) -> KeySpec:
        if self.budget_usd is not None and self.budget_period is None:
            raise ValueError("budget_period: required with budget_usd (daily, weekly or monthly)")
        if self.budget_usd is None and self.budget_period is not None:
            raise ValueError("budget_usd: required with budget_period")
        return self


class KeyChanges(_Input):
    """Changes to a key: only the fields given are changed (``model_fields_set``); null clears one
    (a role or a name cannot be cleared)."""

    name: Name | None = None
    user: Owner | None = None
    team: Owner | None = None
    role: Role | None = None
    models: Annotated[list[Route], Field(min_length=1, max_length=_MAX_MODELS)] | None = None
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None
    budget_usd: Usd | None = None
    budget_period: BudgetPeriod | None = None
    expires: Expiry | None = None

    @model_validator(mode="after")
    def _not_cleared(self) -> KeyChanges:
        for name in ("name", "role"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name}: cannot be cleared")
        return self
