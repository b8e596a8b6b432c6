"""The configuration as people see it: every secret masked. One function for ``GET /api/config``
and ``ccrouter config show``, so the two never differ in what they hide."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from ccrouter.config import Settings
from ccrouter.telemetry.redact import Redactor, secrets_of

__all__ = ["MASK", "masked_settings"]

MASK = "********"
# Values under these keys are credentials whatever their type (``providers[].headers``).
_SECRET_MAPS = frozenset({"headers"})


def _mask_url(url: str) -> str | None:
    """``url`` with its password and query values masked; None when it is not a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{parts.username or ''}:{MASK}@{host}"
    query = "&".join(f"{pair.partition('=')[0]}={MASK}" for pair in parts.query.split("&") if pair)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, SecretStr):
        shown = _mask_url(value.get_secret_value())
        return shown if shown is not None else MASK
    if isinstance(value, dict):
        if key in _SECRET_MAPS:
            return {name: MASK for name in value}
        return {name: _mask(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(item, key) for item in value]
    if isinstance(value, str) and "@" in value:
        shown = _mask_url(value)
        return shown if shown is not None else value
    return value


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready data with every secret masked: ``SecretStr`` fields, header
    values, passwords in URLs; and any configured secret found elsewhere, redacted."""
    masked: dict[str, Any] = Redactor(secrets_of(settings)).value(_mask(settings.model_dump(mode="python")))
    return masked
