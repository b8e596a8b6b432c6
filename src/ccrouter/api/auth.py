"""Client and admin authentication.

When ``server.api_keys`` is set, /v1/* needs one of them (``x-api-key`` or ``Authorization: Bearer``);
the matching key names the exchange's client key id and user. A plain-string key gets an id derived
from a hash of it, never the key itself. /api/* needs ``server.admin_token`` (401 without a token,
403 with a wrong one or when no admin token is configured); so do /metrics and /health/providers when
``server.observability_protected`` (they show providers, models, limits and every client's traffic).
``GET /api/sessions/{id}`` and ``GET /api/logs`` also take the read token a served gateway makes at
start and writes to its 0600 state file for the statusline and ``ccrouter logs``
(``ccrouter.statusline.state``).

Failed attempts are throttled per client address (``ccrouter.api.throttle``), counted in
``ccr_auth_failures_total{reason}`` and marked on the request so that no ledger row or request log
line is written for them (``ccrouter.api.observe``); failed admin attempts are logged, at most once a
minute per address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import SecretStr

from ccrouter.api.logs import LOGS_PATH
from ccrouter.api.observe import EXCHANGE, PRINCIPAL, REJECTED
from ccrouter.api.sessions import SESSIONS_PREFIX
from ccrouter.api.state import services_of
from ccrouter.api.throttle import FailureThrottle, OncePer, address_key
from ccrouter.auth.roles import Principal
from ccrouter.config import ClientKey
from ccrouter.errors import AuthenticationError, AuthThrottledError, PermissionDeniedError, RequestError

__all__ = [
    "OBSERVABILITY_PATHS",
    "USER_HEADER",
    "AuthGuard",
    "Identity",
    "admin_auth_middleware",
    "client_auth_middleware",
    "identities",
    "key_id",
]

log = logging.getLogger("ccrouter.auth")

OBSERVABILITY_PATHS = frozenset({"/metrics", "/health/providers"})
USER_HEADER = "x-ccrouter-user"
_MAX_USER = 128
# Remembered (address, credential) successes; past this the oldest are forgotten.
_MAX_KNOWN = 10_000


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


def _secret_bytes(presented: str) -> bytes:
    # aiohttp decodes header bytes that are not UTF-8 as surrogates; a plain ``encode()`` would raise
    # on them (a 500). Encoded back to the bytes that were sent, they simply match no key.
    return presented.encode("utf-8", "surrogateescape")


class AuthGuard:
    """What every failed authentication goes through: the per-address throttle, the metric, the
    marker that keeps it out of the ledger, and the admin log line."""

    def __init__(self, throttle: FailureThrottle) -> None:
        self._throttle = throttle
        self._log_once = OncePer(60.0)
        # (address, credential id) pairs that authenticated while the address was not throttled.
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()

    def admit(self, request: web.Request) -> tuple[str, float | None]:
        """The request's address key, and how long that address is throttled for (None: it is not).
        A throttled address is still told apart from a known one by ``check`` once its key is read."""
        address = address_key(request.remote)
        return address, self._throttle.retry_after(address)

    def check(self, request: web.Request, address: str, wait: float | None, credential: str | None) -> None:
        """Let the attempt through, or raise ``AuthThrottledError``. ``credential``: the id of the key
        it presented when that key is right, else None. A throttled address gets through only with a
        key that already succeeded from it before (the people who were working there go on working);
        any other attempt from it, right or wrong, is refused alike, so a guesser learns nothing."""
        if wait is None:
            if credential is not None:
                self._remember(address, credential)
            return
        if credential is not None and (address, credential) in self._known:
            return
        self.rejected(request, "throttled")
        raise AuthThrottledError(
            f"too many failed authentications from this address: retry in {max(1, round(wait))} s",
            retry_after=wait,
        )

    def _remember(self, address: str, credential: str) -> None:
        pair = (address, credential)
        if pair in self._known:  # the common case: one dict lookup per authenticated request
            return
        self._known[pair] = None
        while len(self._known) > _MAX_KNOWN:
            self._known.popitem(last=False)

    def failed(self, request: web.Request, address: str, reason: str, error: RequestError) -> RequestError:
        """Count a failed attempt and return ``error`` for the caller to raise."""
        self._throttle.failed(address)
        self.rejected(request, reason)
        if request.path.startswith("/api/") and self._log_once(address):
            # Neither the presented token nor the client-chosen path goes into the log.
            log.warning("failed admin authentication from %s: %s", request.remote, reason)
        return error

    def refuse(
        self, request: web.Request, address: str, wait: float | None, reason: str, error: RequestError
    ) -> RequestError:
        """A wrong or missing credential: the throttle's 429 while ``address`` is throttled (a
        refused attempt costs no token), else the failure counted and ``error`` to raise."""
        self.check(request, address, wait, None)
        return self.failed(request, address, reason, error)

    @staticmethod
    def rejected(request: web.Request, reason: str) -> None:
        request[REJECTED] = reason
        services_of(request).metrics.auth_failure(reason)


def client_auth_middleware(keys: list[ClientKey | SecretStr], guard: AuthGuard) -> Middleware:
    """Authenticate /v1/* against ``keys`` (empty: no auth; the user may then come from the header)."""
    known = identities(keys)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/"):
            exchange = request.get(EXCHANGE)
            if known:
                identity = _authenticate(request, known, guard)
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


def _authenticate(request: web.Request, known: list[Identity], guard: AuthGuard) -> Identity:
    address, wait = guard.admit(request)
    presented = _presented_key(request)
    if presented is None:
        raise guard.refuse(
            request,
            address,
            wait,
            "missing_key",
            AuthenticationError("missing API key: send it as x-api-key or Authorization: Bearer"),
        )
    candidate = _secret_bytes(presented)
    # Compare against every key, in constant time each, so timing tells nothing.
    matches = [hmac.compare_digest(candidate, identity.secret) for identity in known]
    if not any(matches):
        raise guard.refuse(request, address, wait, "invalid_key", AuthenticationError("invalid API key"))
    identity = known[matches.index(True)]
    guard.check(request, address, wait, identity.id)
    return identity


def admin_auth_middleware(
    token: SecretStr | None,
    guard: AuthGuard,
    *,
    observability: bool,
    session_reader: str | None = None,
) -> Middleware:
    """/api/* needs the admin token as ``Authorization: Bearer`` (or ``x-api-key``); so do /metrics
    and /health/providers when ``observability``. ``session_reader``: a token that also opens
    ``GET /api/sessions/{id}`` and ``GET /api/logs``, and nothing else (the statusline's and
    ``ccrouter logs``', ``ccrouter.statusline.state``)."""
    secret = None if token is None else token.get_secret_value().encode()
    reader = None if session_reader is None else session_reader.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/api/") or (observability and path in OBSERVABILITY_PATHS):
            what = "admin endpoint" if path.startswith("/api/") else f"{path} (server.protect_observability)"
            address, wait = guard.admit(request)
            presented = _presented_key(request)
            if presented is None:
                raise guard.refuse(
                    request,
                    address,
                    wait,
                    "missing_admin_token",
                    AuthenticationError(f"{what}: send server.admin_token as Authorization: Bearer"),
                )
            if (
                reader is not None
                and request.method in ("GET", "HEAD")
                and (path.startswith(SESSIONS_PREFIX) or path == LOGS_PATH)
                and hmac.compare_digest(_secret_bytes(presented), reader)
            ):
                guard.check(request, address, wait, "session-reader")
                response: web.StreamResponse = await handler(request)
                return response
            if secret is None:
                guard.check(request, address, wait, None)
                guard.rejected(request, "admin_disabled")
                raise PermissionDeniedError(f"{what}: admin endpoints are disabled: set server.admin_token")
            if not hmac.compare_digest(_secret_bytes(presented), secret):
                raise guard.refuse(
                    request,
                    address,
                    wait,
                    "invalid_admin_token",
                    PermissionDeniedError(f"{what}: invalid admin token"),
                )
            guard.check(request, address, wait, "admin")
            # TRANSITIONAL(issue 14): the authentication middleware's rewrite sets it for every credential.
            request[PRINCIPAL] = Principal(kind="admin_token", id="admin", role="admin")
        answer: web.StreamResponse = await handler(request)
        return answer

    return middleware
