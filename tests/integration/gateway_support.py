"""Shared helpers for the integration tests: gateway settings pointing at a fake upstream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ccrouter.config import Settings

GatewayFactory = Callable[..., Awaitable[str]]

# One provider per wire format, each pointed at the same fake upstream.
WIRES: dict[str, dict[str, Any]] = {
    "openai": {"type": "openai", "suffix": "/v1", "model": "gpt-test"},
    "anthropic": {"type": "anthropic", "suffix": "", "model": "claude-sonnet-4-6"},
    "gemini": {"type": "gemini", "suffix": "/v1beta", "model": "gemini-2.5-flash"},
    "openai_responses": {"type": "openai_responses", "suffix": "/v1", "model": "gpt-5-codex"},
}


def settings_for(
    fake_url: str, wire: str, *, server: dict[str, Any] | None = None, **router: str
) -> Settings:
    spec = WIRES[wire]
    return Settings.model_validate(
        {
            "server": server or {},
            "providers": [
                {
                    "name": "up",
                    "type": spec["type"],
                    "base_url": fake_url + spec["suffix"],
                    "api_key": "sk-test-secret-key",
                    "models": [spec["model"], "other-model"],
                }
            ],
            "router": {"default": f"up,{spec['model']}", **router},
        }
    )


def keyed_settings(fake_url: str, tmp_path: Path, key: str, **server: Any) -> Settings:
    """One Anthropic-format provider at the fake, client auth with ``key`` (``server`` settings on
    top), and a SQLite ledger in ``tmp_path``: the server-hardening tests' gateway."""
    return Settings.model_validate(
        {
            "server": {"api_keys": [key], **server},
            "providers": [
                {
                    "name": "up",
                    "type": "anthropic",
                    "base_url": fake_url,
                    "api_key": "sk-upstream-secret",
                    "models": ["claude-sonnet-4-6"],
                }
            ],
            "router": {"default": "up,claude-sonnet-4-6"},
            "store": {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
        }
    )
