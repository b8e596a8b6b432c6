"""A fake upstream served from a background thread, for synchronous code (a CLI test, a script)::

    with running(FakeUpstream(api_key="sk-test")) as fake:
        subprocess.run(["ccrouter", "doctor", ...])   # pointed at fake.url
        fake.requests                                  # what it received

The fake's loop runs in its own daemon thread; the context stops it and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ccrouter.testing.fake_upstream import FakeUpstream

__all__ = ["running"]


@contextmanager
def running(fake: FakeUpstream, *, start_timeout_s: float = 10.0) -> Iterator[FakeUpstream]:
    """Start ``fake`` on a free loopback port in a thread; stop it on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ccrouter-fake-upstream", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(start_timeout_s)
        yield fake
    finally:
        try:
            asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(start_timeout_s)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(start_timeout_s)
            loop.close()
