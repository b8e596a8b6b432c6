"""The built-in image agent (``router.image_agent``), registered as a target step."""

from __future__ import annotations

from collections.abc import Callable

from ccrouter.config import Settings
from ccrouter.exchange import TargetStep
from ccrouter.hookspecs import hookimpl
from ccrouter.images import ImageAgent

__all__ = ["register_target_steps"]


@hookimpl
def register_target_steps(register: Callable[[TargetStep], None], settings: Settings) -> None:
    if settings.router.image_agent is not None:
        register(ImageAgent(settings.router))
