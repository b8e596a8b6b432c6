"""A fake HashiCorp Vault on a free loopback port: the three calls ``${vault:path#field}`` makes.

No real Vault dev server runs here: Debian packages no Vault, and PyPI's ``vault-dev`` (0.1.1) only
downloads HashiCorp's binary from their release site when first used, which an offline machine cannot.
So this fake answers, over real HTTP, exactly the exchanges of Vault's documented API, with the bodies
of its documentation's samples (hashicorp/vault, ``website/content/api-docs/``):

- ``GET /v1/{mount}/data/{path}``: KV v2 "Read secret version" (``secret/kv/kv-v2.mdx``), the
  ``data.data`` and ``data.metadata`` of the latest version; 404 ``{"errors": []}`` when absent;
- ``POST /v1/auth/approle/login``: "Login with AppRole" (``auth/approle.mdx``), a new client token in
  ``auth.client_token``; 400 ``{"errors": ["invalid role or secret ID"]}`` for wrong credentials;
- ``GET /v1/auth/token/lookup-self``: "Lookup a token (self)" (``auth/token.mdx``).

Every call but the login needs a known ``X-Vault-Token`` (else 403 ``{"errors": ["permission
denied"]}``, as Vault answers); errors have Vault's ``{"errors": [...]}`` shape (``index.mdx``). The
``X-Vault-Namespace`` of each request is recorded. A test changes a secret with ``put`` (a new version)::

    async with FakeVault(token="root") as vault:
        vault.put("ccrouter/anthropic", {"api_key": "sk-1"})
        ...  # VAULT_ADDR=vault.url VAULT_TOKEN=root
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

__all__ = ["FakeVault", "VaultCall"]

_MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class VaultCall:
    """One request as the fake received it (never its token)."""

    method: str
    path: str
    namespace: str | None
    status: int


@dataclass(slots=True)
class _Version:
    data: dict[str, Any]
    version: int
    created: str


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _json(body: Any, status: int = 200) -> web.Response:
    # Exactly ``application/json``, no charset, as Vault sends it (hvac reads an error's ``errors``
    # only from a response of exactly that type).
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _errors(status: int, *errors: str) -> web.Response:
    return _json({"errors": list(errors)}, status)


def _envelope(data: Any = None, auth: Any = None) -> dict[str, Any]:
    """The fields every Vault response carries around ``data`` or ``auth``."""
    return {
        "request_id": secrets.token_hex(8),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": auth,
    }


class FakeVault:
    """``token``: a token accepted from the start; ``role_id``/``secret_id``: the AppRole whose login
    issues new tokens; ``mount``: where the KV v2 engine is mounted."""

    def __init__(
        self,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        mount: str = "secret",
    ) -> None:
        self.mount = mount.strip("/")
        self.calls: list[VaultCall] = []
        self._tokens: set[str] = {token} if token else set()
        self._approle = (role_id, secret_id) if role_id and secret_id else None
        self._secrets: dict[str, _Version] = {}
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the fake Vault is not started")
        return self._url

    def put(self, path: str, data: dict[str, Any]) -> int:
        """Write a new version of the secret at ``path``; returns its version number."""
        path = path.strip("/")
        previous = self._secrets.get(path)
        version = previous.version + 1 if previous else 1
        self._secrets[path] = _Version(dict(data), version, _now())
        return version

    def revoke(self, token: str) -> None:
        """Stop accepting ``token`` (the next call with it gets 403)."""
        self._tokens.discard(token)

    def reads(self, path: str) -> int:
        """How many KV reads asked for ``path``."""
        wanted = f"/v1/{self.mount}/data/{path.strip('/')}"
        return sum(1 for call in self.calls if call.method == "GET" and call.path == wanted)

    # ------------------------------------------------------------------ serving

    async def start(self, host: str = "127.0.0.1") -> str:
        """Listen on a free port of ``host`` (loopback) and return the base URL (``VAULT_ADDR``)."""
        if self._runner is None:
            runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            await web.TCPSite(runner, host, 0).start()
            self._runner = runner
            bound_host, bound_port = runner.addresses[0][:2]
            self._url = f"http://{bound_host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner, self._url = self._runner, None, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeVault:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY, middlewares=[self._record])
        app.add_routes(
            [
                web.post("/v1/auth/approle/login", self._login),
                web.get("/v1/auth/token/lookup-self", self._lookup_self),
                web.get(f"/v1/{self.mount}/data/{{path:.+}}", self._read),
            ]
        )
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:  # an unknown path: Vault's 404 shape
            response = _errors(exc.status)
        namespace = request.headers.get("X-Vault-Namespace")
        self.calls.append(VaultCall(request.method, request.path, namespace, response.status))
        return response

    def _token(self, request: web.Request) -> str | None:
        token = request.headers.get("X-Vault-Token")
        return token if token in self._tokens else None

    async def _login(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _errors(400, "failed to parse JSON input")
        offered = (body.get("role_id"), body.get("secret_id")) if isinstance(body, dict) else None
        if self._approle is None or offered != self._approle:
            return _errors(400, "invalid role or secret ID")
        token = f"hvs.{secrets.token_urlsafe(18)}"
        self._tokens.add(token)
        auth = {
            "renewable": True,
            "lease_duration": 1200,
            "metadata": None,
            "token_policies": ["default"],
            "accessor": secrets.token_hex(12),
            "client_token": token,
        }
        return _json(_envelope(auth=auth))

    async def _lookup_self(self, request: web.Request) -> web.Response:
        token = self._token(request)
        if token is None:
            return _errors(403, "permission denied")
        now = int(time.time())
        data = {
            "accessor": secrets.token_hex(12),
            "creation_time": now,
            "creation_ttl": 2764800,
            "display_name": "token",
            "entity_id": "",
            "expire_time": None,
            "explicit_max_ttl": 0,
            "id": token,
            "identity_policies": [],
            "issue_time": _now(),
            "meta": None,
            "num_uses": 0,
            "orphan": True,
            "path": "auth/token/create",
            "policies": ["default"],
            "renewable": True,
            "ttl": 2764790,
        }
        return _json(_envelope(data=data))

    async def _read(self, request: web.Request) -> web.Response:
        if self._token(request) is None:
            return _errors(403, "permission denied")
        found = self._secrets.get(request.match_info["path"].strip("/"))
        if found is None:
            return _errors(404)
        metadata = {
            "created_time": found.created,
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": found.version,
        }
        return _json(_envelope(data={"data": dict(found.data), "metadata": metadata}))
