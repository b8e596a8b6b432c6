"""The running configuration: GET /api/config (secrets masked by ``ccrouter.config_view``) and POST
/api/config/reload (roles viewer and operator, ``ccrouter.api.auth``; a reload is audited), and the
``x-ccrouter-config-version`` header on every response."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from ccrouter.api.observe import PRINCIPAL
from ccrouter.api.state import GATEWAY, SERVICES
from ccrouter.auth.audit import actor_of
from ccrouter.config_view import masked_settings
from ccrouter.reload import ReloadResult
from ccrouter.services import Services
from ccrouter.telemetry.redact import Redactor, secrets_of

__all__ = ["VERSION_HEADER", "routes", "version_header"]

VERSION_HEADER = "x-ccrouter-config-version"


def _shown(result: ReloadResult, services: Services) -> dict[str, Any]:
    """A reload's result with any configured secret its error echoes (a provider's) redacted."""
    shown: dict[str, Any] = Redactor(s.strip() for s in secrets_of(services.settings)).value(result.to_dict())
    return shown


async def show_config(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    services = gateway.current
    body = {
        "version": services.version,
        "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(services.loaded_at)),
        "config_path": str(gateway.config_path) if gateway.config_path is not None else None,
        "last_reload": _shown(gateway.last, services) if gateway.last is not None else None,
        "settings": masked_settings(services.settings),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def reload_config(request: web.Request) -> web.Response:
    """Reload from the config file now. A refused reload answers 422 (409 without a config file)
    in the Anthropic error envelope, the reload's result beside it."""
    gateway = request.app[GATEWAY]
    result = await gateway.reload()
    # The audit trail's row goes to the store every configuration shares, after the reload's answer is
    # known (the row says whether it applied).
    await gateway.current.auditor.record(
        "config.reloaded",
        actor=actor_of(request.get(PRINCIPAL)),
        outcome="ok" if result.status != "refused" else "failed",
        address=request.remote,
        detail={"status": result.status, "version": result.version},
    )
    shown = _shown(result, gateway.current)
    if result.status != "refused":
        return web.Response(body=orjson.dumps(shown), content_type="application/json")
    status = 409 if gateway.config_path is None else 422
    body = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": f"configuration reload refused: {shown.get('error')}",
        },
        "reload": shown,
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
