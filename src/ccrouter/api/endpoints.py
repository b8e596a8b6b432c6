"""The client-facing endpoints, described once.

Each front (``/v1/messages``, ``/v1/chat/completions``...) is one ``Endpoint``, registered through the
``register_endpoints`` hook (ccrouter's own in ``ccrouter.builtins.endpoints``). ``EndpointTable``
gathers them for one app, and every layer reads it: the app registers its routes, the error
middleware answers in its envelope, and the exchange of each request carries its name, which is the
label the metrics and the ledger record. A path that is no endpoint is ``other`` (a client-chosen path
never becomes a label).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from ccrouter.errors import ConfigError

__all__ = ["ENDPOINTS", "OTHER", "Endpoint", "EndpointTable", "Envelope"]

# The error envelope a front's clients read: ``{"type": "error", "error": {...}}`` (Anthropic),
# ``{"error": {"message", "type", "param", "code"}}`` (OpenAI) or ``{"error": {"code", "message",
# "status"}}`` (Google's, for the Gemini API).
Envelope = Literal["anthropic", "openai", "google"]
# The name of every request that matched no endpoint.
OTHER = "other"
# ``{name}`` or ``{name:regex}``, as aiohttp writes them, anywhere in a path.
_VARIABLE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(?::([^{}]+))?\}")


def _pattern(path: str) -> re.Pattern[str]:
    """A regex for a path with variables: ``{name}`` matches within one segment, ``{name:regex}`` its
    regex (as aiohttp's), and the rest is literal (``/v1beta/models/{model}:generateContent``)."""
    out: list[str] = []
    last = 0
    for found in _VARIABLE.finditer(path):
        out.append(re.escape(path[last : found.start()]))
        out.append(f"(?:{found.group(1)})" if found.group(1) else "[^/]+")
        last = found.end()
    out.append(re.escape(path[last:]))
    return re.compile("".join(out) + "$")


def _literal_length(path: str) -> int:
    return len(_VARIABLE.sub("", path))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One client-facing route. ``name`` is the closed label the ledger, the metrics and the request log
    carry ("messages", "chat_completions"...); every request it serves is recorded (a ledger row, the
    metrics, the observers)."""

    method: str
    path: str
    handler: Handler
    name: str
    envelope: Envelope = "anthropic"


class EndpointTable:
    """The endpoints of one app, looked up by path. A later endpoint with the same method and path
    replaces an earlier one (a plugin overriding a built-in)."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        routes: dict[tuple[str, str], Endpoint] = {}
        for endpoint in endpoints:
            if endpoint.name == OTHER or not endpoint.name:
                raise ConfigError(f"endpoint {endpoint.path}: the name {endpoint.name!r} is reserved")
            if not endpoint.path.startswith("/"):
                raise ConfigError(f"endpoint {endpoint.path!r}: a path starts with '/'")
            routes[(endpoint.method.upper(), endpoint.path)] = endpoint
        by_path: dict[str, Endpoint] = {}
        for endpoint in routes.values():
            # Requests are told apart by path alone (the method is aiohttp's business): every method of
            # a path must be recorded and enveloped alike.
            first = by_path.setdefault(endpoint.path, endpoint)
            if (first.name, first.envelope) != (endpoint.name, endpoint.envelope):
                raise ConfigError(
                    f"endpoint {endpoint.path}: {first.method} and {endpoint.method} differ in name "
                    "or envelope"
                )
        self._routes = tuple(routes.values())
        self._by_path = by_path
        # Paths with variables (``/v1/models/{model_id}``), the most literal first: a request for
        # ``/v1beta/models/x:countTokens`` is that endpoint's, not ``/v1beta/models/{model}``'s.
        templates = sorted((path for path in by_path if "{" in path), key=_literal_length, reverse=True)
        self._templates = tuple((_pattern(path), by_path[path]) for path in templates)
        # Longest first: the envelope of a path under an endpoint's (a 404 below it) is that endpoint's.
        self._prefixes = sorted(by_path.values(), key=lambda e: len(e.path), reverse=True)
        self.names = frozenset(endpoint.name for endpoint in self._routes)

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)

    def match(self, path: str) -> Endpoint | None:
        found = self._by_path.get(path)
        if found is None and self._templates:
            found = next((e for pattern, e in self._templates if pattern.match(path)), None)
        return found

    def name(self, path: str) -> str:
        """The label of a request for ``path``: its endpoint's name, else ``other``."""
        endpoint = self.match(path)
        return endpoint.name if endpoint is not None else OTHER

    def envelope(self, path: str) -> Envelope:
        """The error envelope of ``path``: its endpoint's, or that of the endpoint it lies under
        (``/v1/chat/completions/x`` answers a 404 as OpenAI would); Anthropic's for anything else."""
        endpoint = self.match(path)
        if endpoint is not None:
            return endpoint.envelope
        for endpoint in self._prefixes:
            if path.startswith(endpoint.path) and path[len(endpoint.path)] == "/":
                return endpoint.envelope
        return "anthropic"

    def routes(self) -> list[web.RouteDef]:
        # ``web.get`` also answers HEAD, as aiohttp's routes do by default.
        return [
            web.get(e.path, e.handler)
            if e.method.upper() == "GET"
            else web.route(e.method, e.path, e.handler)
            for e in self._routes
        ]


# The table of an app (``create_app`` builds it from the registry).
ENDPOINTS: web.AppKey[EndpointTable] = web.AppKey("ccrouter_endpoints", EndpointTable)
