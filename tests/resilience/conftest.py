"""Fixtures for the resilience tests."""

from __future__ import annotations

import pytest
from resilience_support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
