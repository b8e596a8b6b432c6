"""Single sign-on tokens: ``Authorization: Bearer <JWT>`` verified against the IdP's JWKS.

``JwtVerifier.verify`` refuses, with a short ``AuthenticationError`` that never repeats the token: a
token over ``max_token_bytes`` (before any parsing), broken base64 or JSON, an algorithm outside
``algorithms`` (so ``alg: none`` and every HS* token: a JWKS public key is never an HMAC secret), an
unknown key id (after one rate-limited refetch of the JWKS, ``ccrouter.auth.jwks``), a bad
signature, a wrong ``iss`` or ``aud``, a missing ``exp`` or ``sub``, ``exp``/``nbf``/``iat`` outside
``leeway_s``, a missing user claim, and a token whose roles map to nothing when ``default_role`` is
None.

Roles: the ``role_claim`` (a string or a list of strings, such as groups) is looked up in
``role_map`` and the highest mapped role wins; without a match the token gets ``default_role``. Only
``role_map`` grants roles: a claim value that happens to be a role name ("admin") maps to nothing
unless ``role_map`` lists it, because the IdP's group names are not ours to trust (whoever can name
a group at the IdP would otherwise choose their gateway role).

Verified tokens are cached by a hash of the token (bounded LRU; each entry is dropped at ``exp``
plus ``leeway_s``, the moment a fresh check would refuse it, and those of a key the IdP withdrew
when the JWKS changes), so a repeated token costs a hash and a dict lookup (about 2 us); refusals
are cached for a few seconds (bounded too, and forgotten when the JWKS changes), so a flood of one
bad token is cheap. A signature check is CPU only (no I/O): about 0.15 ms for RS256 or ES256.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from ccrouter.auth.jwks import JwksKeys
from ccrouter.auth.roles import ROLES, Principal, Role
from ccrouter.config import JwtConfig
from ccrouter.errors import AuthenticationError

__all__ = ["JwtStats", "JwtVerifier"]

_CACHE_SIZE = 10_000
_REFUSAL_CACHE_SIZE = 1_024
_REFUSAL_TTL_S = 5.0
# The longest subject, user or team accepted (they become ids in the ledger and the audit trail).
_MAX_CLAIM = 256
_MAX_ROLE_VALUES = 256
_RANK = {role: i for i, role in enumerate(ROLES)}
# Three base64url segments; the signature is empty for alg "none" (refused later, with its reason).
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

# PyJWT's refusals -> our messages (its own may quote header or claim values).
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt_errors.InvalidIssuerError, "token issuer not accepted"),
    (jwt_errors.InvalidAudienceError, "token audience not accepted"),
    (jwt_errors.InvalidSignatureError, "token signature invalid"),
    (jwt_errors.InvalidAlgorithmError, "token algorithm not allowed"),
    (jwt_errors.DecodeError, "malformed token"),
)


@dataclass(slots=True)
class JwtStats:
    """Counters for metrics and tests: signature checks made, cache hits, cached refusals served."""

    checks: int = 0
    hits: int = 0
    refusal_hits: int = 0


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    kid: str | None
    until: float


def _digest(token: str) -> bytes:
    return hashlib.blake2b(token.encode(), digest_size=16).digest()


def _number(value: Any) -> float | None:
    """A finite number, else None: JSON as PyJWT reads it allows NaN and Infinity (NaN compares as
    neither expired nor valid) and integers of any length (``float`` overflows on them)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class JwtVerifier:
    """Verifies ``server.jwt`` tokens; ``start`` before use, ``aclose`` at shutdown."""

    def __init__(self, config: JwtConfig, *, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock
        self.jwks = JwksKeys(config, clock=clock)
        self.stats = JwtStats()
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._refused: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._generation = 0
        self._require = ["exp", "iss", "aud", "sub"]
        self._options: Any = {
            "require": self._require,
            # Times are checked against our own clock (``_check_times``), with the same leeway.
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        }

    async def start(self) -> None:
        """Load the JWKS and start refreshing it (``JwksKeys.start``)."""
        await self.jwks.start()

    async def aclose(self) -> None:
        await self.jwks.aclose()

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """Whether ``token`` has a JWT's shape (three base64url segments): cheap, no decoding."""
        return token.count(".") == 2 and _SHAPE.fullmatch(token) is not None

    async def verify(self, token: str) -> Principal:
        """The token's principal, or ``AuthenticationError`` saying briefly why not."""
        if len(token) > self._config.max_token_bytes or not token.isascii():
            raise AuthenticationError("token too large" if token.isascii() else "malformed token")
        self._sync_generation()
        digest = _digest(token)
        now = self._clock()
        cached = self._verified.get(digest)
        if cached is not None:
            if now < cached.until:
                self._verified.move_to_end(digest)
                self.stats.hits += 1
                return cached.principal
            del self._verified[digest]
        refused = self._refused.get(digest)
        if refused is not None:
            if now < refused[1]:
                self.stats.refusal_hits += 1
                raise AuthenticationError(refused[0])
            del self._refused[digest]
        try:
            verified = await self._verify(token)
        except AuthenticationError as exc:
            self._remember_refusal(digest, exc.message)
            raise
        self._verified[digest] = verified
        if len(self._verified) > _CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified.principal

    async def _verify(self, token: str) -> _Verified:
        self.stats.checks += 1
        try:
            header = jwt.get_unverified_header(token)
        except jwt_errors.InvalidTokenError:  # bad base64 or JSON, a header that is not an object
            raise AuthenticationError("malformed token") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._config.algorithms:
            raise AuthenticationError("token algorithm not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("malformed token")
        kid, key = await self._key(kid, algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._config.audience,
                issuer=self._config.issuer,
                options=self._options,
            )
        except jwt_errors.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"token lacks the {exc.claim} claim") from None
        except jwt_errors.InvalidTokenError as exc:
            raise AuthenticationError(_reason(exc)) from None
        expires = self._check_times(claims)
        principal = self._principal(claims, expires)
        return _Verified(principal, kid, expires + self._config.leeway_s)

    async def _key(self, kid: str | None, algorithm: str) -> tuple[str | None, jwt.PyJWK]:
        """The key id and key for ``kid``: a token without a kid may use a one-key JWKS's key."""
        keys = self.jwks.keys
        if not self._has(keys, kid):
            await self.jwks.refetch()  # the IdP may have rotated its keys; rate limited
            self._sync_generation()
            keys = self.jwks.keys
        if kid is None and None not in keys and len(keys) == 1:
            kid = next(iter(keys))
        by_algorithm = keys.get(kid)
        if by_algorithm is None:
            raise AuthenticationError("token key id unknown" if keys else "no signing keys available")
        key = by_algorithm.get(algorithm)
        if key is None:
            raise AuthenticationError("token algorithm does not match its key")
        return kid, key

    @staticmethod
    def _has(keys: Mapping[str | None, object], kid: str | None) -> bool:
        return kid in keys or (kid is None and len(keys) == 1)

    def _check_times(self, claims: Mapping[str, Any]) -> float:
        """``exp`` (required), ``nbf`` and ``iat`` against our clock with ``leeway_s``; the expiry."""
        now, leeway = self._clock(), self._config.leeway_s
        expires = _number(claims["exp"])
        if expires is None:
            raise AuthenticationError("token exp is not a number")
        if now >= expires + leeway:
            raise AuthenticationError("token expired")
        for name, message in (("nbf", "token not yet valid"), ("iat", "token issued in the future")):
            if name not in claims:
                continue
            when = _number(claims[name])
            if when is None:
                raise AuthenticationError(f"token {name} is not a number")
            if when > now + leeway:
                raise AuthenticationError(message)
        return expires

    def _principal(self, claims: Mapping[str, Any], expires: float) -> Principal:
        subject = _text(claims, "sub")
        user = _text(claims, self._config.user_claim)
        team = None
        if self._config.team_claim is not None and self._config.team_claim in claims:
            team = _text(claims, self._config.team_claim)
        return Principal(
            kind="jwt",
            id=f"jwt:{subject}",
            role=self._role(claims),
            name=user,
            user=user,
            team=team,
            expires_at=expires,
        )

    def _role(self, claims: Mapping[str, Any]) -> Role:
        """The highest role ``role_map`` gives the role claim's values, else ``default_role``."""
        best: Role | None = None
        name = self._config.role_claim
        values = claims.get(name) if name is not None else None
        if isinstance(values, str):
            values = [values]
        if isinstance(values, list):
            for value in values[:_MAX_ROLE_VALUES]:
                role = self._config.role_map.get(value) if isinstance(value, str) else None
                if role is not None and (best is None or _RANK[role] > _RANK[best]):
                    best = role
        best = best or self._config.default_role
        if best is None:
            raise AuthenticationError("token maps to no role")
        return best

    def _remember_refusal(self, digest: bytes, message: str) -> None:
        self._refused[digest] = (message, self._clock() + _REFUSAL_TTL_S)
        self._refused.move_to_end(digest)
        if len(self._refused) > _REFUSAL_CACHE_SIZE:
            self._refused.popitem(last=False)

    def _sync_generation(self) -> None:
        """When the JWKS changed: forget refusals (an unknown kid may be known now) and the tokens
        of keys the IdP withdrew."""
        if self._generation == self.jwks.generation:
            return
        self._generation = self.jwks.generation
        self._refused.clear()
        keys = self.jwks.keys
        gone = [digest for digest, entry in self._verified.items() if not self._has(keys, entry.kid)]
        for digest in gone:
            del self._verified[digest]


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise AuthenticationError(f"token lacks the {name} claim")
    if len(value) > _MAX_CLAIM:
        raise AuthenticationError(f"token {name} claim is too long")
    return value


def _reason(exc: jwt_errors.InvalidTokenError) -> str:
    for kind, message in _REASONS:
        if isinstance(exc, kind):
            return message
    return "invalid token"
