"""What Codex CLI needs to work through the gateway: ``-c key=value`` overrides (so the user's
``~/.codex/config.toml`` is never edited) and one environment variable for the key.

Codex reads a custom provider from ``model_providers.<id>`` (``base_url`` with ``/v1``: it appends
``/responses``; ``env_key``: the variable holding the key, sent as ``Authorization: Bearer``;
``wire_api = "responses"``, the only one current releases accept) and picks it with
``model_provider``; ``-c`` values are TOML (https://github.com/openai/codex/blob/main/docs/config.md).

- the model is ``claude-ccr-default`` (``routing.aliases``): a tier id naming a scenario, so the
  scenario rules route each request as they do Claude Code's; ``-m`` after it picks another;
- ``web_search = "disabled"``: Codex would otherwise send its built-in ``web_search`` tool, which
  runs on OpenAI's servers only (the gateway refuses built-in tools with a 400);
- a project's headers (``x-ccrouter-project`` ...) go in the provider's ``http_headers``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ccrouter.cli.claude_env import gateway_token
from ccrouter.config import Settings
from ccrouter.routing.aliases import tier_model

__all__ = ["KEY_VARIABLE", "PROVIDER_ID", "codex_args", "codex_env"]

PROVIDER_ID = "ccrouter"
# Also what ``gateway_token`` reads a member's own key from, so the value passes through unchanged.
KEY_VARIABLE = "CCROUTER_API_KEY"


def _toml(value: str) -> str:
    # A JSON string of printable text is a TOML basic string (same quotes and escapes).
    return json.dumps(value, ensure_ascii=True)


def codex_args(base_url: str, headers: Mapping[str, str] | None = None) -> list[str]:
    """The ``-c`` overrides that point Codex at the gateway at ``base_url`` (no ``/v1``)."""
    provider = f"model_providers.{PROVIDER_ID}"
    settings = {
        "model_provider": _toml(PROVIDER_ID),
        "model": _toml(tier_model("default")),
        f"{provider}.name": _toml("ccrouter"),
        f"{provider}.base_url": _toml(base_url.rstrip("/") + "/v1"),
        f"{provider}.env_key": _toml(KEY_VARIABLE),
        f"{provider}.wire_api": _toml("responses"),
        "web_search": _toml("disabled"),
    }
    if headers:
        pairs = ", ".join(f"{_toml(name)} = {_toml(value)}" for name, value in headers.items())
        settings[f"{provider}.http_headers"] = "{" + pairs + "}"
    args: list[str] = []
    for key, value in settings.items():
        args += ["-c", f"{key}={value}"]
    return args


def codex_env(settings: Settings) -> dict[str, str]:
    """The variables Codex needs: the gateway key under ``KEY_VARIABLE``."""
    return {KEY_VARIABLE: gateway_token(settings)}
