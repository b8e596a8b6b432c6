"""AWS credentials for Bedrock, resolved and refreshed without blocking the event loop.

botocore does the credential work: its chain (environment, shared credentials and config files of
a profile, assume-role, web identity, SSO, container and EC2 instance metadata) and the refresh of
temporary credentials. Both block (files, HTTP to the metadata endpoints), so they run in a thread
(``asyncio.to_thread``), one at a time, every concurrent caller awaiting the same one. The frozen
credentials are cached and reused until botocore's own advisory window says to refresh (15 minutes
before expiry for most sources; a cheap check of the expiry time, no I/O); a refresh that fails while
the old credentials still have ten minutes left keeps them. Secrets never appear in logs, errors or
reprs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import botocore.exceptions
import botocore.session
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from pydantic import SecretStr

from ccrouter.errors import UpstreamError
from ccrouter.providers.single_flight import SingleFlight

__all__ = ["AwsCredentials", "chain_loader", "static_credentials"]

_log = logging.getLogger(__name__)
# How long a caller waits for a resolution in flight before it gives up (it goes on).
_WAIT_TIMEOUT = 45.0
# Credentials with less than this left are never used (botocore's mandatory refresh window).
_MANDATORY = 10 * 60
_MAX_REASON = 300


def static_credentials(access_key_id: str, secret: SecretStr, token: SecretStr | None) -> Credentials:
    """The key pair of the config, as botocore credentials."""
    return Credentials(
        access_key_id, secret.get_secret_value(), token.get_secret_value() if token is not None else None
    )


def chain_loader(profile: str | None) -> Callable[[], Credentials | None]:
    """Resolves botocore's credential chain (of ``profile``, if given). Blocking: run in a thread."""

    def load() -> Credentials | None:
        session = botocore.session.Session(profile=profile)
        found: Credentials | None = session.get_credentials()
        return found

    return load


class AwsCredentials:
    """One provider's AWS credentials: resolved once, refreshed in a thread ahead of expiry."""

    def __init__(self, provider: str, load: Callable[[], Credentials | None]) -> None:
        """``load``: resolves the credentials (blocking; called in a thread, once)."""
        self._provider = provider
        self._load = load
        self._source: Credentials | None = None
        self._frozen: ReadOnlyCredentials | None = None
        self._refresh = SingleFlight(self._run, wait=_WAIT_TIMEOUT, provider=provider, what="AWS credentials")
        self.resolutions = 0  # completed resolutions and refreshes, for tests and diagnostics

    def __repr__(self) -> str:
        return f"AwsCredentials(provider={self._provider!r})"

    @property
    def current(self) -> ReadOnlyCredentials | None:
        """The credentials last handed out (None before the first)."""
        return self._frozen

    def secrets(self) -> list[str]:
        """The current secret key and session token, for scrubbing error text."""
        frozen = self._frozen
        if frozen is None:
            return []
        return [value for value in (frozen.secret_key, frozen.token) if value]

    async def get(self) -> ReadOnlyCredentials:
        """Credentials good for signing a call now."""
        frozen, source = self._frozen, self._source
        if frozen is not None and not self._due(source, None):
            return frozen
        if frozen is not None and not self._due(source, _MANDATORY):
            try:
                return await self._refresh()
            except UpstreamError as exc:
                # Still good for a while: the next call tries again.
                _log.warning("%s: keeping the current AWS credentials: %s", self._provider, exc.message)
                return frozen
        return await self._refresh()

    @staticmethod
    def _due(source: Credentials | None, within: int | None) -> bool:
        # RefreshableCredentials.refresh_needed only compares its expiry time with the clock.
        return isinstance(source, RefreshableCredentials) and bool(source.refresh_needed(within))

    async def _run(self) -> ReadOnlyCredentials:
        try:
            frozen = await asyncio.to_thread(self._resolve_blocking)
        # botocore raises RuntimeError when a refresh returned credentials already expired.
        except (botocore.exceptions.BotoCoreError, RuntimeError) as exc:
            raise UpstreamError(
                f"{self._provider}: could not get AWS credentials: {_reason(exc)}", provider=self._provider
            ) from None  # the cause may hold a credential endpoint's answer
        self._frozen = frozen
        self.resolutions += 1
        return frozen

    def _resolve_blocking(self) -> ReadOnlyCredentials:
        # Only ever one at a time (``_refresh``), so the credentials object is never shared by threads.
        if self._source is None:
            self._source = self._load()
        if self._source is None:
            raise botocore.exceptions.NoCredentialsError()
        frozen: ReadOnlyCredentials = self._source.get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            raise botocore.exceptions.PartialCredentialsError(provider="chain", cred_var="secret_key")
        return frozen


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:_MAX_REASON]
