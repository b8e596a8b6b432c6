"""Helpers for the resilience tests: a clock advanced by hand, settings with two providers."""

from __future__ import annotations

from typing import Any

from ccrouter.config import Settings


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_settings(routing: dict[str, Any] | None = None, **provider_extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "providers": [
                {
                    "name": "a",
                    "type": "openai",
                    "base_url": "http://127.0.0.1:1/v1",
                    "models": ["m"],
                    **provider_extra,
                },
                {"name": "b", "type": "openai", "base_url": "http://127.0.0.1:1/v1", "models": ["m"]},
            ],
            "router": {"default": "a,m"},
            "routing": routing or {},
        }
    )
