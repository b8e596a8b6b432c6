"""Pre-dispatch answers: plugins (a cache, a guardrail, a mock) that may answer a routed request
without any provider (``register_pre_dispatch``, the ``PreDispatch`` protocol in ``exchange``).

Dispatch asks them in order, after routing and admission and before any provider call; the first
answer serves the client, as a response or, for a streamed request, as the event stream that
response makes (``response_events``). An answer is recorded like any exchange (the route as decided,
the usage the answer gives) but is not a provider call: no concurrency slot, window, latency sample,
breaker or session usage sees it. The response names who answered (``x-ccrouter-answered-by``).

An answerer that raises a ``CCRouterError`` refuses the request with it (a guardrail's 400); any
other exception, or an answer that is not a ``MessagesResponse``, is a 500 ``api_error`` naming the
plugin, logged with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ccrouter.cascade import header_value
from ccrouter.codecs.events import response_events
from ccrouter.errors import CCRouterError
from ccrouter.exchange import Exchange, PreDispatch
from ccrouter.messages import MessagesRequest, MessagesResponse

__all__ = ["ANSWERED_BY_HEADER", "Answerers", "response_events"]

log = logging.getLogger("ccrouter.dispatch")

ANSWERED_BY_HEADER = "x-ccrouter-answered-by"


class Answerers:
    """The pre-dispatch answerers of one configuration, in order. ``owner`` names the plugin that
    registered one (``plugins.Extensions.owner``)."""

    def __init__(
        self, answerers: Sequence[PreDispatch], owner: Callable[[object], str] | None = None
    ) -> None:
        self._answerers = tuple(answerers)
        self._owner = owner

    async def ask(self, request: MessagesRequest, exchange: Exchange) -> MessagesResponse | None:
        """The first answer, with the exchange and its headers saying who gave it; None: none."""
        for answerer in self._answerers:
            try:
                response = await answerer.answer(request, exchange)
            except CCRouterError:
                raise
            except Exception as exc:  # the boundary: a plugin's own code
                raise self._failed(answerer, f"raised {type(exc).__name__}", exc) from exc
            if response is None:
                continue
            if not isinstance(response, MessagesResponse):
                raise self._failed(answerer, f"answered a {type(response).__name__}", None)
            name = header_value(answerer.name)
            exchange.answered_by = answerer.name
            exchange.route_reason = f"{exchange.route_reason}; answered by {name} (no provider call)"
            exchange.response_headers[ANSWERED_BY_HEADER] = name
            exchange.response_headers["x-ccrouter-route-reason"] = header_value(exchange.route_reason)
            return response
        return None

    def _failed(self, answerer: PreDispatch, what: str, exc: Exception | None) -> CCRouterError:
        name = getattr(answerer, "name", type(answerer).__qualname__)
        plugin = self._owner(answerer) if self._owner is not None else type(answerer).__module__
        log.error("pre-dispatch answer %r of plugin %r %s", name, plugin, what, exc_info=exc)
        return CCRouterError(
            f"pre-dispatch answer {name!r} of plugin {plugin!r} {what} (see the gateway log)"
        )
