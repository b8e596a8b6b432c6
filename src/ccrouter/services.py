"""The services one configuration runs on. (Interface only so far.)"""

from __future__ import annotations

from dataclasses import dataclass

from ccrouter.config import Settings

__all__ = ["ObserverContext"]


@dataclass(frozen=True, slots=True)
class ObserverContext:
    """What ``register_observers`` hooks may use to build their observers."""

    settings: Settings
