"""Client authentication: when server.api_keys is set, /v1/* needs one of them."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import SecretStr

from ccrouter.errors import AuthenticationError

__all__ = ["client_auth_middleware"]


def _presented_key(request: web.Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


def client_auth_middleware(keys: list[SecretStr]) -> Middleware:
    secrets = [key.get_secret_value().encode() for key in keys]

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/"):
            presented = _presented_key(request)
            if presented is None:
                raise AuthenticationError("missing API key: send it as x-api-key or Authorization: Bearer")
            candidate = presented.encode()
            # Compare against every key, in constant time each, so timing tells nothing.
            if not any([hmac.compare_digest(candidate, secret) for secret in secrets]):
                raise AuthenticationError("invalid API key")
        response: web.StreamResponse = await handler(request)
        return response

    return middleware
