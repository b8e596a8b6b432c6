"""Authentication and roles on every request.

/v1/* and the Gemini API's /v1beta/* take a static key of ``server.api_keys``, a managed key
(``ccrouter keys``), a single sign-on token (``server.jwt``) or ``server.admin_token``, as
``x-api-key``, ``Authorization: Bearer`` or Google's ``x-goog-api-key`` (on the Gemini API's paths
also the ``?key=`` query parameter that Google's REST examples use; no log line carries a query string)
(``ccrouter.auth.authenticator`` says who it is). When client auth is required
(``server.auth_required``) a request without a valid one is a 401; otherwise an unknown credential
is simply not an identity (loopback: one trusted machine, whose clients may name their user in
``x-ccrouter-user``), but a revoked or expired managed key is still refused.

/api/* needs a credential whose role allows the call (``ccrouter.auth.roles.required_role``): 401
without a valid one, 403 when its role is too low. So do /metrics and /health/providers (role
viewer) when ``server.observability_protected``. ``GET /api/sessions/{id}`` and ``GET /api/logs``
also take the read token a served gateway makes at start and writes to its 0600 state file for the
statusline and ``ccrouter logs`` (``ccrouter.statusline.state``).

Failed attempts are throttled per client address (``ccrouter.api.throttle``), counted in
``ccr_auth_failures_total{reason}`` and marked on the request so that no ledger row or request log
line is written for them (``ccrouter.api.observe``); failed and refused admin attempts are logged
and written to the audit trail, each at most once a minute per address.
"""

from __future__ import annotations

import hmac
import logging
from collections import OrderedDict

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ccrouter.api.endpoints import ENDPOINTS
from ccrouter.api.logs import LOGS_PATH
from ccrouter.api.observe import CLIENT_PREFIXES, EXCHANGE, PRINCIPAL, REJECTED
from ccrouter.api.sessions import SESSIONS_PREFIX
from ccrouter.api.state import services_of
from ccrouter.api.throttle import FailureThrottle, OncePer, address_key
from ccrouter.auth.authenticator import ANONYMOUS, READER, Refused
from ccrouter.auth.roles import Principal, can, required_role
from ccrouter.errors import AuthenticationError, AuthThrottledError, PermissionDeniedError, RequestError
from ccrouter.ui.identity import session_caller
from ccrouter.ui.session import CSRF_HEADER, cross_origin, csrf_matches

__all__ = ["AUTH_GUARD", "OBSERVABILITY_PATHS", "USER_HEADER", "AuthGuard", "auth_middleware"]

log = logging.getLogger("ccrouter.auth")

OBSERVABILITY_PATHS = frozenset({"/metrics", "/health/providers"})
USER_HEADER = "x-ccrouter-user"
_MAX_USER = 128
# Remembered (address, credential) successes; past this the oldest are forgotten.
_MAX_KNOWN = 10_000
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


_GEMINI_PREFIX = "/v1beta/"
_MISSING_KEY = "missing API key: send it as x-api-key or Authorization: Bearer"
_MISSING_GEMINI_KEY = "missing API key: send it as x-goog-api-key (GEMINI_API_KEY) or ?key="


def _presented_key(request: web.Request) -> str | None:
    for header in ("x-api-key", "x-goog-api-key"):
        key = request.headers.get(header)
        if key:
            return key
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    if _gemini_path(request):
        return request.query.get("key") or None
    return None


def _gemini_path(request: web.Request) -> bool:
    """A Gemini API path, which takes the key as ``?key=`` too (under /v1/ since the Python SDK 3.0)."""
    if request.path.startswith(_GEMINI_PREFIX):
        return True
    endpoint = request.app[ENDPOINTS].match(request.path)
    return endpoint is not None and endpoint.envelope == "google"


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


# The app's guard, for the dashboard's login form (``ccrouter.ui.pages``).
AUTH_GUARD: web.AppKey[AuthGuard] = web.AppKey("ccrouter_auth_guard", AuthGuard)


