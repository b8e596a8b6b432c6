"""Egress proxies: which forward proxy, if any, a provider's requests go through.

Decided once, when the provider opens (the configuration is frozen; so is the environment as read
then), from ``providers[].proxy`` (a proxy URL, or ``none``) else the environment: ``HTTPS_PROXY``
for https URLs, ``HTTP_PROXY`` for http ones, ``ALL_PROXY`` for either, ``NO_PROXY`` the hosts to
reach directly (each in upper or lower case, lower case first: ``urllib.request`` reads them as curl
and requests do). aiohttp's own ``trust_env`` is not used: it also reads ``~/.netrc``, and would send
the credentials found there.

aiohttp tunnels an https URL through the proxy with ``CONNECT`` (the proxy sees the host, never the
request) and forwards an http URL in absolute form. Credentials in a proxy URL (``user:pass@``) go
as ``Proxy-Authorization: Basic`` to the proxy only, and are scrubbed from every error text
(``EgressProxy.scrub``).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlsplit

from yarl import URL

from ccrouter.config import ProviderConfig, proxy_url_problem
from ccrouter.errors import ConfigError

__all__ = ["EgressProxy"]

# Decisions remembered per URL origin: a provider calls a handful of hosts (one, mostly).
_MAX_ORIGINS = 256
# urllib's NO_PROXY matching (hosts, domains, host:port, "*"), as requests does it; typeshed omits it.
_bypass: Callable[[str, Mapping[str, str]], bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
_ENV_KEYS = {"https": ("https", "all"), "http": ("http", "all")}


class EgressProxy:
    """The proxy for each request URL of one provider. ``open`` gives None when every request goes
    direct: the transport then does nothing per request."""

    def __init__(self, *, fixed: URL | None = None, environment: Mapping[str, str] | None = None) -> None:
        """``fixed``: every request goes through it. ``environment``: ``urllib``'s proxy mapping
        (``{"https": url, "no": "host,..."}``), consulted per URL origin."""
        self._fixed = fixed
        self._environment = dict(environment or {})
        self._proxies = {scheme: _proxy_url(value, scheme) for scheme, value in self._environment.items()}
        self._origins: dict[tuple[str, str], URL | None] = {}
        urls = [fixed] if fixed is not None else [url for url in self._proxies.values() if url is not None]
        self._secrets = sorted({s for url in urls for s in _credentials(url)}, key=len, reverse=True)

    @classmethod
    def open(cls, config: ProviderConfig) -> EgressProxy | None:
        """The provider's proxying, or None when it has none (no ``proxy``, no proxy in the
        environment, or ``proxy: none``). Reads the process environment (a dictionary lookup per
        variable: cheap enough for the event loop)."""
        if config.proxy is not None:
            value = config.proxy.get_secret_value()
            if value == "none":
                return None
            return cls(fixed=URL(value, encoded=False))
        # Lower case wins over upper case; HTTP_PROXY is ignored in a CGI request (CVE-2016-1000110).
        found = {key: value for key, value in urllib.request.getproxies_environment().items() if value}
        if not any(key in found for key in ("https", "http", "all")):
            return None
        for key in ("https", "http", "all"):
            if key in found:
                problem = proxy_url_problem(_with_scheme(found[key]))
                if problem is not None:
                    raise ConfigError(f"{key.upper()}_PROXY (environment): {problem}")
        return cls(environment=found)

    def for_url(self, url: str) -> URL | None:
        """The proxy to reach ``url`` through; None: directly."""
        if self._fixed is not None:
            return self._fixed
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        try:
            return self._origins[origin]
        except KeyError:
            pass
        found = self._choose(parts.scheme, parts.netloc)
        if len(self._origins) < _MAX_ORIGINS:
            self._origins[origin] = found
        return found

    def _choose(self, scheme: str, netloc: str) -> URL | None:
        if self._environment.get("no") and _bypass(netloc, self._environment):
            return None
        for key in _ENV_KEYS.get(scheme, ()):
            proxy = self._proxies.get(key)
            if proxy is not None:
                return proxy
        return None

    def scrub(self, text: str) -> str:
        """``text`` without the proxies' credentials (aiohttp quotes the proxy URL in some errors)."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    @property
    def secrets(self) -> list[str]:
        """The credential strings ``scrub`` removes, longest first."""
        return list(self._secrets)

    def __repr__(self) -> str:
        return "EgressProxy(fixed)" if self._fixed is not None else "EgressProxy(environment)"


def _with_scheme(value: str) -> str:
    # curl and requests read a bare host:port as an http:// proxy.
    return value if "://" in value else "http://" + value


def _proxy_url(value: str, key: str) -> URL | None:
    if key not in ("https", "http", "all"):
        return None
    return URL(_with_scheme(value), encoded=False)


def _credentials(url: URL) -> set[str]:
    """Every form in which ``url``'s user and password can appear in a message."""
    out: set[str] = set()
    for user, password in ((url.user, url.password), (url.raw_user, url.raw_password)):
        if password:
            out.add(password)
            out.add(quote(password, safe=""))
            if user:
                out.add(f"{user}:{password}")
        elif user:
            out.add(user)
    return {s for s in out if s}
