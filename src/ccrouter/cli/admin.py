"""Where ``ccrouter keys`` and ``ccrouter audit`` act: a running gateway's admin API, or the store.

With ``CCROUTER_ADMIN_KEY`` set they call the gateway at ``--url`` (else ``$CCROUTER_URL``, else the
config's ``server.host``/``server.port``) with it as ``Authorization: Bearer``: the gateway applies
its role rules, audits, and every instance sharing its store sees the change at once. Without it
they open the configured store (as ``ccrouter costs`` does) and act as a local admin named
``cli:<os user>`` (whoever can read the config and the store's credentials owns the keys anyway),
then announce the change to the running gateways (``ccrouter.auth.directory.announce``).
Both ways give the same JSON views (``ccrouter.auth.manage.key_view``, ``ccrouter.api.audit``).
"""

from __future__ import annotations

import builtins
import getpass
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ccrouter.errors import CCRouterError

if TYPE_CHECKING:
    from ccrouter.auth.manage import Actor, KeyManager
    from ccrouter.config import Settings
    from ccrouter.store import Store

__all__ = ["ADMIN_KEY_ENV", "URL_ENV", "AdminTarget", "ApiTarget", "StoreTarget", "target_for"]

ADMIN_KEY_ENV = "CCROUTER_ADMIN_KEY"
URL_ENV = "CCROUTER_URL"
_TIMEOUT_S = 30.0
_T = TypeVar("_T")


