"""Whether Redis answers, as last seen, with one log line when it stops and one when it is back."""

from __future__ import annotations

import logging

__all__ = ["Outage", "redis_errors"]

log = logging.getLogger("ccrouter.resilience")


class Outage:
    """``failed`` when a Redis call fails, ``answered`` when one succeeds. ``up`` says which came last;
    the warning is logged once per outage, whatever the number of failed calls."""

    __slots__ = ("_fallback", "up")

    def __init__(self, fallback: str) -> None:
        # What the instance does meanwhile, for the log line.
        self._fallback = fallback
        self.up = True

    def failed(self, exc: BaseException) -> None:
        if self.up:
            # The exception's type only: a driver's message may quote the connection string.
            log.warning("Redis unreachable (%s); %s until it is back", type(exc).__name__, self._fallback)
        self.up = False

    def answered(self) -> bool:
        """Note a successful call; True when it ends an outage."""
        if self.up:
            return False
        self.up = True
        log.info("Redis is back: %s no more", self._fallback)
        return True


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a failed Redis call raises (imported late: redis is needed only with state.redis_url)."""
    from redis.exceptions import RedisError

    return (RedisError, OSError)
