"""Where the router sends a request, and why: the ``RouteDecision`` every routing rule returns, kept
apart from the rules (``scenarios``) so that what reads a decision (``candidates``, ``rules``,
dispatch) does not import them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RouteDecision"]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    scenario: str
    provider: str
    model: str
    reason: str
    # The request's token count, when a long-context route made counting worthwhile: exact when the
    # count itself made the route long context, else perhaps an estimate, but one that compares with
    # the long-context threshold, SESSION_MIN_TOKENS and every automatic candidate's context window
    # as the exact count would (see ``scenarios.Router._tokens``).
    tokens: int | None = None
