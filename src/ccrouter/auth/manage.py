"""Creating, listing, rotating, revoking and updating managed keys, each action in the audit trail.

The admin API (``ccrouter.api.keys``) and the CLI (``ccrouter keys``, on the store directly) both go
through ``KeyManager``, so the role rules and the audit rows are the same whichever way a key is
managed. Role rules: a viewer (or a client) cannot write; an operator may create, rotate, revoke and
update keys of role client only, and may not give a key a higher role; an admin may do anything.
A refusal raises ``PermissionDeniedError`` and is itself an audit row (outcome ``denied``).

The secret of a new or rotated key is returned once and kept nowhere: the store holds its SHA-256
(``ccrouter.auth.keys``), the audit rows and views never hold the secret or its hash.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from ccrouter.auth.audit import Auditor, actor_of
from ccrouter.auth.keys import KeyRecord, hash_secret, new_key_id, new_secret
from ccrouter.auth.roles import Principal, Role, can
from ccrouter.auth.specs import BUDGET_FIELDS, KeyChanges, KeySpec, expiry_at, field_error
from ccrouter.budgets.periods import period_bounds
from ccrouter.config import BudgetPeriod, KeysConfig
from ccrouter.errors import NotFoundError, PermissionDeniedError, RequestError
from ccrouter.pricing import PICOS_PER_USD
from ccrouter.store.base import Store

__all__ = ["MAX_GRACE_S", "Actor", "KeyChanges", "KeyManager", "KeySpec", "key_view", "parse_input"]

# A rotated secret stays valid at most this long (30 days): a grace period is for rolling out.
MAX_GRACE_S = 30 * 86_400.0
# The role an operator may manage and give.
_OPERATOR_SCOPE: Role = "client"
_PREFIX_CHARS = 8
_Input = TypeVar("_Input", KeySpec, KeyChanges)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a key action, and from where (the audit row's ``actor`` and ``address``)."""

    principal: Principal
    address: str | None = None

    @property
    def name(self) -> str:
        return actor_of(self.principal)


