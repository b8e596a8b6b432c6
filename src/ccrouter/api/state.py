"""Where the handlers find the gateway and the services their request is served on."""

from __future__ import annotations

from aiohttp import web

from ccrouter.plugins import Registry
from ccrouter.reload import Gateway
from ccrouter.services import Services

__all__ = ["GATEWAY", "REGISTRY", "SERVICES", "services_of"]

# The running services and their reloads (``ccrouter.reload``), set by the app's lifespan.
GATEWAY: web.AppKey[Gateway] = web.AppKey("ccrouter_gateway", Gateway)
# What the plugins registered (built-ins included), loaded once per process.
REGISTRY: web.AppKey[Registry] = web.AppKey("ccrouter_registry", Registry)
# The services a request started on (``observe_middleware`` sets it): it keeps them to its end,
# whatever reload happens meanwhile.
SERVICES: web.RequestKey[Services] = web.RequestKey("ccrouter_services", Services)


def services_of(request: web.Request) -> Services:
    return request[SERVICES]
