"""A fake identity provider for single sign-on tests: signing keys, tokens, and a JWKS server.

::

    key = SigningKey.rsa("k1")
    async with JwksServer([key]) as idp:
        ...  # server.jwt.jwks_url = idp.url
        token = key.mint({"iss": ISSUER, "aud": "ccrouter", "sub": "ada", "exp": time.time() + 60})
        idp.set_keys([SigningKey.ec("k2")])  # rotation at the IdP; idp.fetches counts the GETs

``forge`` builds the tokens a verifier must refuse (``alg: none``, an HMAC signed with a public key
as the secret, any header) by hand, since PyJWT will not sign those.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

__all__ = ["JwksServer", "SigningKey", "b64url", "forge", "jwks_document"]

JWKS_PATH = "/.well-known/jwks.json"


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs encode each segment."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """A private signing key with its key id and algorithm; ``jwk`` is its public half."""

    kid: str
    alg: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def rsa(cls, kid: str, alg: str = "RS256") -> SigningKey:
        """A new 2048-bit RSA key (RS256 by default, or PS256...)."""
        return cls(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        """A new P-256 key for ES256."""
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self, *, with_alg: bool = True) -> dict[str, Any]:
        """The public key as a JWK (``use: sig``, ``kid``, and ``alg`` unless ``with_alg`` is off)."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        data.update(kid=self.kid, use="sig")
        if with_alg:
            data["alg"] = self.alg
        return data

    def public_pem(self) -> bytes:
        """The public key in PEM (what an HS/RS confusion attack uses as the HMAC secret)."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(self, claims: dict[str, Any], *, kid: str | None = "", **headers: Any) -> str:
        """A token of ``claims`` signed by this key. ``kid``: "" (default) this key's id, None none,
        or another id; ``headers`` are added to the header."""
        extra = dict(headers)
        if kid == "":
            extra["kid"] = self.kid
        elif kid is not None:
            extra["kid"] = kid
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=extra or None)


def forge(header: dict[str, Any], claims: dict[str, Any], *, hmac_secret: bytes | None = None) -> str:
    """A token built by hand: ``header`` and ``claims`` as given, signed with HMAC-SHA-256 by
    ``hmac_secret`` when set, else with an empty signature (``alg: none``)."""
    signing_input = f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(claims))}"
    signature = b""
    if hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def jwks_document(keys: list[SigningKey], *, with_alg: bool = True) -> dict[str, Any]:
    """``{"keys": [...]}`` with the public half of each key."""
    return {"keys": [key.jwk(with_alg=with_alg) for key in keys]}


class JwksServer:
    """A loopback JWKS endpoint on a free port: ``url``, ``fetches`` (GETs served), ``set_keys``
    for rotation, ``fail_with(status)`` to make it answer an error until ``fail_with(None)``, and
    ``delay_s`` to make it answer that much later (a slow IdP)."""

    def __init__(self, keys: list[SigningKey], *, host: str = "127.0.0.1") -> None:
        self._host = host
        self._body = orjson.dumps(jwks_document(keys))
        self._status: int | None = None
        self._chunked = False
        self.delay_s = 0.0
        self.fetches = 0
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}{JWKS_PATH}"

    def set_keys(self, keys: list[SigningKey]) -> None:
        """Serve these keys from now on (the IdP rotated)."""
        self._body = orjson.dumps(jwks_document(keys))

    def set_body(self, body: bytes, *, chunked: bool = False) -> None:
        """Serve this exact body (garbage, an oversized document...); ``chunked``: without a
        content-length, so only the client's own count can bound it."""
        self._body = body
        self._chunked = chunked

    def fail_with(self, status: int | None) -> None:
        """Answer every fetch with ``status`` (None: serve the keys again)."""
        self._status = status

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.fetches += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self._status is not None:
            return web.Response(status=self._status, text="unavailable")
        if not self._chunked:
            return web.Response(body=self._body, content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(self._body), 64 * 1024):
            await response.write(self._body[start : start + 64 * 1024])
        await response.write_eof()
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(JWKS_PATH, self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> JwksServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
