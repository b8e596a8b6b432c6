"""The one exception tree of ccrouter.

Every error carries the HTTP status and the Anthropic error type it maps to, so the API layer renders
any of them in the client's own envelope (Anthropic or OpenAI) without a lookup table::

    CCRouterError                      500 api_error
    ├── ConfigError                    500 api_error        (bad configuration; CLI exits non-zero)
    │   └── PluginError                a plugin failed to import or register (names the plugin)
    ├── RequestError                   400 invalid_request_error
    │   ├── AuthenticationError        401 authentication_error
    │   ├── PermissionDeniedError      403 permission_error
    │   ├── NotFoundError              404 not_found_error
    │   ├── RequestTooLargeError       413 request_too_large
    │   ├── AuthThrottledError         429 rate_limit_error (too many failed authentications)
    │   ├── ClientRateLimitError       429 rate_limit_error (a key's, user's or team's rpm/tpm)
    │   └── TooManyStreamsError        429 rate_limit_error (the dashboard's live streams are all taken)
    ├── RoutingError                   400 invalid_request_error (no provider/model can take it)
    ├── ShuttingDownError              529 overloaded_error (the gateway is draining; retry elsewhere)
    └── UpstreamError                  502 api_error        (a provider failed; status/type from it)
        ├── UpstreamStatusError        the provider answered with an error status
        │   ├── UpstreamRateLimitError     429 rate_limit_error (retry_after when announced)
        │   └── UpstreamOverloadedError    529 overloaded_error
        │       └── PoolExhaustedError     529 (every connection of our pool to it is busy)
        ├── UpstreamTimeoutError       504 api_error        (also an ``asyncio.TimeoutError``)
        ├── UpstreamConnectionError    502 api_error        (also a ``ConnectionError``)
        └── UpstreamProtocolError      502 api_error        (the provider sent something unreadable)

Like aiohttp, the timeout and connection errors also derive from the standard exceptions so callers
can catch either.
"""

from __future__ import annotations

import asyncio

__all__ = [
    "AuthThrottledError",
    "AuthenticationError",
    "CCRouterError",
    "ClientRateLimitError",
    "ConfigError",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginError",
    "PoolExhaustedError",
    "RequestError",
    "RequestTooLargeError",
    "RoutingError",
    "ShuttingDownError",
    "TooManyStreamsError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamOverloadedError",
    "UpstreamProtocolError",
    "UpstreamRateLimitError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
    "anthropic_error_type",
]


class CCRouterError(Exception):
    """Root of every error ccrouter raises on purpose."""

    status: int = 500
    error_type: str = "api_error"

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type


class ConfigError(CCRouterError):
    """The configuration is invalid; ``message`` names the key path and the problem."""


class PluginError(ConfigError):
    """A plugin failed to import or to register; ``message`` names the plugin."""


class RequestError(CCRouterError):
    """The client's request is malformed or cannot be served as asked."""

    status = 400
    error_type = "invalid_request_error"


class AuthenticationError(RequestError):
    status = 401
    error_type = "authentication_error"


class PermissionDeniedError(RequestError):
    status = 403
    error_type = "permission_error"


class NotFoundError(RequestError):
    status = 404
    error_type = "not_found_error"


class RequestTooLargeError(RequestError):
    status = 413
    error_type = "request_too_large"


class AuthThrottledError(RequestError):
    """Too many failed authentications from one client address; ``retry_after`` in seconds."""

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClientRateLimitError(RequestError):
    """The caller is over a requests or tokens per minute limit of its key, user or team (issue 14);
    ``message`` names the limit, ``retry_after`` (seconds) is when its window frees a slot."""

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDownError(CCRouterError):
    """The gateway is draining after SIGTERM and takes no new request: Claude Code and the SDKs retry a
    529, and behind a load balancer the retry lands on another instance. ``retry_after`` in seconds."""

    status = 529
    error_type = "overloaded_error"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyStreamsError(RequestError):
    """As many live streams (``GET /api/live``) are open as the gateway serves at once; ``retry_after``
    in seconds."""

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RoutingError(CCRouterError):
    """No configured provider and model can take the request (unknown provider, missing model...)."""

    status = 400
    error_type = "invalid_request_error"


class UpstreamError(CCRouterError):
    """A provider call failed. ``provider`` names it; the message never holds a credential."""

    status = 502
    error_type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, error_type=error_type)
        self.provider = provider
        self.retry_after = retry_after


class UpstreamStatusError(UpstreamError):
    """The provider answered with an HTTP error status; ``status`` is that status."""


class UpstreamRateLimitError(UpstreamStatusError):
    status = 429
    error_type = "rate_limit_error"


class UpstreamOverloadedError(UpstreamStatusError):
    status = 529
    error_type = "overloaded_error"


class PoolExhaustedError(UpstreamOverloadedError):
    """Every connection of the gateway's pool to the provider is busy (``providers[].pool_size``) and
    a slot is not expected (or did not come) within ``timeouts.first_byte``: the next candidate is
    tried. The provider did nothing wrong, so its breaker and health do not count it."""


class UpstreamTimeoutError(UpstreamError, asyncio.TimeoutError):
    status = 504
    error_type = "api_error"


class UpstreamConnectionError(UpstreamError, ConnectionError):
    status = 502
    error_type = "api_error"


class UpstreamProtocolError(UpstreamError):
    status = 502
    error_type = "api_error"


_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
    503: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """The Anthropic error type for an HTTP status (``api_error`` for unknown 5xx)."""
    return _TYPE_BY_STATUS.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


def upstream_error_for_status(
    status: int, message: str, *, provider: str, retry_after: float | None = None
) -> UpstreamStatusError:
    """Map a provider's error status to the matching class of the tree."""
    if status == 429:
        return UpstreamRateLimitError(message, provider=provider, retry_after=retry_after)
    if status in (529, 503):
        return UpstreamOverloadedError(message, provider=provider, retry_after=retry_after)
    return UpstreamStatusError(
        message,
        provider=provider,
        status=status,
        error_type=anthropic_error_type(status),
        retry_after=retry_after,
    )
