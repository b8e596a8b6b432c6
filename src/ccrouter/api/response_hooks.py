"""Plugins' response hooks (``register_response_hooks``), run as each response is about to start.

Attached to aiohttp's ``on_response_prepare`` signal only when some plugin implements the hook, so
a gateway without such a plugin pays nothing per response. The signal fires for every response,
streamed or not, errors included, just before its head is written: the last moment headers count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from ccrouter.api.observe import EXCHANGE
from ccrouter.exchange import ResponseHook

__all__ = ["RESPONSE_HOOKS", "ResponseHooks"]

log = logging.getLogger("ccrouter.plugins")


class ResponseHooks:
    """The response hooks of the running configuration. ``use`` swaps them (on a reload): the signal
    handler is attached once, before the app starts, and reads whatever is current."""

    def __init__(self, hooks: tuple[ResponseHook, ...], owner: Callable[[object], str]) -> None:
        self.hooks = hooks
        self._owner = owner

    def use(self, hooks: tuple[ResponseHook, ...], owner: Callable[[object], str]) -> None:
        self.hooks, self._owner = hooks, owner

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        exchange = request.get(EXCHANGE)
        if exchange is None:  # refused before the gateway's middlewares ran (aiohttp's own 4xx)
            return
        for hook in self.hooks:
            try:
                hook(exchange, response.headers)
            except Exception:  # the boundary: a plugin's own code must not break the response
                log.exception(
                    "plugin %s: response hook failed on %s; the response goes on without it",
                    self._owner(hook),
                    exchange.request_id,
                )


RESPONSE_HOOKS: web.AppKey[ResponseHooks] = web.AppKey("ccrouter_response_hooks", ResponseHooks)
