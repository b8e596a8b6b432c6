"""What the Firefox and WebKit test clients share: waiting for a page's state."""

from __future__ import annotations

import asyncio
import time
from typing import Any


class Driven:
    """A browser client with ``evaluate``; ``retry`` is its error for a page between two documents."""

    retry: type[Exception] = Exception

    async def evaluate(self, expression: str) -> Any:
        raise NotImplementedError

    async def wait_for(self, expression: str, timeout_s: float = 10.0) -> Any:
        """Waits until ``expression`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        value: Any = None
        while time.monotonic() < deadline:
            try:
                value = await self.evaluate(expression)
            except self.retry as error:  # the page is between two documents (a form sent, a redirect)
                value = error
            if value and not isinstance(value, self.retry):
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"not true within {timeout_s} s: {expression} (last: {value!r})")
