"""Scrubbing configured secrets out of text: log lines, error bodies, alert messages.

The secrets are the configured values themselves (provider keys, client keys, the admin token, store
and Redis URLs, the alert webhook), collected once at startup by ``secrets_of``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from ccrouter.config import Settings

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "Redactor", "secrets_of"]

REDACTED = "[redacted]"
# Shorter values are placeholders (Ollama's ``api_key: ollama``), not secrets; redacting them would
# mangle ordinary words such as a provider's name.
MIN_SECRET_LENGTH = 8


def secrets_of(settings: Settings) -> set[str]:
    """Every secret value the settings hold."""
    values: list[SecretStr | None] = [settings.server.admin_token, settings.alerts.webhook_url]
    values += [key if isinstance(key, SecretStr) else key.key for key in settings.server.api_keys]
    for provider in settings.providers:
        values += [provider.api_key, *provider.api_keys]
    out = {v.get_secret_value() for v in values if v is not None}
    for url in (settings.store.url, settings.state.redis_url):
        if url is not None:
            out.add(url.get_secret_value())
            # The password alone may appear in a driver's error message.
            password = urlsplit(url.get_secret_value()).password
            if password:
                out.add(password)
    return out


class Redactor:
    """Replaces any of ``secrets`` found in a string with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        # Longest first, so a secret that contains another is replaced whole.
        self._pattern = re.compile("|".join(re.escape(s) for s in kept)) if kept else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(REDACTED, value)

    def bytes(self, value: bytes) -> bytes:
        if self._pattern is None:
            return value
        return self.text(value.decode("utf-8", "replace")).encode()

    def value(self, value: Any) -> Any:
        """Strings, and strings inside lists, tuples and dicts; other values as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
