"""A fake Google Vertex AI and a fake Google OAuth token endpoint, for the ``vertex`` provider type.

::

    async with FakeGoogleAuth(expires_in=3) as auth, FakeVertex(auth) as vertex:
        info = auth.service_account()        # a service-account key whose token_uri is the fake
        ...  # write info as JSON, point credentials_file at it and base_url at vertex.url
        vertex.script(Reply(text="hi"))      # as with FakeUpstream
        auth.fail(400)                       # the next token exchange fails

``FakeVertex`` speaks ``rawPredict`` / ``streamRawPredict`` for Claude (the Anthropic wire, checking
the Vertex body: ``anthropic_version`` set, no ``model``) and ``generateContent`` /
``streamGenerateContent`` for Gemini, and accepts only a bearer token the token endpoint issued that
has not expired nor been revoked (else 401 in Google's error format). ``FakeGoogleAuth`` takes the
JWT-bearer grant a service account signs (RFC 7523), checks its signature against the account's
public key, and issues short-lived tokens.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ccrouter.testing import wire_gemini
from ccrouter.testing.fake_upstream import FakeUpstream
from ccrouter.testing.script import Fault

__all__ = ["FakeGoogleAuth", "FakeVertex", "IssuedToken"]

_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# google-auth signs its assertion for this audience whatever the key file's token_uri says.
_GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_RAW_ACTIONS = frozenset({"rawPredict", "streamRawPredict"})
_VERTEX_VERSION = "vertex-2023-10-16"


@dataclass
class IssuedToken:
    """An access token the fake issued: to whom, until when (``time.time()``), revoked or not."""

    value: str
    account: str
    expires_at: float
    revoked: bool = False

    def valid(self, now: float | None = None) -> bool:
        return not self.revoked and (time.time() if now is None else now) < self.expires_at


class FakeGoogleAuth:
    """The token endpoint (``POST /token``) of a fake Google identity service, on loopback."""

    def __init__(self, *, expires_in: float = 3600.0) -> None:
        self.expires_in = expires_in
        self.issued: list[IssuedToken] = []
        self.exchanges = 0  # token requests received, failed ones included
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._failures: list[tuple[int, str]] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the fake token endpoint is not started")
        return self._url

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    def service_account(
        self, email: str = "ccrouter-test@fake-project.iam.gserviceaccount.com"
    ) -> dict[str, Any]:
        """A new service-account key file's content (a fresh RSA key) that this endpoint honours."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._keys[email] = private.public_key()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": email,
            "client_id": "100000000000000000000",
            "auth_uri": self.url + "/auth",
            "token_uri": self.token_uri,
        }

    def fail(self, status: int, error: str = "invalid_grant", *, times: int = 1) -> None:
        """Answer the next ``times`` token requests with ``status`` and OAuth error ``error``."""
        self._failures.extend([(status, error)] * times)

    def revoke_all(self) -> None:
        """Every token issued so far stops being accepted (a revoked key, a rotated account)."""
        for token in self.issued:
            token.revoked = True

    def valid(self, value: str) -> bool:
        return any(token.value == value and token.valid() for token in self.issued)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            return self.url
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/token", self._token)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner, self._url = self._runner, None, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeGoogleAuth:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _token(self, request: web.Request) -> web.Response:
        self.exchanges += 1
        form = await request.post()
        if self._failures:
            status, error = self._failures.pop(0)
            return _oauth_error(status, error, "injected failure")
        if form.get("grant_type") != _JWT_GRANT:
            return _oauth_error(400, "unsupported_grant_type", "only the JWT bearer grant is served")
        assertion = form.get("assertion")
        if not isinstance(assertion, str):
            return _oauth_error(400, "invalid_request", "no assertion")
        account = self._verify(assertion)
        if account is None:
            return _oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        token = IssuedToken(f"ya29.fake-{secrets.token_urlsafe(24)}", account, time.time() + self.expires_in)
        self.issued.append(token)
        body = {"access_token": token.value, "expires_in": self.expires_in, "token_type": "Bearer"}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _verify(self, assertion: str) -> str | None:
        """The account whose key signed ``assertion`` for the cloud-platform scope; None: refused."""
        try:
            account = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
            key = self._keys.get(account) if isinstance(account, str) else None
            if key is None:
                return None
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=[self.token_uri, _GOOGLE_TOKEN_AUDIENCE],
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        if _CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
            return None
        return str(account)


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    body = orjson.dumps({"error": error, "error_description": description})
    return web.Response(status=status, body=body, content_type="application/json")


class FakeVertex(FakeUpstream):
    """Vertex AI's Claude and Gemini endpoints on loopback, with ``FakeUpstream``'s script and faults.

    ``auth``: tokens it issued are accepted while valid; ``tokens``: static tokens also accepted.
    Neither: any bearer token is (but one must be sent)."""

    def __init__(
        self, auth: FakeGoogleAuth | None = None, *, tokens: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.auth = auth
        self.static_tokens = set(tokens)

    def bearer_tokens(self) -> list[str]:
        """The distinct bearer tokens the recorded requests carried, in the order first seen."""
        seen: dict[str, None] = {}
        for record in self.requests:
            value = record.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if value:
                seen.setdefault(value, None)
        return list(seen)

    def _authorised(self, request: web.Request) -> bool:
        if request.path.startswith("/_fake/"):
            return True
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        value = header.removeprefix("Bearer ").strip()
        if self.auth is None and not self.static_tokens:
            return bool(value)
        return value in self.static_tokens or (self.auth is not None and self.auth.valid(value))

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{target}",
            self._raw_predict,
        )
        return app

    async def _raw_predict(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].partition(":")
        if action not in _RAW_ACTIONS:
            return web.Response(status=404, body=wire_gemini.error_body(404), content_type="application/json")
        body = await _json_body(request)
        problem = _vertex_body_problem(body)
        if problem is not None:
            record, seq = await self._record(request, "anthropic", model=model, stream=False)
            return self._status(record, seq, Fault("status", status=400, body=_google_error(400, problem)))
        return await self._generate(request, "anthropic", model=model, stream=action == "streamRawPredict")


async def _json_body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None


def _vertex_body_problem(body: Any) -> str | None:
    """What Vertex would refuse in a Claude request body (None: nothing)."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if "model" in body:
        return "model: Extra inputs are not permitted (the model is named by the URL)"
    if body.get("anthropic_version") != _VERTEX_VERSION:
        return f"anthropic_version: must be {_VERTEX_VERSION!r}"
    return None


def _google_error(status: int, message: str) -> bytes:
    return orjson.dumps({"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}})
