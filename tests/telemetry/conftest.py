"""Logging setup is process-wide (the root logger, structlog's configuration): restore it after."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from ccrouter.config import Settings
from ccrouter.telemetry import setup_logging


@pytest.fixture
def log_capture() -> Iterator[Callable[..., io.StringIO]]:
    root = logging.getLogger()
    level = root.level
    handlers: list[logging.Handler] = []

    def start(settings: Settings, stream: io.StringIO | None = None, **options: Any) -> io.StringIO:
        out = stream if stream is not None else io.StringIO()
        handlers.append(setup_logging(settings, stream=out, **options))
        return out

    yield start
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
