"""Per key, per user and per team limits (issue 14): requests and tokens per minute, and the routes
a caller may use.

A principal's own ``rpm``/``tpm`` (a managed key's, a static ``ClientKey``'s) and the matching
``settings.limits`` rules are counted in the shared windows (``ccrouter.resilience.windows``: in
memory, or Redis with ``state.redis_url``, where ``reserve`` is one atomic script, so every instance
holds one limit together, at most one request over). There is one window per entity, whatever the
number of rules on it: ``client:key:<id>``, ``client:user:<name>``, ``client:team:<name>``, checked
against the tightest limit that applies. Provider windows are ``<provider>/<model>/<credential>``
and a provider name has no ``:``, so the two can never share a key.

Model allow-lists (the principal's ``models``, the matching rules' ``models``; all must allow) are
asked by the dispatcher (``allowance``): a request routed outside them is a 403 naming the route,
and fallbacks outside them are dropped from its candidates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol

from ccrouter.config import LimitRule, Settings
from ccrouter.errors import ClientRateLimitError, PermissionDeniedError
from ccrouter.exchange import Admission, Exchange
from ccrouter.messages import MessagesRequest
from ccrouter.resilience.ratelimits import ConfiguredLimits
from ccrouter.resilience.windows import WindowStore

__all__ = ["Admissions", "Allowance", "ClientLimits", "RoutePolicy"]

log = logging.getLogger("ccrouter.auth")

_PREFIX = "client"


@dataclass(frozen=True, slots=True)
class _Limit:
    """One entity's window and the tightest request and token limits on it, with who set each
    (for the 429's message): ``"key alice"``, ``"team ml (rule team-cap)"``."""

    key: str
    limits: ConfiguredLimits
    rpm_by: str | None
    tpm_by: str | None


@dataclass(slots=True)
class _Builder:
    label: str
    rpm: int | None = None
    rpm_by: str | None = None
    tpm: int | None = None
    tpm_by: str | None = None

    def add(self, rpm: int | None, tpm: int | None, by: str) -> None:
        if rpm is not None and (self.rpm is None or rpm < self.rpm):
            self.rpm, self.rpm_by = rpm, by
        if tpm is not None and (self.tpm is None or tpm < self.tpm):
            self.tpm, self.tpm_by = tpm, by


@dataclass(frozen=True, slots=True)
class _Entities:
    """Who an exchange counts as, per scope: its key (id and name), user and team."""

    key_id: str | None
    key_name: str | None
    user: str | None
    team: str | None

    @classmethod
    def of(cls, exchange: Exchange) -> _Entities:
        principal = exchange.principal
        key_id = exchange.client_key_id or (principal.id if principal is not None else None)
        name = principal.name if principal is not None else None
        return cls(key_id, name, exchange.user, exchange.team)

    def matches(self, rule: LimitRule) -> str | None:
        """The entity of ``rule``'s scope this exchange counts under, None when the rule does not
        apply to it."""
        if rule.scope == "key":
            if self.key_id is None or rule.match not in (None, self.key_id, self.key_name):
                return None
            return self.key_id
        entity = self.user if rule.scope == "user" else self.team
        return entity if entity is not None and rule.match in (None, entity) else None

    def label(self, scope: str, entity: str) -> str:
        if scope == "key":
            return f"key {self.key_name or entity}"
        return f"{scope} {entity}"


def _route_allowed(entries: Sequence[str], route: str) -> bool:
    """Whether ``route`` (``provider,model``) is one of ``entries``: ``provider,model``, ``provider,*``
    or a bare model name (any provider)."""
    provider, _, model = route.partition(",")
    for entry in entries:
        entry_provider, comma, entry_model = (part.strip() for part in entry.partition(","))
        if not comma:
            if entry_provider == model:
                return True
        elif entry_provider == provider and entry_model in ("*", model):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Allowance:
    """The routes one exchange may use: every list in ``lists`` (who set it, its entries) must allow."""

    lists: tuple[tuple[str, tuple[str, ...]], ...]

    def allows(self, route: str) -> bool:
        return all(_route_allowed(entries, route) for _, entries in self.lists)

    def check(self, route: str) -> None:
        """Raise the 403 that names ``route`` and the first list that refuses it."""
        for who, entries in self.lists:
            if not _route_allowed(entries, route):
                allowed = ", ".join(entries) or "none"
                raise PermissionDeniedError(f"route {route} is not allowed for {who} (allowed: {allowed})")


class RoutePolicy(Protocol):
    """What the dispatcher asks before ranking: the exchange's allowance (None: any route)."""

    def allowance(self, exchange: Exchange) -> Allowance | None: ...


# Distinct callers whose windows are remembered; past this the memo starts over.
_MEMO_SIZE = 4096


class ClientLimits:
    """The ``Admission`` for client request and token limits, and the dispatcher's ``RoutePolicy``.

    With several windows (a key, its user, its team), their usage is read first and the request is
    refused without counting anything when one is full; the windows are then reserved one by one,
    each atomically. Only a race lost between the read and the reservations (another instance took
    the last slot meanwhile) leaves the windows reserved before the refusing one counted: the
    ``WindowStore`` has no release, and counting a refused request errs on the safe side."""

    def __init__(
        self, settings: Settings, windows: WindowStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._rules = tuple(settings.limits)
        self._routed_rules = tuple(rule for rule in self._rules if rule.models is not None)
        self._windows = windows
        self._clock = clock
        self._memo: dict[tuple[object, ...], list[_Limit]] = {}

    def _limits(self, exchange: Exchange) -> list[_Limit]:
        principal = exchange.principal
        if not self._rules and (principal is None or (principal.rpm is None and principal.tpm is None)):
            return []
        # The same caller gets the same windows on every request (and twice per request: admit and
        # settle): remembered per (key, its limits, user, team), a bounded memo.
        memo_key = (
            exchange.client_key_id,
            None if principal is None else (principal.id, principal.name, principal.rpm, principal.tpm),
            exchange.user,
            exchange.team,
        )
        found = self._memo.get(memo_key)
        if found is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            found = self._memo[memo_key] = self._build(exchange)
        return found

    def _build(self, exchange: Exchange) -> list[_Limit]:
        principal = exchange.principal
        entities = _Entities.of(exchange)
        builders: dict[tuple[str, str], _Builder] = {}
        key_id = entities.key_id
        if principal is not None and key_id is not None and (principal.rpm or principal.tpm):
            builder = builders.setdefault(("key", key_id), _Builder(entities.label("key", key_id)))
            builder.add(principal.rpm, principal.tpm, builder.label)
        for rule in self._rules:
            if rule.rpm is None and rule.tpm is None:
                continue
            entity = entities.matches(rule)
            if entity is None:
                continue
            label = entities.label(rule.scope, entity)
            builder = builders.setdefault((rule.scope, entity), _Builder(label))
            builder.add(rule.rpm, rule.tpm, f"{label} (rule {rule.name})")
        return [
            _Limit(f"{_PREFIX}:{scope}:{entity}", ConfiguredLimits(rpm=b.rpm, tpm=b.tpm), b.rpm_by, b.tpm_by)
            for (scope, entity), b in builders.items()
        ]

    async def admit(
        self,
        exchange: Exchange,
        request: MessagesRequest,
        route: str,
        alternatives: Callable[[], Sequence[tuple[str, int]]] | None = None,
    ) -> str | None:
        """Count the request in each of its windows, or raise ``ClientRateLimitError``. A call made
        on a client request's behalf (``parent_id``) is not a request of its own: only its tokens
        count (``settle``)."""
        if exchange.parent_id is not None:
            return None
        limits = self._limits(exchange)
        if not limits:
            return None
        now = self._clock()
        if len(limits) > 1:
            usages = await self._windows.usage([item.key for item in limits], now)
            for item, usage in zip(limits, usages, strict=True):
                if _full(item.limits, usage.requests_minute, usage.tokens_minute):
                    await self._refuse(item, now)
        for item in limits:
            if not await self._windows.reserve(item.key, item.limits, now):
                await self._refuse(item, now)
        return None

    async def _refuse(self, item: _Limit, now: float) -> NoReturn:
        wait = await self._windows.frees_in(item.key, item.limits, now)
        usage = (await self._windows.usage([item.key], now))[0]
        rpm, tpm = item.limits.rpm, item.limits.tpm
        if rpm is not None and (tpm is None or usage.requests_minute >= rpm):
            what = f"{item.rpm_by}: {rpm} requests per minute"
        else:
            what = f"{item.tpm_by}: {tpm} tokens per minute"
        raise ClientRateLimitError(f"rate limit reached for {what}", retry_after=max(1.0, wait))

    async def settle(self, exchange: Exchange) -> None:
        """Add the exchange's tokens (input and output) to its windows that limit tokens."""
        usage = exchange.usage
        if usage is None:
            return
        tokens = usage.input_tokens + usage.output_tokens
        if tokens <= 0:
            return
        now = self._clock()
        for item in self._limits(exchange):
            if item.limits.tpm is not None:
                await self._windows.add_tokens(item.key, tokens, now)

    def allowance(self, exchange: Exchange) -> Allowance | None:
        """The routes ``exchange`` may use: its principal's ``models`` and every matching rule's."""
        principal = exchange.principal
        own = principal.models if principal is not None else None
        if own is None and not self._routed_rules:
            return None
        entities = _Entities.of(exchange)
        lists: list[tuple[str, tuple[str, ...]]] = []
        if principal is not None and own is not None:
            lists.append((f"key {entities.key_name or entities.key_id or principal.kind}", own))
        for rule in self._routed_rules:
            entity = entities.matches(rule)
            if entity is not None and rule.models is not None:
                lists.append((f"{entities.label(rule.scope, entity)} (rule {rule.name})", tuple(rule.models)))
        return Allowance(tuple(lists)) if lists else None


def _full(limits: ConfiguredLimits, requests: int, tokens: int) -> bool:
    return (limits.rpm is not None and requests >= limits.rpm) or (
        limits.tpm is not None and tokens >= limits.tpm
    )


class Admissions:
    """Several admissions as one: admitted in order (the first route override wins), settled all.
    When one refuses, those that already admitted the request are settled at once, so that
    nothing they hold for it lingers."""

    def __init__(self, admissions: Sequence[Admission]) -> None:
        self._admissions = tuple(admissions)

    async def admit(
        self,
        exchange: Exchange,
        request: MessagesRequest,
        route: str,
        alternatives: Callable[[], Sequence[tuple[str, int]]] | None = None,
    ) -> str | None:
        override: str | None = None
        for index, admission in enumerate(self._admissions):
            try:
                chosen = await admission.admit(exchange, request, route, alternatives)
            except Exception:  # a refusal: the dispatcher settles nothing for a request it cannot plan
                for admitted in self._admissions[:index]:
                    await admitted.settle(exchange)
                raise
            if override is None:
                override = chosen
        return override

    async def settle(self, exchange: Exchange) -> None:
        for admission in self._admissions:
            await admission.settle(exchange)
