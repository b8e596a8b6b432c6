"""Vendor profiles for OpenAI-compatible providers: base URL, auth headers, per-model ``Dialect``.

One registry entry per vendor, registered through ``register_vendors`` (ccrouter's own in
``ccrouter.builtins.vendors``); the codec stays per wire format and a vendor only adds its quirks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ccrouter.codecs.openai.dialect import Dialect
from ccrouter.config import ProviderConfig
from ccrouter.errors import ConfigError

__all__ = ["GENERIC", "Vendor", "vendor_for"]

# The profile of any OpenAI-compatible server: no quirks, base_url required.
GENERIC = "generic"
_PLAIN = Dialect()


def _plain_dialect(model: str) -> Dialect:
    return _PLAIN


@dataclass(frozen=True, slots=True)
class Vendor:
    """One vendor's quirks. ``hosts`` and ``ports`` let a provider without ``vendor`` be recognised
    from its ``base_url``."""

    name: str
    base_url: str
    dialect_for: Callable[[str], Dialect] = _plain_dialect
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    needs_key: bool = True
    hosts: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return headers

    def dialect(self, model: str) -> Dialect:
        return self.dialect_for(model)


def _guess(config: ProviderConfig, vendors: Mapping[str, Vendor]) -> str:
    """Vendor name from the base_url host or port, else from a token of the provider name."""
    if config.base_url:
        parts = urlsplit(config.base_url)
        host = (parts.hostname or "").lower()
        for vendor in vendors.values():
            if host in vendor.hosts:
                return vendor.name
        for vendor in vendors.values():
            if parts.port is not None and parts.port in vendor.ports:
                return vendor.name
    for token in re.split(r"[-_.]", config.name.lower()):
        if token in vendors:
            return token
    return GENERIC


def vendor_for(config: ProviderConfig, vendors: Mapping[str, Vendor]) -> Vendor:
    """The profile (of ``vendors``, the registered ones) for an OpenAI-format provider, its base_url
    taken from the config if set."""
    name = config.vendor if config.vendor is not None and config.vendor in vendors else None
    name = name or _guess(config, vendors)
    vendor = vendors.get(name) or Vendor(GENERIC, "")
    if config.base_url:
        return dataclasses.replace(vendor, base_url=config.base_url.rstrip("/"))
    if not vendor.base_url:
        raise ConfigError(f"provider {config.name!r}: vendor {config.vendor or 'generic'!r} needs a base_url")
    return vendor
