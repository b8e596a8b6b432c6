"""Microsoft Entra ID tokens for Azure OpenAI, from azure-identity's async credentials.

``entra`` in the config: a ``ClientSecretCredential`` (tenant, client id and secret); without it
``DefaultAzureCredential`` (``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET``, workload
identity, a managed identity, the Azure CLI's login...). azure-identity is an optional dependency
(``pip install 'ccrouter[azure]'``), imported in a thread on the first call; its ``aio`` credentials
run on the event loop over aiohttp. A token is reused until less than ``min(ahead, lifetime / 2)``
of its life is left, one refresh at a time; a failed refresh while the old one still has life keeps
it. Tokens never appear in logs, errors or reprs.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ccrouter.config import ProviderConfig
from ccrouter.errors import UpstreamError

__all__ = ["COGNITIVE_SERVICES_SCOPE", "EntraTokens", "TokenCredential"]

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
_log = logging.getLogger(__name__)
_TIMEOUT = 30.0
_MAX_REASON = 300


class TokenCredential(Protocol):
    """azure-core's ``AsyncTokenCredential``, as far as it is used here."""

    async def get_token(self, *scopes: str) -> Any:
        """An ``AccessToken``: ``.token`` and ``.expires_on`` (seconds since the epoch)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = ""
    fresh_until: float = 0.0  # time.time(): refresh from then on
    usable_until: float = 0.0  # never sent after then


class EntraTokens:
    """A ``CallAuth``: ``Authorization: Bearer <Entra token>`` for each call."""

    def __init__(
        self,
        provider: str,
        make: Callable[[], TokenCredential],
        *,
        ahead: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``make``: builds the credential (called once, in a thread: constructors may read files)."""
        self._provider = provider
        self._make = make
        self._credential: TokenCredential | None = None
        self._ahead = ahead
        self._clock = clock
        self._token = _Token()
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @classmethod
    def for_config(cls, config: ProviderConfig) -> EntraTokens:
        entra = config.entra

        def make() -> TokenCredential:
            identity = importlib.import_module("azure.identity.aio")
            if entra is None:
                credential: TokenCredential = identity.DefaultAzureCredential()
            else:
                extra = {"authority": entra.authority} if entra.authority else {}
                credential = identity.ClientSecretCredential(
                    entra.tenant_id, entra.client_id, entra.client_secret.get_secret_value(), **extra
                )
            return credential

        return cls(config.name, make)

    def __repr__(self) -> str:
        return f"EntraTokens(provider={self._provider!r})"

    async def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    async def token(self) -> str:
        token, now = self._token, self._clock()
        if token.value and now < token.fresh_until:
            return token.value
        async with self._lock:  # one refresh at a time; the others then find it done
            token, now = self._token, self._clock()
            if token.value and now < token.fresh_until:
                return token.value
            try:
                return (await self._refresh()).value
            except UpstreamError as exc:
                if token.value and now < token.usable_until:
                    _log.warning("%s: keeping the current Entra token: %s", self._provider, exc.message)
                    return token.value
                raise

    async def _refresh(self) -> _Token:
        started = self._clock()
        try:
            if self._credential is None:
                self._credential = await asyncio.to_thread(self._make)
            async with asyncio.timeout(_TIMEOUT):
                access = await self._credential.get_token(COGNITIVE_SERVICES_SCOPE)
        except ImportError:
            raise UpstreamError(
                f"{self._provider}: Entra ID auth needs azure-identity (pip install 'ccrouter[azure]'),"
                " or set api_key",
                provider=self._provider,
            ) from None
        except TimeoutError:
            raise UpstreamError(
                f"{self._provider}: no Entra ID token within {_TIMEOUT:g}s", provider=self._provider
            ) from None
        # A foreign library's boundary: azure-identity raises its own errors (ClientAuthenticationError,
        # CredentialUnavailableError) and ValueError for bad settings; the first line of their text only.
        except Exception as exc:
            raise UpstreamError(
                f"{self._provider}: could not get an Entra ID token: {_reason(exc)}", provider=self._provider
            ) from None
        value = getattr(access, "token", None)
        if not isinstance(value, str) or not value:
            raise UpstreamError(
                f"{self._provider}: the Entra ID credential gave no token", provider=self._provider
            )
        lifetime = float(getattr(access, "expires_on", started + 3600)) - started
        self._token = _Token(
            value,
            fresh_until=started + lifetime - min(self._ahead, lifetime / 2),
            usable_until=started + lifetime - min(10.0, lifetime / 4),
        )
        self.refreshes += 1
        return self._token

    async def aclose(self) -> None:
        credential, self._credential = self._credential, None
        if credential is not None:
            await credential.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:_MAX_REASON]
