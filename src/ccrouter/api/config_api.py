"""The running configuration: GET /api/config (secrets masked) and POST /api/config/reload (both need
the admin token, ``ccrouter.api.auth``), and the ``x-ccrouter-config-version`` header on every
response."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from aiohttp import web
from pydantic import SecretStr

from ccrouter.api.state import GATEWAY, SERVICES
from ccrouter.config import Settings
from ccrouter.telemetry.redact import Redactor, secrets_of

__all__ = ["VERSION_HEADER", "masked_settings", "routes", "version_header"]

VERSION_HEADER = "x-ccrouter-config-version"
MASK = "********"
# Values under these keys are credentials whatever their type (``providers[].headers``).
_SECRET_MAPS = frozenset({"headers"})


def _mask_url(url: str) -> str | None:
    """``url`` with its password and query values masked; None when it is not a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{parts.username or ''}:{MASK}@{host}"
    query = "&".join(f"{pair.partition('=')[0]}={MASK}" for pair in parts.query.split("&") if pair)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, SecretStr):
        shown = _mask_url(value.get_secret_value())
        return shown if shown is not None else MASK
    if isinstance(value, dict):
        if key in _SECRET_MAPS:
            return {name: MASK for name in value}
        return {name: _mask(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(item, key) for item in value]
    if isinstance(value, str) and "@" in value:
        shown = _mask_url(value)
        return shown if shown is not None else value
    return value


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready data with every secret masked: ``SecretStr`` fields, header
    values, passwords in URLs; and any configured secret found elsewhere, redacted."""
    masked: dict[str, Any] = Redactor(secrets_of(settings)).value(_mask(settings.model_dump(mode="python")))
    return masked


async def show_config(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    services = gateway.current
    body = {
        "version": services.version,
        "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(services.loaded_at)),
        "config_path": str(gateway.config_path) if gateway.config_path is not None else None,
        "last_reload": gateway.last.to_dict() if gateway.last is not None else None,
        "settings": masked_settings(services.settings),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def reload_config(request: web.Request) -> web.Response:
    """Reload from the config file now. A refused reload answers 422 (409 without a config file)
    in the Anthropic error envelope, the reload's result beside it."""
    gateway = request.app[GATEWAY]
    result = await gateway.reload()
    if result.status != "refused":
        return web.Response(body=orjson.dumps(result.to_dict()), content_type="application/json")
    status = 409 if gateway.config_path is None else 422
    body = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": f"configuration reload refused: {result.error}",
        },
        "reload": result.to_dict(),
    }
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def version_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the version of the configuration that served the request."""
    services = request.get(SERVICES)
    if services is None:
        gateway = request.app.get(GATEWAY)
        if gateway is None:  # before the lifespan has started (nothing is served yet)
            return
        services = gateway.current
    response.headers[VERSION_HEADER] = services.version


def routes() -> list[web.RouteDef]:
    return [web.get("/api/config", show_config), web.post("/api/config/reload", reload_config)]
