"""The JSON a session summary is made of: ``GET /api/sessions/{id}`` answers it and the ledger
fallback rebuilds it, so the line is formatted from one shape whichever answered::

    {"session_id": "...", "source": "gateway" | "ledger",
     "last_request": {"ts", "provider", "model", "route", "scenario", "status", "fallback",
                      "passed_over": ["provider,model", ...], "output_tokens", "duration_s",
                      "first_byte_s", "tokens_per_s", "estimated"} | null,
     "today": {"day": "YYYY-MM-DD", "since", "requests", "spend_usd", "unpriced"},
     "cooling": [{"route", "state", "breaker", "cooldown_s"}, ...]}

Standard library only (the statusline imports it).
"""

from __future__ import annotations

import time

__all__ = ["MAX_PASSED_OVER", "last_request", "today", "tokens_per_s", "valid_session_id"]

# Routes passed over that a summary names (a cascade tries at most a few).
MAX_PASSED_OVER = 4
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
MAX_SESSION_ID = 128


def valid_session_id(value: str) -> bool:
    """A session id the API takes: 1-128 of ``[A-Za-z0-9._:-]`` (Claude Code's are UUIDs)."""
    return 0 < len(value) <= MAX_SESSION_ID and all(ch in _ID_CHARS for ch in value)


def tokens_per_s(output_tokens: int, duration_s: float | None, first_byte_s: float | None) -> float | None:
    """Output speed of an answer: its output tokens over the time from its first byte to its end (a
    stream's generation time), or over the whole duration when the first byte is not known."""
    if output_tokens <= 0 or duration_s is None:
        return None
    span = duration_s
    if first_byte_s is not None and 0 < first_byte_s < duration_s:
        span = duration_s - first_byte_s
    # Below a millisecond the figure is noise (an answer sent in one write).
    return round(output_tokens / span, 1) if span >= 0.001 else None


def last_request(
    *,
    ts: float,
    provider: str,
    model: str,
    scenario: str | None,
    status: int,
    passed_over: list[str],
    output_tokens: int,
    duration_s: float | None,
    first_byte_s: float | None,
    estimated: bool,
) -> dict[str, object]:
    return {
        "ts": ts,
        "provider": provider,
        "model": model,
        "route": f"{provider},{model}",
        "scenario": scenario,
        "status": status,
        "fallback": bool(passed_over),
        "passed_over": passed_over[:MAX_PASSED_OVER],
        "output_tokens": output_tokens,
        "duration_s": duration_s,
        "first_byte_s": first_byte_s,
        "tokens_per_s": tokens_per_s(output_tokens, duration_s, first_byte_s),
        "estimated": estimated,
    }


def today(since: float, requests: int, cost_picos: int, unpriced: int) -> dict[str, object]:
    return {
        "day": time.strftime("%Y-%m-%d", time.localtime(since)),
        "since": since,
        "requests": requests,
        # Pico-dollars (the ledger's unit) to dollars.
        "spend_usd": round(cost_picos / 1e12, 6),
        "unpriced": unpriced,
    }