class AdminTarget(Protocol):
    """The key and audit operations, each answering the API's JSON."""

    async def create(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def list(self) -> list[dict[str, Any]]: ...
    async def show(self, key_id: str) -> dict[str, Any]: ...
    async def update(self, key_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def revoke(self, key_id: str) -> dict[str, Any]: ...
    async def rotate(self, key_id: str, grace_s: float | None) -> dict[str, Any]: ...
    async def audit(self, query: dict[str, str]) -> builtins.list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class ApiTarget:
    """A running gateway's admin API."""

    url: str
    token: str

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> Any:
        import aiohttp
        import orjson

        headers = {"authorization": f"Bearer {self.token}"}
        timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
        data = None if body is None else orjson.dumps(body)
        if data is not None:
            headers["content-type"] = "application/json"
        try:
            # trust_env=False: the gateway is the one named, never reached through a proxy variable.
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
                session.request(
                    method, self.url + path, data=data, params=query, headers=headers
                ) as response,
            ):
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CCRouterError(
                f"cannot reach the gateway at {self.url}: {exc or type(exc).__name__}"
            ) from None
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise CCRouterError(f"{self.url}{path}: answered {status} without JSON") from None
        if status >= 400:
            error = answer.get("error") if isinstance(answer, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise CCRouterError(
                f"the gateway refused ({status}): {message or raw[:200].decode(errors='replace')}"
            )
        return answer

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("POST", "/api/keys", body)
        return answer

    async def list(self) -> list[dict[str, Any]]:
        answer = await self._call("GET", "/api/keys")
        keys: list[dict[str, Any]] = answer["keys"]
        return keys

    async def show(self, key_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", f"/api/keys/{_quoted(key_id)}")
        return answer

    async def update(self, key_id: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("PATCH", f"/api/keys/{_quoted(key_id)}", body)
        return answer

    async def revoke(self, key_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("DELETE", f"/api/keys/{_quoted(key_id)}")
        return answer

    async def rotate(self, key_id: str, grace_s: float | None) -> dict[str, Any]:
        body = {} if grace_s is None else {"grace_s": grace_s}
        answer: dict[str, Any] = await self._call("POST", f"/api/keys/{_quoted(key_id)}/rotate", body)
        return answer

    async def audit(self, query: dict[str, str]) -> builtins.list[dict[str, Any]]:
        answer = await self._call("GET", "/api/audit", query=query)
        entries: list[dict[str, Any]] = answer["entries"]
        return entries


def _quoted(key_id: str) -> str:
    from urllib.parse import quote

    return quote(key_id, safe="")


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """The configured store, opened for one operation and closed after it."""

    settings: Settings
    config_dir: Path

    def _actor(self) -> Actor:
        from ccrouter.auth.manage import Actor
        from ccrouter.auth.roles import Principal

        return Actor(Principal(kind="cli", id=f"cli:{_os_user()}", role="admin"), None)

    async def _with(self, work: Callable[[KeyManager, Store], Awaitable[_T]]) -> _T:
        from ccrouter.auth.audit import Auditor
        from ccrouter.auth.manage import KeyManager
        from ccrouter.store import make_store

        store = make_store(self.settings.store, self.config_dir)
        await store.open()
        try:
            manager = KeyManager(store, Auditor(store), self.settings.server.keys, on_change=self._announce)
            return await work(manager, store)
        finally:
            await store.close()

    async def _announce(self) -> None:
        """Tell running gateways that keys changed: at once through Redis when ``state.redis_url``
        is set (unreachable, or without it: at their next poll of the store, ``server.keys.poll_s``)."""
        state = self.settings.state
        if state.redis_url is not None:
            from ccrouter.auth.directory import announce

            await announce(state.redis_url, state.key_prefix)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        from ccrouter.auth.manage import KeySpec, parse_input

        spec = parse_input(KeySpec, body)

        async def work(manager: KeyManager, store: Store) -> dict[str, Any]:
            record, secret = await manager.create(spec, self._actor())
            return {**await manager.view(record), "key": secret}

        return await self._with(work)

    async def list(self) -> list[dict[str, Any]]:
        async def work(manager: KeyManager, store: Store) -> builtins.list[dict[str, Any]]:
            return await manager.views(await manager.list())

        return await self._with(work)

    async def show(self, key_id: str) -> dict[str, Any]:
        async def work(manager: KeyManager, store: Store) -> dict[str, Any]:
            return await manager.view(await manager.get(key_id))

        return await self._with(work)

    async def update(self, key_id: str, body: dict[str, Any]) -> dict[str, Any]:
        from ccrouter.auth.manage import KeyChanges, parse_input

        changes = parse_input(KeyChanges, body)

        async def work(manager: KeyManager, store: Store) -> dict[str, Any]:
            return await manager.view(await manager.update(key_id, changes, self._actor()))

        return await self._with(work)

    async def revoke(self, key_id: str) -> dict[str, Any]:
        async def work(manager: KeyManager, store: Store) -> dict[str, Any]:
            return await manager.view(await manager.revoke(key_id, self._actor()))

        return await self._with(work)

    async def rotate(self, key_id: str, grace_s: float | None) -> dict[str, Any]:
        async def work(manager: KeyManager, store: Store) -> dict[str, Any]:
            record, secret = await manager.rotate(key_id, self._actor(), grace_s)
            return {**await manager.view(record), "key": secret}

        return await self._with(work)

    async def audit(self, query: dict[str, str]) -> builtins.list[dict[str, Any]]:
        from ccrouter.api.audit import audit_view, parse_limit, parse_since

        since = parse_since(query["since"], "--since") if "since" in query else None
        until = parse_since(query["until"], "--until") if "until" in query else None
        limit = parse_limit(query.get("limit"))

        async def work(manager: KeyManager, store: Store) -> builtins.list[dict[str, Any]]:
            rows = await store.audit_list(
                since=since, until=until, action=query.get("action"), actor=query.get("actor"), limit=limit
            )
            return [audit_view(row) for row in rows]

        return await self._with(work)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return str(os.getuid())


def target_for(config: Path | None, url: str | None) -> tuple[AdminTarget, Settings | None]:
    """The API when ``CCROUTER_ADMIN_KEY`` is set, else the store; and the settings when they were
    read (the API at a known URL needs none)."""
    from ccrouter.cli.common import config_path
    from ccrouter.config_file import load_settings

    token = os.environ.get(ADMIN_KEY_ENV, "").strip()
    path = config_path(config)
    if not token:
        if url:
            raise CCRouterError(f"--url needs the admin key in ${ADMIN_KEY_ENV}")
        settings = load_settings(path)
        return StoreTarget(settings, path.parent), settings
    base = url or os.environ.get(URL_ENV, "").strip()
    if base:
        return ApiTarget(base.rstrip("/"), token), None
    from ccrouter.statusline.state import local_url

    settings = load_settings(path)
    return ApiTarget(local_url(settings.server.host, settings.server.port), token), settings