def parse_input(model: type[_Input], data: object) -> _Input:
    """``data`` (a decoded JSON body or the CLI's options) as ``model``, or a ``RequestError`` naming
    the first bad field by its key path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestError(field_error(exc)) from None


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def spend_period(record: KeyRecord) -> BudgetPeriod:
    """The period a key's spend is shown for: its budget's, monthly without a budget."""
    return record.budget_period or "monthly"


def key_view(
    record: KeyRecord, spend_usd: float, last_used: float | None, *, now: float | None = None
) -> dict[str, Any]:
    """A key as the API and the CLI show it (JSON-able): never its secret or hash. ``last_used``:
    the freshest last-use time known (the store's, or the key directory's in memory)."""
    moment = time.time() if now is None else now
    status = record.status(moment)
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "role": record.role,
        "user": record.user,
        "team": record.team,
        "models": list(record.models) if record.models is not None else None,
        "rpm": record.rpm,
        "tpm": record.tpm,
        "budget_usd": record.budget_usd,
        "budget_period": record.budget_period,
        "status": "active" if status == "rotated" else status,
        "created_at": _iso(record.created_at),
        "created_by": record.created_by,
        "expires_at": _iso(record.expires_at),
        "revoked_at": _iso(record.revoked_at),
        "rotated_until": _iso(record.previous_until) if record.previous_hash is not None else None,
        "last_used_at": _iso(last_used),
        "spend_period": spend_period(record),
        "spend_usd": round(spend_usd, 6),
    }


def _refusal(actor: Actor, target: KeyRecord | None, new_role: Role | None) -> str | None:
    """Why ``actor`` may not write ``target`` (None: a new key) giving it ``new_role``; None: it may."""
    role = actor.principal.role
    if role == "admin":
        return None
    if not can(role, "operator"):
        return f"role {role} cannot change keys (operator or admin needed)"
    if target is not None and target.role != _OPERATOR_SCOPE:
        return f"an operator manages keys of role client only; {target.id} has role {target.role}"
    if new_role is not None and new_role != _OPERATOR_SCOPE:
        return f"an operator cannot give a key role {new_role} (client only)"
    return None


class KeyManager:
    """The one way keys change. ``on_change`` runs after each committed write (the key directory
    refreshes itself and tells the other instances); ``clock`` gives unix seconds."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        config: KeysConfig,
        *,
        on_change: Callable[[], Awaitable[None]] | None = None,
        last_used: Callable[[str], float | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``last_used``: a key's latest use as this instance knows it (the key directory notes uses
        in memory and writes them every ``last_used_flush_s``); None: the store's record."""
        self._store = store
        self._last_used = last_used
        self._auditor = auditor
        self._config = config
        self._on_change = on_change
        self._clock = clock

    # -- reads ---------------------------------------------------------------------------------

    async def list(self) -> list[KeyRecord]:
        """Every key, revoked and expired ones too, oldest first."""
        return await self._store.key_list()

    async def get(self, key_id: str) -> KeyRecord:
        record = await self._store.key_get(key_id) if _plausible_id(key_id) else None
        if record is None:
            raise NotFoundError(f"no key {key_id[:64]!r}")
        return record

    async def views(self, records: Sequence[KeyRecord]) -> builtins.list[dict[str, Any]]:
        """``key_view`` of each record, with its spend this period (one store query per period)."""
        now = self._clock()
        spend: dict[str, dict[str, int]] = {}
        for period in {spend_period(record) for record in records}:
            since = period_bounds(period, now)[0]
            spend[period] = await self._store.spend_by("key", since)
        return [
            key_view(
                record,
                spend[spend_period(record)].get(record.id, 0) / PICOS_PER_USD,
                self._last_used(record.id) if self._last_used is not None else record.last_used_at,
                now=now,
            )
            for record in records
        ]

    async def view(self, record: KeyRecord) -> dict[str, Any]:
        (one,) = await self.views([record])
        return one

    # -- writes --------------------------------------------------------------------------------

    async def create(self, spec: KeySpec, actor: Actor) -> tuple[KeyRecord, str]:
        """A new key from ``spec``; returns it and its secret (the only time the secret exists)."""
        await self._allow(actor, "key.created", None, spec.role, detail={"name": spec.name})
        now = self._clock()
        secret = new_secret()
        record = KeyRecord(
            id=new_key_id(),
            name=spec.name,
            hash=hash_secret(secret),
            prefix=secret[:_PREFIX_CHARS],
            created_at=now,
            role=spec.role,
            user=spec.user,
            team=spec.team,
            models=tuple(spec.models) if spec.models is not None else None,
            rpm=spec.rpm,
            tpm=spec.tpm,
            budget_usd=spec.budget_usd,
            budget_period=spec.budget_period,
            created_by=actor.name,
            expires_at=expiry_at(spec.expires, now) if spec.expires is not None else None,
        )
        stored = await self._store.key_insert(record)
        detail = {"name": stored.name, "role": stored.role, "user": stored.user, "team": stored.team}
        await self._audit(actor, "key.created", stored.id, detail)
        await self._changed()
        return stored, secret

    async def revoke(self, key_id: str, actor: Actor) -> KeyRecord:
        record = await self._writable(key_id, actor, "key.revoked")
        stored = await self._update(key_id, {"revoked_at": self._clock()})
        await self._audit(actor, "key.revoked", key_id, {"name": record.name})
        await self._changed()
        return stored

    async def rotate(self, key_id: str, actor: Actor, grace_s: float | None = None) -> tuple[KeyRecord, str]:
        """A new secret for the key; the old one stays valid for ``grace_s`` seconds (default
        ``server.keys.rotation_grace_s``; 0: it stops at once). A key rotated again keeps only its
        latest previous secret."""
        grace = self._config.rotation_grace_s if grace_s is None else grace_s
        if not 0 <= grace <= MAX_GRACE_S:
            raise RequestError(f"grace_s: expected 0 to {MAX_GRACE_S:g} seconds, got {grace:g}")
        record = await self._writable(key_id, actor, "key.rotated")
        now = self._clock()
        secret = new_secret()
        changes: dict[str, Any] = {
            "hash": hash_secret(secret),
            "prefix": secret[:_PREFIX_CHARS],
            "previous_hash": record.hash if grace > 0 else None,
            "previous_until": now + grace if grace > 0 else None,
        }
        stored = await self._update(key_id, changes)
        await self._audit(actor, "key.rotated", key_id, {"name": record.name, "grace_s": grace})
        await self._changed()
        return stored, secret

    async def update(self, key_id: str, changes: KeyChanges, actor: Actor) -> KeyRecord:
        """Set the fields ``changes`` names (a field given as null is cleared). Audited as
        ``role.changed``, ``budget.changed`` and ``key.updated`` (the other fields), one row each."""
        given = changes.model_fields_set
        new_role: Role | None = changes.role if "role" in given else None
        record = await self._writable(key_id, actor, "key.updated", new_role=new_role)
        values = self._record_changes(record, changes)
        if not values:
            return record
        stored = await self._update(key_id, values)
        for action, detail in _change_rows(record, stored, values):
            await self._audit(actor, action, key_id, detail)
        await self._changed()
        return stored

    # -- the steps -----------------------------------------------------------------------------

    def _record_changes(self, record: KeyRecord, changes: KeyChanges) -> dict[str, Any]:
        """The store's field changes for ``changes``: only the fields that differ."""
        given = changes.model_fields_set
        values: dict[str, Any] = {}
        for name in ("name", "role", "user", "team", "rpm", "tpm", "budget_usd", "budget_period"):
            if name in given:
                values[name] = getattr(changes, name)
        if "models" in given:
            values["models"] = tuple(changes.models) if changes.models is not None else None
        if "expires" in given:
            values["expires_at"] = (
                None if changes.expires is None else expiry_at(changes.expires, self._clock())
            )
        if "budget_usd" in given and changes.budget_usd is None:
            values["budget_period"] = None  # no budget, no period
        merged = record.with_changes(**values)
        if merged.budget_usd is not None and merged.budget_period is None:
            raise RequestError("budget_period: required with budget_usd (daily, weekly or monthly)")
        if merged.budget_usd is None and merged.budget_period is not None:
            raise RequestError("budget_usd: required with budget_period")
        return {name: value for name, value in values.items() if getattr(record, name) != value}

    async def _writable(
        self, key_id: str, actor: Actor, action: str, *, new_role: Role | None = None
    ) -> KeyRecord:
        """The key ``actor`` may change (a refusal is audited and raised); a revoked key is final."""
        record = await self.get(key_id)
        await self._allow(actor, action, record, new_role)
        if record.revoked_at is not None:
            raise RequestError(f"key {key_id} is revoked", status=409)
        return record

    async def _allow(
        self,
        actor: Actor,
        action: str,
        target: KeyRecord | None,
        new_role: Role | None,
        *,
        detail: dict[str, Any] | None = None,
    ) -> None:
        reason = _refusal(actor, target, new_role)
        if reason is None:
            return
        await self._auditor.record(
            action,
            actor=actor.name,
            outcome="denied",
            target=target.id if target is not None else None,
            address=actor.address,
            detail={**(detail or {}), "reason": reason},
        )
        raise PermissionDeniedError(reason)

    async def _update(self, key_id: str, changes: Mapping[str, Any]) -> KeyRecord:
        stored = await self._store.key_update(key_id, changes)
        if stored is None:  # removed between the read and the write (no delete exists today)
            raise NotFoundError(f"no key {key_id!r}")
        return stored

    async def _audit(self, actor: Actor, action: str, target: str, detail: dict[str, Any]) -> None:
        await self._auditor.record(
            action, actor=actor.name, target=target, address=actor.address, detail=detail
        )

    async def _changed(self) -> None:
        if self._on_change is not None:
            await self._on_change()


def _plausible_id(key_id: str) -> bool:
    # Ids are ``key_`` and 16 hex digits; anything far from that is not looked up at all.
    return 0 < len(key_id) <= 64


# Fields shown in a ``key.updated`` row as their new values (the rest are named only).
_SHOWN = ("name", "user", "team", "rpm", "tpm", "models", "expires_at")


def _change_rows(
    before: KeyRecord, after: KeyRecord, values: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """The audit rows of an update: (action, detail) per kind of change."""
    rows: list[tuple[str, dict[str, Any]]] = []
    if "role" in values:
        rows.append(("role.changed", {"from": before.role, "to": after.role}))
    if BUDGET_FIELDS & values.keys():
        rows.append(
            (
                "budget.changed",
                {
                    "from": {"budget_usd": before.budget_usd, "budget_period": before.budget_period},
                    "to": {"budget_usd": after.budget_usd, "budget_period": after.budget_period},
                },
            )
        )
    other = [name for name in values if name != "role" and name not in BUDGET_FIELDS]
    if other:
        shown = {name: _jsonable(getattr(after, name)) for name in other if name in _SHOWN}
        rows.append(("key.updated", {"fields": other, "to": shown}))
    return rows


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
