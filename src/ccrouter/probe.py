"""One cheap call to a configured provider: is it reachable, is its key accepted, which models does it
list. Used by ``ccrouter init`` (to offer the provider's own models) and ``ccrouter doctor``.

The models list comes first (free on every API); where a provider has none (a 404, or a provider type
this module does not know), a one-token message through the provider itself (``probe_request``) says
the same. Every answer is bounded by ``limit_s`` seconds; the result never holds the key (error texts go
through the provider's own redaction, or are ours).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import orjson

from ccrouter.config import ProviderConfig, Timeouts
from ccrouter.errors import (
    CCRouterError,
    UpstreamConnectionError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from ccrouter.providers.base import envelope_message
from ccrouter.telemetry.redact import Redactor

if TYPE_CHECKING:
    from ccrouter.plugins import Registry

__all__ = ["Outcome", "ProbeResult", "probe_provider"]

Outcome = Literal["ok", "key_rejected", "unreachable", "timeout", "error"]
_MAX_LIST_BYTES = 8 * 1024 * 1024
_MAX_MODELS = 500
_GEMINI_API = "https://generativelanguage.googleapis.com/v1beta"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: Outcome
    detail: str
    # The model ids the provider listed (None: no list was read).
    models: tuple[str, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class _ListCall:
    url: str
    headers: dict[str, str]
    ids: Callable[[Any], list[str]]


def _data_ids(body: Any) -> list[str]:
    """Anthropic's and OpenAI's ``{"data": [{"id": ...}]}``."""
    data = body.get("data") if isinstance(body, dict) else None
    return [str(item["id"]) for item in data or [] if isinstance(item, dict) and item.get("id")]


def _gemini_ids(body: Any) -> list[str]:
    """Gemini's ``{"models": [{"name": "models/x", "supportedGenerationMethods": [...]}]}``."""
    models = body.get("models") if isinstance(body, dict) else None
    return [
        str(item["name"]).removeprefix("models/")
        for item in models or []
        if isinstance(item, dict)
        and item.get("name")
        and "generateContent" in (item.get("supportedGenerationMethods") or ["generateContent"])
    ]


def _key(config: ProviderConfig) -> str | None:
    return config.api_key.get_secret_value() if config.api_key is not None else None


def _list_call(config: ProviderConfig, registry: Registry) -> _ListCall | None:
    """Where this provider lists its models, with its auth headers; None: not known here."""
    key = _key(config)
    if config.type == "anthropic":
        from ccrouter.providers.anthropic import ANTHROPIC_VERSION, messages_url

        headers = {"anthropic-version": ANTHROPIC_VERSION, **({"x-api-key": key} if key else {})}
        url = messages_url(config.base_url).removesuffix("/messages") + "/models?limit=1000"
        return _ListCall(url, {**headers, **config.headers}, _data_ids)
    if config.type == "openai":
        from ccrouter.providers.openai_vendors import vendor_for

        vendor = vendor_for(config, registry.vendors)
        return _ListCall(f"{vendor.base_url}/models", {**vendor.headers(key), **config.headers}, _data_ids)
    if config.type == "openai_responses":
        from ccrouter.providers.openai_responses import DEFAULT_BASE_URL

        base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **config.headers}
        return _ListCall(f"{base}/models", headers, _data_ids)
    if (
        config.type == "gemini"
        and config.vendor in (None, "gemini")
        and not (config.base_url and "aiplatform.googleapis.com" in config.base_url)
    ):
        base = (config.base_url or _GEMINI_API).rstrip("/")
        headers = {**({"x-goog-api-key": key} if key else {}), **config.headers}
        return _ListCall(f"{base}/models?pageSize=1000", headers, _gemini_ids)
    return None


def _status_result(status: int, message: str) -> ProbeResult:
    if status in (401, 403):
        return ProbeResult("key_rejected", f"key rejected (HTTP {status}): {message}")
    return ProbeResult("error", f"HTTP {status}: {message}")


