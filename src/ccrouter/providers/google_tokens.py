"""Google access tokens for Vertex AI, refreshed ahead of expiry without blocking the event loop.

google-auth does the credential work (Application Default Credentials, service-account keys,
workload identity federation / external accounts, impersonation), but its ``refresh`` is blocking
(the ``requests`` transport): it runs in a thread (``asyncio.to_thread``), one refresh at a time,
every concurrent caller awaiting the same one. A token is refreshed once less than
``min(ahead, lifetime / 2)`` of its life is left (5 minutes of Google's hour); a refresh that fails
while the old token still has life left keeps the old one. Tokens never appear in logs, errors or
reprs.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
from google.auth.credentials import Credentials
from google.oauth2 import service_account
from pydantic import SecretStr

from ccrouter.errors import UpstreamError
from ccrouter.providers.proxy import EgressProxy
from ccrouter.providers.single_flight import SingleFlight

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "GoogleTokens",
    "StaticToken",
    "TokenSource",
    "load_credentials",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_log = logging.getLogger(__name__)
# Each HTTP exchange with a token endpoint (google-auth retries a failed one at most twice).
_EXCHANGE_TIMEOUT = 10.0
# How long a caller waits for a refresh in flight before it gives up (the refresh goes on).
_WAIT_TIMEOUT = 45.0
_MAX_REASON = 300


class TokenSource(Protocol):
    """Where a Vertex provider gets its bearer token."""

    # Whether a rejected token can be replaced (False: a static token).
    refreshable: bool

    async def token(self) -> str:
        """A token good for a call now."""
        ...

    async def replace(self, rejected: str) -> str:
        """A token other than ``rejected`` (Vertex answered 401 to it): refreshed unless another
        caller already did."""
        ...

    @property
    def current(self) -> str:
        """The last token handed out ("" before the first)."""
        ...


class StaticToken:
    """``api_key`` used as the bearer token as it is (``gcloud auth print-access-token``): never
    refreshed, so it stops working when it expires (within the hour)."""

    refreshable = False

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token.get_secret_value()

    async def replace(self, rejected: str) -> str:
        return self._token.get_secret_value()

    @property
    def current(self) -> str:
        return self._token.get_secret_value()

    def __repr__(self) -> str:
        return "StaticToken(**********)"


def load_credentials(credentials_file: str | None) -> google.auth.credentials.Credentials:
    """Blocking (reads files, may ask the metadata server): call it in a thread. A credentials file
    of any kind google-auth reads (service account, external account for workload identity,
    authorized user, impersonated), else Application Default Credentials."""
    scopes = [CLOUD_PLATFORM_SCOPE]
    if not credentials_file:
        credentials, _project = google.auth.default(scopes=scopes)
        return credentials
    path = os.path.expanduser(credentials_file)
    with open(path, encoding="utf-8") as file:
        info = json.load(file)
    if isinstance(info, dict) and info.get("type") == "service_account":
        return cast(Credentials, service_account.Credentials.from_service_account_info(info, scopes=scopes))  # type: ignore[no-untyped-call]
    # Other kinds (external_account, authorized_user, impersonated_service_account): the operator's own
    # file, named in their config; google-auth warns that a file from an untrusted source is a risk.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        credentials, _project = google.auth.load_credentials_from_file(path, scopes=scopes)  # type: ignore[no-untyped-call]
    return cast(Credentials, credentials)


class _BoundedRequest(google.auth.transport.Request):
    """google-auth's requests transport with every exchange bounded in time (its default is 120 s),
    through the provider's egress proxy: the same choice as its Vertex calls (``providers.proxy``),
    not requests' own reading of the environment, which a provider's ``proxy`` would not change."""

    def __init__(self, timeout: float, egress: EgressProxy | None = None) -> None:
        self._inner = google.auth.transport.requests.Request()
        self._timeout = timeout
        self._egress = egress

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> google.auth.transport.Response:
        bound = self._timeout if timeout is None else min(timeout, self._timeout)
        proxy = None if self._egress is None else self._egress.for_url(url)
        # Every key set: requests drops a None one from the proxies it read from the environment.
        chosen = None if proxy is None else str(proxy)
        kwargs["proxies"] = {"http": chosen, "https": chosen, "all": chosen}
        response = self._inner(url, method=method, body=body, headers=headers, timeout=bound, **kwargs)
        return cast(google.auth.transport.Response, response)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = ""
    fresh_until: float = 0.0  # monotonic time: refresh from then on
    usable_until: float = 0.0  # monotonic time: never sent after then


def _lifetime(expiry: datetime.datetime | None) -> float | None:
    if expiry is None:
        return None
    # google-auth keeps expiry as naive UTC.
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return (expiry - now).total_seconds()


class GoogleTokens:
    """Tokens from google-auth credentials, refreshed in a thread, one refresh at a time."""

    refreshable = True

    def __init__(
        self,
        provider: str,
        load: Callable[[], google.auth.credentials.Credentials],
        *,
        ahead: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        egress: EgressProxy | None = None,
    ) -> None:
        """``load``: builds the credentials (blocking; called in the refresh thread, once).
        ``egress``: the provider's proxying (None: token endpoints are reached directly)."""
        self._provider = provider
        self._egress = egress
        self._load = load
        self._credentials: google.auth.credentials.Credentials | None = None
        self._ahead = ahead
        self._clock = clock
        self._token = _Token()
        self._refresh = SingleFlight(
            self._run, wait=_WAIT_TIMEOUT, provider=provider, what="Google access token"
        )
        self.refreshes = 0  # completed refreshes, for tests and diagnostics

    def __repr__(self) -> str:
        return f"GoogleTokens(provider={self._provider!r})"

    @property
    def current(self) -> str:
        return self._token.value

    async def token(self) -> str:
        token, now = self._token, self._clock()
        if token.value and now < token.fresh_until:
            return token.value
        if token.value and now < token.usable_until:
            try:
                return (await self._refresh()).value
            except UpstreamError as exc:
                # Still good for a while: the next call tries again.
                _log.warning("%s: keeping the current Google token: %s", self._provider, exc.message)
                return token.value
        return (await self._refresh()).value

    async def replace(self, rejected: str) -> str:
        if self._token.value and self._token.value != rejected:
            return self._token.value
        return (await self._refresh()).value

    async def _run(self) -> _Token:
        started = self._clock()
        try:
            value, expiry = await asyncio.to_thread(self._refresh_blocking)
        except google.auth.exceptions.GoogleAuthError as exc:
            raise UpstreamError(
                f"{self._provider}: could not get a Google access token: {_reason(exc)}",
                provider=self._provider,
            ) from None  # the cause may hold the signed assertion's response data
        except OSError as exc:  # a credentials file gone or unreadable since start
            raise UpstreamError(
                f"{self._provider}: could not read Google credentials ({type(exc).__name__})",
                provider=self._provider,
            ) from None
        lifetime = _lifetime(expiry)
        if lifetime is None:  # credentials whose tokens do not expire
            token = _Token(value, float("inf"), float("inf"))
        else:
            token = _Token(
                value,
                fresh_until=started + lifetime - min(self._ahead, lifetime / 2),
                usable_until=started + lifetime - min(10.0, lifetime / 4),
            )
        self._token = token
        self.refreshes += 1
        return token

    def _refresh_blocking(self) -> tuple[str, datetime.datetime | None]:
        # Only ever one at a time (``_refresh``), so the credentials object is never shared by threads.
        if self._credentials is None:
            self._credentials = self._load()
        credentials = self._credentials
        credentials.refresh(_BoundedRequest(_EXCHANGE_TIMEOUT, self._egress))  # type: ignore[no-untyped-call]
        token = credentials.token
        if not isinstance(token, str) or not token:
            raise google.auth.exceptions.RefreshError("the token endpoint returned no access token")  # type: ignore[no-untyped-call]
        return token, credentials.expiry


def _reason(exc: google.auth.exceptions.GoogleAuthError) -> str:
    """The first argument of google-auth's error (its text), short; never the response data after it
    (which can echo the request)."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return text[:_MAX_REASON]
