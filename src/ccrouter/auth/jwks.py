"""The identity provider's signing keys (a JWKS), loaded, refreshed and refetched on demand.

``JwksKeys`` holds the last good key set of ``server.jwt``'s ``jwks_url`` (fetched with aiohttp,
``jwks_timeout_s``, the body bounded to 1 MB) or ``jwks_file`` (read in a thread). It refreshes every
``jwks_refresh_s`` in the background, and ``refetch`` (called for a token whose key id is unknown:
the IdP may have rotated its keys) reloads at most once per ``jwks_min_refresh_s``, so a flood of
tokens with random key ids costs the IdP at most one request per interval. A failed load keeps the
last good keys and is logged at most once a minute.

Only signing keys of the configured (asymmetric) algorithms are kept: an RSA key serves the RS*/PS*
algorithms, an EC key the ES* algorithm of its curve, and a key that names its ``alg`` only that one.
A symmetric (``oct``) key is never used, so no public key can turn into an HMAC secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from ccrouter.config import JwtConfig
from ccrouter.errors import ConfigError

__all__ = ["MAX_JWKS_BYTES", "JwksError", "JwksKeys", "KeySet", "parse_jwks"]

log = logging.getLogger("ccrouter.auth.jwt")

MAX_JWKS_BYTES = 1024 * 1024
_MAX_KEYS = 100
_MAX_KID = 256
_LOG_EVERY_S = 60.0
# The algorithms each key type and curve can serve (RFC 7518 sections 3.3-3.5).
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

# kid -> algorithm -> key. A key without a kid is filed under None.
KeySet = Mapping[str | None, Mapping[str, PyJWK]]
_EMPTY: KeySet = MappingProxyType({})


class JwksError(Exception):
    """A JWKS could not be loaded or read; the message says why (never a key)."""


def _algorithms_for(jwk: Mapping[str, Any], allowed: frozenset[str]) -> list[str]:
    kty = jwk.get("kty")
    if kty == "RSA":
        serves = _RSA
    elif kty == "EC" and isinstance(jwk.get("crv"), str) and jwk["crv"] in _EC:
        serves = frozenset({_EC[jwk["crv"]]})
    else:
        return []  # oct (symmetric), OKP, unknown types and curves: never a signing key here
    named = jwk.get("alg")
    if named is not None:
        serves = serves & {named} if isinstance(named, str) else frozenset()
    return sorted(serves & allowed)


def parse_jwks(body: bytes, allowed: frozenset[str]) -> KeySet:
    """The signing keys of a JWKS document for the ``allowed`` algorithms. Keys for encryption,
    of other types or algorithms, or that do not parse are skipped; a document without one usable
    key is a ``JwksError``. CPU only (RSA key loading): the caller runs it in a thread."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise JwksError("the JWKS is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError('the JWKS has no "keys" list')
    if len(data["keys"]) > _MAX_KEYS:
        raise JwksError(f"the JWKS has more than {_MAX_KEYS} keys")
    out: dict[str | None, dict[str, PyJWK]] = {}
    for jwk in data["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if kid is not None and not (isinstance(kid, str) and 0 < len(kid) <= _MAX_KID):
            continue
        for algorithm in _algorithms_for(jwk, allowed):
            try:
                key = PyJWK(jwk, algorithm)
            except PyJWKError:
                break  # a malformed key: skip it, keep the others
            out.setdefault(kid, {})[algorithm] = key
    if not out:
        raise JwksError("the JWKS has no signing key for the configured algorithms")
    return MappingProxyType({kid: MappingProxyType(keys) for kid, keys in out.items()})


def _read_bounded(path: Path) -> bytes:
    with path.open("rb") as file:
        body = file.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise JwksError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
    return body


class JwksKeys:
    """The current key set of one ``server.jwt``; ``keys`` is replaced whole, never edited."""

    def __init__(self, config: JwtConfig, *, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock
        self._allowed = frozenset(config.algorithms)
        self.keys: KeySet = _EMPTY
        # Bumped each time the key set is replaced (the verifier drops its refusals then).
        self.generation = 0
        self.fetches = 0
        self._session: aiohttp.ClientSession | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._body = b""
        self._last_attempt = float("-inf")
        self._last_logged = float("-inf")
        self._suppressed = 0

    @property
    def source(self) -> str:
        """Where the keys come from, fit for a log line (a URL without its query)."""
        if self._config.jwks_file is not None:
            return self._config.jwks_file
        url = urlsplit(self._config.jwks_url or "")
        return f"{url.scheme}://{url.netloc}{url.path}"

    async def start(self) -> None:
        """Load the keys once and start the background refresh. A ``jwks_file`` that cannot be read
        is a ``ConfigError`` (a mistake to fix before serving); an unreachable ``jwks_url`` is logged
        and retried (the IdP may come up later; until then every token is refused)."""
        if self._config.jwks_url is not None:
            timeout = aiohttp.ClientTimeout(total=self._config.jwks_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        ok = await self._load()
        if not ok and self._config.jwks_file is not None:
            await self.aclose()
            raise ConfigError(f"server.jwt.jwks_file: cannot load {self._config.jwks_file}")
        self._refresher = asyncio.create_task(self._refresh_forever(), name="ccrouter-jwks-refresh")

    async def aclose(self) -> None:
        """Stop refreshing and close the HTTP session."""
        for task in (self._refresher, self._inflight):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresher = self._inflight = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def refetch(self) -> bool:
        """Reload now unless a load started less than ``jwks_min_refresh_s`` ago; callers that
        arrive while a load runs wait for that one. True when the key set changed."""
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        if self._clock() - self._last_attempt < self._config.jwks_min_refresh_s:
            return False
        self._inflight = asyncio.create_task(self._load())
        try:
            return await asyncio.shield(self._inflight)
        finally:
            self._inflight = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.jwks_refresh_s)
            await self._load()

    async def _load(self) -> bool:
        """Fetch and install the key set; on failure keep the last good one. True if it changed."""
        self._last_attempt = self._clock()
        self.fetches += 1
        try:
            body = await self._fetch()
            keys = await asyncio.to_thread(parse_jwks, body, self._allowed)
        except (JwksError, OSError, aiohttp.ClientError, TimeoutError) as exc:
            self._log_failure(exc)
            return False
        changed = body != self._body
        self.keys, self._body = keys, body
        if changed:
            self.generation += 1
        return changed

    async def _fetch(self) -> bytes:
        if self._config.jwks_file is not None:
            return await asyncio.to_thread(_read_bounded, Path(self._config.jwks_file))
        if self._session is None or self._config.jwks_url is None:
            raise JwksError("the JWKS client is closed")
        async with self._session.get(self._config.jwks_url, allow_redirects=False) as response:
            if response.status != 200:
                raise JwksError(f"the JWKS endpoint answered {response.status}")
            if (response.content_length or 0) > MAX_JWKS_BYTES:
                raise JwksError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
            return bytes(body)

    def _log_failure(self, exc: BaseException) -> None:
        now = self._clock()
        if now - self._last_logged < _LOG_EVERY_S:
            self._suppressed += 1
            return
        reason = str(exc) if isinstance(exc, JwksError) else type(exc).__name__
        kept = "keeping the last good keys" if self.keys else "no keys yet: every token is refused"
        more = f" ({self._suppressed} more failures since the last report)" if self._suppressed else ""
        log.warning("JWKS from %s could not be loaded: %s; %s%s", self.source, reason, kept, more)
        self._last_logged = now
        self._suppressed = 0
