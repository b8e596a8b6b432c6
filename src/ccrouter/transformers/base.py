"""The transformer interface. (Interface only so far.)"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ccrouter.messages import MessagesRequest, MessagesResponse

__all__ = ["Transformer", "TransformerFactory"]


class Transformer(Protocol):
    name: str

    def request(self, request: MessagesRequest, model: str) -> MessagesRequest: ...

    def response(self, response: MessagesResponse, model: str) -> MessagesResponse: ...


# Built from the options the config gives it (``transformers: [[name, {options}]]``).
TransformerFactory = Callable[[Mapping[str, Any]], Transformer]
