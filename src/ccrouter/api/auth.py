"""Client and admin authentication.

When ``server.api_keys`` is set, /v1/* needs one of them (``x-api-key`` or ``Authorization: Bearer``);
the matching key names the exchange's client key id and user. A plain-string key gets an id derived
from a hash of it, never the key itself. /api/* needs ``server.admin_token`` (401 without a token,
403 with a wrong one or when no admin token is configured).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import SecretStr

from ccrouter.api.observe import EXCHANGE
from ccrouter.config import ClientKey
from ccrouter.errors import AuthenticationError, PermissionDeniedError

__all__ = [
    "USER_HEADER",
    "Identity",
    "admin_auth_middleware",
    "client_auth_middleware",
    "identities",
    "key_id",
]

USER_HEADER = "x-ccrouter-user"
_MAX_USER = 128


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    secret: bytes
    user: str | None
    user_header: bool


def key_id(secret: str) -> str:
    """A stable, non-reversible id for a plain-string key (12 hex digits of its SHA-256)."""
    return "key-" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def identities(keys: list[ClientKey | SecretStr]) -> list[Identity]:
    out = []
    for key in keys:
        secret = key.get_secret_value()
        if isinstance(key, ClientKey):
            out.append(Identity(key.name, secret.encode(), key.user, key.user_header))
        else:
            out.append(Identity(key_id(secret), secret.encode(), None, False))
    return out


def _presented_key(request: web.Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


def _header_user(request: web.Request) -> str | None:
    value = request.headers.get(USER_HEADER, "").strip()
    return value[:_MAX_USER] or None


def client_auth_middleware(keys: list[ClientKey | SecretStr]) -> Middleware:
    """Authenticate /v1/* against ``keys`` (empty: no auth; the user may then come from the header)."""
    known = identities(keys)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/"):
            exchange = request.get(EXCHANGE)
            if known:
                identity = _authenticate(request, known)
                user = (_header_user(request) if identity.user_header else None) or identity.user
                key: str | None = identity.id
            else:
                # Loopback without keys: one trusted machine, so its clients may name their user.
                user, key = _header_user(request), None
            if exchange is not None:
                exchange.client_key_id = key
                exchange.user = user
        response: web.StreamResponse = await handler(request)
        return response

    return middleware


def _authenticate(request: web.Request, known: list[Identity]) -> Identity:
    presented = _presented_key(request)
    if presented is None:
        raise AuthenticationError("missing API key: send it as x-api-key or Authorization: Bearer")
    candidate = presented.encode()
    # Compare against every key, in constant time each, so timing tells nothing.
    matches = [hmac.compare_digest(candidate, identity.secret) for identity in known]
    if not any(matches):
        raise AuthenticationError("invalid API key")
    return known[matches.index(True)]


def admin_auth_middleware(token: SecretStr | None) -> Middleware:
    """/api/* needs the admin token as ``Authorization: Bearer`` (or ``x-api-key``)."""
    secret = None if token is None else token.get_secret_value().encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            presented = _presented_key(request)
            if presented is None:
                raise AuthenticationError("admin endpoint: send server.admin_token as Authorization: Bearer")
            if secret is None:
                raise PermissionDeniedError("admin endpoints are disabled: set server.admin_token")
            if not hmac.compare_digest(presented.encode(), secret):
                raise PermissionDeniedError("admin endpoint: invalid admin token")
        response: web.StreamResponse = await handler(request)
        return response

    return middleware
