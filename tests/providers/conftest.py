"""Shared by the provider tests: the project's fake upstream on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ccrouter.testing import FakeUpstream


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream(rate_limit_headers=False)
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()
