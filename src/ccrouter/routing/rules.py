"""Scenario rules: small objects asked in order until one decides where a request goes.

(Interface only so far: the rules themselves still live in ``routing.scenarios``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ccrouter.messages import MessagesRequest
from ccrouter.routing.decision import RouteDecision

__all__ = ["RoutingRule", "RuleContext"]


@dataclass(slots=True)
class RuleContext:
    """What a rule may consult besides the request (per request)."""

    session_id: str | None


class RoutingRule(Protocol):
    name: str

    async def decide(self, request: MessagesRequest, context: RuleContext) -> RouteDecision | None:
        """A decision, or None to let the next rule decide."""
        ...
