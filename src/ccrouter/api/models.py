"""``GET /v1/models`` and ``GET /v1/models/{model_id}``: the configured routes, in the client's shape.

The path exists in both APIs with different bodies, so the client is told apart by its headers:
Anthropic's SDKs (Claude Code among them) always send ``anthropic-version``, and ``x-api-key`` is
Anthropic's own key header; the OpenAI SDK sends ``Authorization: Bearer`` and neither. A request
with neither header gets Anthropic's shape.

- Anthropic's shape (``{data: [{type, id, display_name, created_at}], has_more, first_id,
  last_id}``) lists the picker aliases (``claude-ccr-<provider>-<model>``, ``routing.aliases``):
  Claude Code's gateway model discovery keeps only ids beginning with ``claude``/``anthropic``.
  ``limit`` (1-1000, default 20, as Anthropic's API), ``after_id`` and ``before_id`` page through it.
- OpenAI's shape (``{object: "list", data: [{id, object, created, owned_by}]}``) lists
  ``provider,model`` ids, which is how OpenAI clients name a route; the same parameters apply.

A google-genai client (its key in ``x-goog-api-key`` or ``?key=``; the Python SDK lists ``/v1/models``
since 3.0) gets the Gemini API's ``ListModelsResponse`` (``ccrouter.api.gemini``).

Both kinds of id route the same way, and ``/v1/models/{id}`` finds a route by either. A bad
parameter is a 400, an unknown id a 404, in the client's envelope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import orjson
from aiohttp import web

from ccrouter.api import gemini
from ccrouter.api.errors import error_response
from ccrouter.api.state import services_of
from ccrouter.routing.aliases import ModelRoute

__all__ = ["ClientFormat", "client_format", "get_model", "list_models"]

ClientFormat = Literal["anthropic", "openai", "google"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
_MAX_ID = 512
# Configured models have no creation date; a fixed one keeps the listing stable.
_CREATED_AT = "2025-01-01T00:00:00Z"
_CREATED = 1735689600


class _BadQuery(ValueError):
    pass


def client_format(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> ClientFormat:
    if "x-goog-api-key" in headers or (query is not None and "key" in query):
        return "google"
    if "anthropic-version" in headers or "x-api-key" in headers:
        return "anthropic"
    return "openai" if "authorization" in headers else "anthropic"


def _entry(
    route: ModelRoute, fmt: Literal["anthropic", "openai"], shown_id: str | None = None
) -> dict[str, object]:
    if fmt == "openai":
        return {
            "id": shown_id or route.route,
            "object": "model",
            "created": _CREATED,
            "owned_by": route.provider,
        }
    return {
        "type": "model",
        "id": shown_id or route.alias,
        "display_name": f"{route.model} ({route.provider})",
        "created_at": _CREATED_AT,
    }


def _id_of(route: ModelRoute, fmt: Literal["anthropic", "openai"]) -> str:
    return route.route if fmt == "openai" else route.alias


def _limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= MAX_LIMIT):
        raise _BadQuery(f"limit: expected an integer from 1 to {MAX_LIMIT}, got {raw[:40]!r}")
    return int(raw)


def _page(
    routes: Sequence[ModelRoute], fmt: Literal["anthropic", "openai"], query: Mapping[str, str]
) -> tuple[list[ModelRoute], bool]:
    """One page of ``routes`` and whether more lie beyond it (in the direction of paging)."""
    limit = _limit(query)
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise _BadQuery("after_id and before_id cannot be used together")
    ids = [_id_of(route, fmt) for route in routes]
    if after is not None:
        start = _position(ids, after, "after_id") + 1
        return list(routes[start : start + limit]), start + limit < len(routes)
    if before is not None:
        end = _position(ids, before, "before_id")
        start = max(0, end - limit)
        return list(routes[start:end]), start > 0
    return list(routes[:limit]), limit < len(routes)


def _position(ids: list[str], wanted: str, name: str) -> int:
    try:
        return ids.index(wanted)
    except ValueError:
        raise _BadQuery(f"{name}: no model with id {wanted[:_MAX_ID]!r}") from None


def _json(body: object) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def list_models(request: web.Request) -> web.Response:
    fmt = client_format(request.headers, request.query)
    if fmt == "google":
        return await gemini.list_models(request)
    routes = services_of(request).router.aliases.routes
    try:
        page, more = _page(routes, fmt, request.query)
    except _BadQuery as exc:
        return error_response(fmt, 400, "invalid_request_error", str(exc))
    data = [_entry(route, fmt) for route in page]
    if fmt == "openai":
        return _json({"object": "list", "data": data})
    return _json(
        {
            "data": data,
            "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


async def get_model(request: web.Request) -> web.Response:
    fmt = client_format(request.headers, request.query)
    wanted = request.match_info["model_id"]
    if fmt == "google":
        return gemini.model_response(request, wanted)
    aliases = services_of(request).router.aliases
    found = aliases.resolve(wanted) or next((r for r in aliases.routes if r.route == wanted), None)
    if found is None:
        shown = wanted[:_MAX_ID]
        return error_response(fmt, 404, "not_found_error", f"model {shown!r} is not configured here")
    return _json(_entry(found, fmt, shown_id=wanted))
