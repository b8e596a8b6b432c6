"""Managed keys over the admin API: ``/api/keys`` (list, create), ``/api/keys/{id}`` (show, update,
revoke) and ``/api/keys/{id}/rotate``. Every write goes through the services' ``KeyManager``
(``ccrouter.auth.manage``), which applies the role rules and writes the audit trail; the caller is
the request's ``PRINCIPAL``. A new or rotated key's secret is in that one answer (``"key"``), never
again."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ccrouter.api.common import read_body
from ccrouter.api.observe import PRINCIPAL
from ccrouter.api.state import services_of
from ccrouter.auth.manage import Actor, KeyChanges, KeySpec, parse_input
from ccrouter.auth.roles import Principal
from ccrouter.errors import RequestError, RequestTooLargeError

__all__ = ["MAX_KEY_BODY", "actor_of_request", "json_body", "routes"]

# A key's fields fit in far less; a larger body is refused before it is parsed.
MAX_KEY_BODY = 16_384
# Without a principal (no authentication in front of the route) a caller may only read.
_NOBODY = Principal(kind="anonymous", id=None, role="client")


def actor_of_request(request: web.Request) -> Actor:
    return Actor(request.get(PRINCIPAL, _NOBODY), request.remote)


async def json_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body when ``optional``), bounded in size."""
    if request.content_length is not None and request.content_length > MAX_KEY_BODY:
        raise RequestTooLargeError(f"body: larger than {MAX_KEY_BODY} bytes")
    raw = await read_body(request)
    if len(raw) > MAX_KEY_BODY:
        raise RequestTooLargeError(f"body: larger than {MAX_KEY_BODY} bytes")
    if not raw.strip() and optional:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"body: not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise RequestError("body: expected a JSON object")
    return data


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def list_keys(request: web.Request) -> web.Response:
    manager = services_of(request).key_manager
    return _json({"keys": await manager.views(await manager.list())})


async def create_key(request: web.Request) -> web.Response:
    spec = parse_input(KeySpec, await json_body(request))
    manager = services_of(request).key_manager
    record, secret = await manager.create(spec, actor_of_request(request))
    return _json({**await manager.view(record), "key": secret}, status=201)


async def show_key(request: web.Request) -> web.Response:
    manager = services_of(request).key_manager
    return _json(await manager.view(await manager.get(request.match_info["key_id"])))


async def update_key(request: web.Request) -> web.Response:
    changes = parse_input(KeyChanges, await json_body(request))
    manager = services_of(request).key_manager
    record = await manager.update(request.match_info["key_id"], changes, actor_of_request(request))
    return _json(await manager.view(record))


async def revoke_key(request: web.Request) -> web.Response:
    manager = services_of(request).key_manager
    record = await manager.revoke(request.match_info["key_id"], actor_of_request(request))
    return _json(await manager.view(record))


async def rotate_key(request: web.Request) -> web.Response:
    body = await json_body(request, optional=True)
    unknown = sorted(set(body) - {"grace_s"})
    if unknown:
        raise RequestError(f"{unknown[0][:64]}: unknown field")
    grace = body.get("grace_s")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int | float)):
        raise RequestError("grace_s: expected a number of seconds")
    manager = services_of(request).key_manager
    record, secret = await manager.rotate(
        request.match_info["key_id"], actor_of_request(request), None if grace is None else float(grace)
    )
    return _json({**await manager.view(record), "key": secret})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/keys", list_keys),
        web.post("/api/keys", create_key),
        web.get("/api/keys/{key_id}", show_key),
        web.patch("/api/keys/{key_id}", update_key),
        web.delete("/api/keys/{key_id}", revoke_key),
        web.post("/api/keys/{key_id}/rotate", rotate_key),
    ]