async def _list_models(call: _ListCall, config: ProviderConfig, limit_s: float) -> ProbeResult | None:
    """The provider's models, or why not; None when it has no models list (try a message instead)."""
    redactor = Redactor(secret.get_secret_value() for secret in config.secrets())
    client_timeout = aiohttp.ClientTimeout(total=limit_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout, cookie_jar=aiohttp.DummyCookieJar()) as session,
            # Never follow a redirect: it would carry the key to another host.
            session.get(call.url, headers=call.headers, allow_redirects=False) as response,
        ):
            body = await response.content.read(_MAX_LIST_BYTES)
            status = response.status
    except TimeoutError:
        return ProbeResult("timeout", f"no answer within {limit_s:g}s")
    except aiohttp.ClientConnectorError as exc:
        error = exc.os_error
        # asyncio's "Connect call failed ('h', p)" hides the reason its errno names ("Connection refused");
        # a DNS failure has a negative getaddrinfo code and its own text.
        code = error.errno if error is not None else None
        reason = os.strerror(code) if code is not None and code > 0 else (error or exc).strerror
        reason = reason or str(exc)
        return ProbeResult("unreachable", f"unreachable: {redactor.text(reason)}")
    except aiohttp.ClientError as exc:
        return ProbeResult(
            "unreachable", f"connection failed: {redactor.text(f'{type(exc).__name__}: {exc}')}"
        )
    if status in (404, 405):
        return None
    if status >= 300:
        return _status_result(status, redactor.text(_error_text(body)))
    try:
        ids = call.ids(orjson.loads(body))
    except orjson.JSONDecodeError:
        return ProbeResult("error", "the models list is not JSON")
    return ProbeResult("ok", f"models list: {len(ids)} models", tuple(ids[:_MAX_MODELS]))


def _error_text(body: bytes) -> str:
    """The message of an error envelope (Anthropic, OpenAI, Gemini), else a short excerpt."""
    message = envelope_message(body)
    if message is not None:
        return message[:200]
    return body[:200].decode("utf-8", "replace").strip() or "(empty body)"


async def _message_probe(config: ProviderConfig, registry: Registry, limit_s: float) -> ProbeResult:
    """A one-token message through the provider itself (its auth, quirks and error mapping)."""
    from ccrouter.providers.registry import open_provider
    from ccrouter.resilience.health import probe_request

    if not config.models:
        return ProbeResult("error", "no models list and no model configured to send a test message to")
    model = config.models[0].name
    short = Timeouts(connect=limit_s, first_byte=limit_s, idle=limit_s, total=limit_s)
    provider = await open_provider(config.model_copy(update={"timeouts": short}), registry)
    try:
        async with asyncio.timeout(limit_s + 1):
            await provider.complete(probe_request(model), model)
    except UpstreamStatusError as exc:
        return _status_result(exc.status, exc.message)
    except (UpstreamConnectionError, OSError) as exc:
        return ProbeResult("unreachable", f"unreachable: {getattr(exc, 'message', str(exc))}")
    except (UpstreamTimeoutError, TimeoutError):
        return ProbeResult("timeout", f"no answer within {limit_s:g}s")
    except CCRouterError as exc:
        return ProbeResult("error", exc.message)
    finally:
        await provider.aclose()
    return ProbeResult("ok", f"answered a one-token message ({model})")


async def probe_provider(config: ProviderConfig, registry: Registry, *, limit_s: float = 5.0) -> ProbeResult:
    """Reachability and key of one provider, and its models when it lists them."""
    if config.type == "simulated":
        return ProbeResult("ok", "built in (no network)", tuple(m.name for m in config.models))
    call = _list_call(config, registry)
    if call is not None:
        listed = await _list_models(call, config, limit_s)
        if listed is not None:
            return listed
    return await _message_probe(config, registry, limit_s)