def auth_middleware(guard: AuthGuard, *, session_reader: str | None = None) -> Middleware:
    """Authenticate /v1/*, /api/* and (when protected) the observability endpoints against the
    request's configuration (``Services.authenticator``). ``session_reader``: a token that also opens
    ``GET /api/sessions/{id}`` and ``GET /api/logs``, and nothing else (``ccrouter.statusline.state``)."""
    reader = None if session_reader is None else session_reader.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(CLIENT_PREFIXES):
            principal = await _client(request, guard)
            exchange = request.get(EXCHANGE)
            if exchange is not None:
                user = _header_user(request) if principal.user_header else None
                exchange.client_key_id = principal.id
                exchange.user = user or principal.user
                exchange.team = principal.team
                exchange.principal = principal
            request[PRINCIPAL] = principal
        elif path.startswith("/api/") or (
            path in OBSERVABILITY_PATHS and services_of(request).settings.server.observability_protected
        ):
            request[PRINCIPAL] = await _admin(request, guard, reader)
        response: web.StreamResponse = await handler(request)
        return response

    return middleware


async def _client(request: web.Request, guard: AuthGuard) -> Principal:
    auth = services_of(request).authenticator
    address, wait = guard.admit(request)
    presented = _presented_key(request)
    try:
        principal = await auth.identify(presented)
    except Refused as refused:
        if auth.required or refused.reason != "invalid_key":
            raise guard.refuse(request, address, wait, refused.reason, refused) from None
        return ANONYMOUS  # an open gateway: a credential it does not know is no identity, no failure
    if principal is None:
        if not auth.required:
            return ANONYMOUS
        raise guard.refuse(
            request,
            address,
            wait,
            "missing_key",
            AuthenticationError(_MISSING_GEMINI_KEY if _gemini_path(request) else _MISSING_KEY),
        )
    guard.check(request, address, wait, principal.id)
    return principal


async def _admin(request: web.Request, guard: AuthGuard, reader: bytes | None) -> Principal:
    services = services_of(request)
    path = request.path
    what = "admin endpoint" if path.startswith("/api/") else f"{path} (server.protect_observability)"
    address, wait = guard.admit(request)
    presented = _presented_key(request)
    if presented is None:
        opened = await session_caller(request)
        if opened is not None:  # the dashboard's session cookie (``ccrouter.ui.session``)
            session, caller = opened
            if request.method not in _READS and (
                cross_origin(request) or not csrf_matches(session, request.headers.get(CSRF_HEADER))
            ):
                guard.rejected(request, "csrf")
                raise PermissionDeniedError(
                    f"{what}: a write made with the dashboard's session needs its CSRF token in"
                    f" {CSRF_HEADER}, from the gateway's own origin"
                )
            return _allowed(request, guard, address, caller, what)
        error = AuthenticationError(
            f"{what}: send server.admin_token, or a key or token of role viewer or above,"
            " as Authorization: Bearer"
        )
        services.auditor.failed_login(address, "missing_credential", path)
        raise guard.refuse(request, address, wait, "missing_admin_token", error)
    if (
        reader is not None
        and request.method in ("GET", "HEAD")
        and (path.startswith(SESSIONS_PREFIX) or path == LOGS_PATH)
        and hmac.compare_digest(_secret_bytes(presented), reader)
    ):
        guard.check(request, address, wait, READER.id)
        return READER
    try:
        principal = await services.authenticator.identify(presented)
    except Refused as refused:
        services.auditor.failed_login(address, refused.reason, path)
        error = AuthenticationError(
            f"{what}: {refused.message} (send server.admin_token, or a key or token of role viewer or"
            " above, as Authorization: Bearer)"
        )
        raise guard.refuse(request, address, wait, "invalid_admin_token", error) from None
    assert principal is not None  # something was presented
    guard.check(request, address, wait, principal.id)
    return _allowed(request, guard, address, principal, what)


def _allowed(
    request: web.Request, guard: AuthGuard, address: str, principal: Principal, what: str
) -> Principal:
    """``principal`` when its role allows the request, else the 403 (audited)."""
    path = request.path
    needed = "viewer" if path in OBSERVABILITY_PATHS else required_role(request.method, path)
    if not can(principal.role, needed):
        services_of(request).auditor.failed_login(
            address, f"role {principal.role} < {needed}", path, actor=principal.id
        )
        guard.rejected(request, "forbidden_role")
        raise PermissionDeniedError(
            f"{what}: {request.method} {path} needs role {needed} or above; this credential has role"
            f" {principal.role}"
        )
    return principal
