"""Managed client keys and audit records as data: what the store keeps and how a secret is made.

A key's secret is ``ccr-`` and 43 URL-safe base64 characters (256 bits from ``secrets``). The store
keeps only its SHA-256 (``hash_secret``): a 256-bit random secret cannot be found from its hash by
guessing, so a keyed hash (HMAC with a server secret) would add a second secret every instance must
share and rotate without making a stolen table any less useless; and one plain hash lets every
instance find a presented key with one dictionary lookup (``ccrouter.auth.directory``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import Any, Literal

from ccrouter.auth.roles import Principal, Role

__all__ = [
    "KEY_PREFIX",
    "AuditRecord",
    "KeyMatch",
    "KeyRecord",
    "KeyStatus",
    "hash_secret",
    "looks_like_key",
    "new_key_id",
    "new_secret",
]

KEY_PREFIX = "ccr-"
_SECRET_CHARS = 43  # token_urlsafe(32): 32 bytes, base64url without padding
# A presented key longer than this is not one of ours (nor any static key worth hashing).
MAX_PRESENTED = 4096

KeyStatus = Literal["active", "revoked", "expired", "rotated"]
Period = Literal["daily", "weekly", "monthly"]


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A key's public id (listed, logged, in the ledger): not derived from the secret."""
    return "key_" + secrets.token_hex(8)


def hash_secret(secret: str | bytes) -> str:
    data = secret if isinstance(secret, bytes) else secret.encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()


def looks_like_key(presented: str) -> bool:
    """Whether ``presented`` has the shape of a managed key (a cheap check before any lookup)."""
    return len(presented) == len(KEY_PREFIX) + _SECRET_CHARS and presented.startswith(KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One managed key as the store keeps it. ``hash``: SHA-256 hex of the secret; ``prefix``: its
    first 8 characters (``ccr-AbCd``), shown so people can tell their keys apart. After a rotation
    the previous secret (``previous_hash``) stays valid until ``previous_until``. ``rev``: the store's
    change counter at this row's last write (``Store.key_changes``)."""

    id: str
    name: str
    hash: str
    prefix: str
    created_at: float
    role: Role = "client"
    user: str | None = None
    team: str | None = None
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: Period | None = None
    created_by: str | None = None
    expires_at: float | None = None
    revoked_at: float | None = None
    previous_hash: str | None = None
    previous_until: float | None = None
    last_used_at: float | None = None
    rev: int = 0

    def status(self, now: float, *, previous: bool = False) -> KeyStatus:
        """What presenting this key (its previous secret when ``previous``) means at ``now``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if previous and (self.previous_until is None or self.previous_until <= now):
            return "rotated"
        return "active"

    def principal(self) -> Principal:
        return Principal(
            kind="key",
            id=self.id,
            role=self.role,
            name=self.name,
            user=self.user,
            team=self.team,
            models=self.models,
            rpm=self.rpm,
            tpm=self.tpm,
            budget_usd=self.budget_usd,
            budget_period=self.budget_period,
            expires_at=self.expires_at,
        )

    def with_changes(self, **changes: Any) -> KeyRecord:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """A presented secret that belongs to ``record``: what presenting it means now (``status``) and
    who it makes the request (``principal``, built once per record)."""

    record: KeyRecord
    status: KeyStatus
    principal: Principal


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One admin action. ``actor``: a key id, ``jwt:<subject>``, ``admin`` (server.admin_token),
    ``cli:<os user>`` (the CLI on the store directly) or ``anonymous``; ``action``: ``key.created``,
    ``key.revoked``, ``key.rotated``, ``key.updated``, ``role.changed``, ``budget.changed``,
    ``config.reloaded``, ``auth.failed``...; ``outcome``: ``ok``, ``denied`` (refused for its role
    or credentials) or ``failed``. ``detail``: small JSON-able facts, never a secret. ``id`` is
    given by the store."""

    ts: float
    actor: str
    action: str
    outcome: str
    target: str | None = None
    address: str | None = None
    detail: dict[str, Any] | None = None
    id: int | None = None
