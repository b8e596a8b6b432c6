"""From the credential a request presents to the ``Principal`` it stands for.

One ``Authenticator`` per configuration (it is rebuilt at reload, so client keys and the admin token
change without a restart); the key directory and the token verifier it consults live as long as the
store and ``server.jwt`` they serve. Checked in this order, each O(1): a static key of
``server.api_keys`` (looked up by the SHA-256 of the presented value), ``server.admin_token`` and
(compared in constant time), a managed key (``ccr-`` prefix, the
directory's replica, no store round trip), a single sign-on token (three base64url segments, when
``server.jwt`` is set).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from ccrouter.auth.keys import MAX_PRESENTED, KeyRecord, KeyStatus, looks_like_key
from ccrouter.auth.roles import Principal
from ccrouter.config import ClientKey, ServerConfig
from ccrouter.errors import AuthenticationError

__all__ = [
    "ADMIN",
    "ANONYMOUS",
    "READER",
    "Authenticator",
    "KeyLookup",
    "KeyMatch",
    "Refused",
    "TokenVerifier",
    "static_key_id",
]


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """A presented managed key found: its record, what presenting it means now, its principal."""

    record: KeyRecord
    status: KeyStatus
    principal: Principal


class KeyLookup(Protocol):
    """The managed keys (``ccrouter.auth.directory.KeyDirectory``)."""

    def lookup(self, presented: str, now: float) -> KeyMatch | None: ...

    def used(self, key_id: str, now: float) -> None: ...


class TokenVerifier(Protocol):
    """Single sign-on tokens (``ccrouter.auth.jwt.JwtVerifier``)."""

    def looks_like_jwt(self, token: str) -> bool: ...

    async def verify(self, token: str) -> Principal:
        """The token's principal, or ``AuthenticationError``."""
        ...


ADMIN = Principal(kind="admin_token", id="admin", role="admin", name="server.admin_token")
# The statusline's read token: opens GET /api/sessions/{id} and GET /api/logs, nothing else.
READER = Principal(kind="reader", id="session-reader", role="viewer")
ANONYMOUS = Principal(kind="anonymous", id=None, role="client", user_header=True)

_REFUSALS = {
    "revoked": "this API key has been revoked",
    "expired": "this API key has expired",
    "rotated": "this API key was rotated and its grace period is over: use the new key",
}


class Refused(AuthenticationError):
    """A presented credential that is not accepted; ``reason`` is the metric's closed label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def static_key_id(secret: str) -> str:
    """A stable, non-reversible id for a plain-string key (12 hex digits of its SHA-256)."""
    return "key-" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def _static(key: ClientKey | SecretStr) -> Principal:
    if not isinstance(key, ClientKey):
        return Principal(kind="static", id=static_key_id(key.get_secret_value()), role="client")
    return Principal(
        kind="static",
        id=key.name,
        role=key.role,
        name=key.name,
        user=key.user,
        team=key.team,
        models=tuple(key.models) if key.models is not None else None,
        rpm=key.rpm,
        tpm=key.tpm,
        user_header=key.user_header,
    )


def _digest(value: str) -> bytes:
    # aiohttp decodes header bytes that are not UTF-8 as surrogates; encoded back to the bytes that
    # were sent, they simply match nothing (a plain ``encode()`` would raise: a 500).
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


class Authenticator:
    def __init__(
        self,
        server: ServerConfig,
        *,
        directory: KeyLookup | None = None,
        verifier: TokenVerifier | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.required = server.auth_required
        self._static = {_digest(key.get_secret_value()): _static(key) for key in server.api_keys}
        self._admin = None if server.admin_token is None else _digest(server.admin_token.get_secret_value())
        self._directory = directory
        self._verifier = verifier
        self._clock = clock

    @property
    def admin_possible(self) -> bool:
        """Whether anything could authenticate an admin API call (else the API is off)."""
        return self._admin is not None or self._verifier is not None or self._directory is not None

    async def identify(self, presented: str | None) -> Principal | None:
        """The principal ``presented`` stands for; None when nothing was presented. Raises ``Refused``
        for a credential that is not accepted (unknown, revoked, expired, rotated, a bad token)."""
        if presented is None:
            return None
        if len(presented) > MAX_PRESENTED and self._verifier is None:
            raise Refused("invalid_key", "invalid API key")
        digest = _digest(presented)
        static = self._static.get(digest)
        if static is not None:
            return static
        if self._admin is not None and hmac.compare_digest(digest, self._admin):
            return ADMIN
        if self._directory is not None and looks_like_key(presented):
            now = self._clock()
            match = self._directory.lookup(presented, now)
            if match is not None:
                if match.status != "active":
                    raise Refused(f"{match.status}_key", _REFUSALS[match.status])
                self._directory.used(match.record.id, now)
                return match.principal
        if self._verifier is not None and self._verifier.looks_like_jwt(presented):
            try:
                return await self._verifier.verify(presented)
            except AuthenticationError as exc:
                raise Refused("invalid_token", exc.message) from None
        raise Refused("invalid_key", "invalid API key")
