"""What the request handlers share, built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from ccrouter.config import Settings
from ccrouter.dispatch import Dispatcher
from ccrouter.exchange import Observer
from ccrouter.tokens import TokenCounter

__all__ = ["STATE", "AppState"]


@dataclass(slots=True)
class AppState:
    settings: Settings
    dispatcher: Dispatcher
    counter: TokenCounter
    simulated: bool
    started_at: float
    observers: list[Observer] = field(default_factory=list)


STATE: web.AppKey[AppState] = web.AppKey("ccrouter_state", AppState)
