"""An example ccrouter plugin: the response header ``x-example-plugin: 1`` on every ``/v1/messages``
response (streamed or not, errors too).

It implements one hook of ``ccrouter.hookspecs``, ``register_response_hooks``: ccrouter calls it
once when the configuration is loaded, and calls the function it registers as each response is
about to start, with the exchange (what the gateway knows of the request) and the response headers.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING

from ccrouter.hookspecs import hookimpl

if TYPE_CHECKING:
    from ccrouter.config import Settings
    from ccrouter.exchange import Exchange, ResponseHook

__version__ = "0.1.0"

HEADER = "x-example-plugin"


def add_header(exchange: Exchange, headers: MutableMapping[str, str]) -> None:
    """A response hook: runs for every response, so keep it fast; ``exchange.endpoint`` says which
    API answered ("messages" is ``/v1/messages``)."""
    if exchange.endpoint == "messages":
        headers[HEADER] = "1"


@hookimpl
def register_response_hooks(register: Callable[[ResponseHook], None], settings: Settings) -> None:
    register(add_header)
