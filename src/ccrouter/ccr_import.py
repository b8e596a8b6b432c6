"""Convert a claude-code-router (``ccr``) ``config.json`` into a ccrouter YAML document.

ccr's format (README and ``config.example.json`` of musistudio/claude-code-router): ``Providers[]`` with
``api_base_url`` being the full endpoint URL (``.../chat/completions``) and ``transformer.use`` a list of
names or ``[name, options]`` pairs (per model under ``transformer["<model>"]``); ``Router`` with camelCase
scenario keys; ``APIKEY``, ``HOST``, ``PORT``, ``API_TIMEOUT_MS``, ``LOG_LEVEL`` at the top. ``$VAR``
references are kept as ``${VAR}`` and never resolved, so no secret is copied out of the environment.

Transformers (musistudio/llms, ``src/transformer``) are kept: the ones ccrouter ships under the same
name go to ``transformers`` (of the provider, or of the model for ``transformer["<model>"]``) with
their options; ``maxtoken`` becomes the model's ``max_output_tokens``; the wire-format and vendor ones
become ``type`` and ``vendor``; ``openrouter``'s options become headers and ``customparams``. What has
no equivalent (a JavaScript transformer or router) is reported, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ccrouter.config import Timeouts
from ccrouter.errors import ConfigError

__all__ = ["CcrImport", "convert_ccr", "import_ccr", "parse_ccr_json"]

_ROUTES = {
    "default": "default",
    "background": "background",
    "think": "think",
    "longContext": "long_context",
    "longContextThreshold": "long_context_threshold",
    "webSearch": "web_search",
    "image": "image",
}
_FALLBACK_SCENARIOS = frozenset({"default", "background", "think", "long_context", "web_search", "image"})
_VENDOR_TRANSFORMERS = frozenset({"deepseek", "groq", "openrouter"})
# Transformers whose whole job ccrouter's own wire formats already do.
_NATIVE_TRANSFORMERS = frozenset({"openai", "anthropic", "gemini"})
# Built-in transformers of the same name and meaning (``ccrouter.builtins.transformers``).
_KEPT_TRANSFORMERS = frozenset(
    {"tooluse", "enhancetool", "reasoning", "sampling", "cleancache", "customparams"}
)
# What the OpenAI-chat codec always does: streamoptions (stream_options.include_usage), extrathinktag
# (a leading <think> section read as thinking).
_BUILT_IN = {
    "streamoptions": "usage is always asked for in streams",
    "extrathinktag": "a leading <think> section is always read as thinking",
}
_LOG_LEVELS = {
    "fatal": "error",
    "error": "error",
    "warn": "warning",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _refs(value: Any) -> Any:
    """Rewrite every ``$VAR`` as ``${VAR}`` in strings, recursively (ccr interpolates both anywhere)."""
    if isinstance(value, str):
        return _REF.sub(lambda m: "${" + (m.group(1) or m.group(2)) + "}", value) if "$" in value else value
    if isinstance(value, dict):
        return {key: _refs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_refs(item) for item in value]
    return value


def _uses(spec: Any) -> list[tuple[str, dict[str, Any]]]:
    """``{"use": ["a", ["b", {...}]]}`` -> ``[("a", {}), ("b", {...})]``."""
    entries = spec.get("use", []) if isinstance(spec, dict) else []
    out: list[tuple[str, dict[str, Any]]] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, str):
            out.append((entry, {}))
        elif isinstance(entry, list) and entry and isinstance(entry[0], str):
            options = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            out.append((entry[0], options))
    return out


def _strip_suffix(url: str, *suffixes: str) -> str:
    url = url.rstrip("/")
    for suffix in suffixes:
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


def _wire(url: str, names: set[str]) -> tuple[str, str | None, str]:
    """(type, vendor, base_url) from the endpoint URL and the transformer names (lower-cased)."""
    if "vertex-gemini" in names:
        return "gemini", "vertex", url.rstrip("/")
    if "anthropic" in names or url.rstrip("/").endswith("/messages"):
        # The Anthropic adapter appends /v1/messages to the base (SDK convention).
        return "anthropic", None, _strip_suffix(url, "/messages", "/v1")
    if "gemini" in names or "generativelanguage.googleapis.com" in url:
        return "gemini", None, _strip_suffix(url, "/models")
    vendor = next((name for name in sorted(names) if name in _VENDOR_TRANSFORMERS), None)
    return "openai", vendor, _strip_suffix(url, "/chat/completions")


class _Provider:
    """Builds one provider; collects what cannot be carried over (``warnings``) and what was carried
    over as something else (``notes``)."""

    def __init__(self, index: int, raw: dict[str, Any], warnings: list[str], notes: list[str]) -> None:
        self.where = f"Providers[{index}] ({raw.get('name', '?')})"
        self.raw = raw
        self.warnings = warnings
        self.notes = notes
        self.headers: dict[str, str] = {}
        self.max_tokens: dict[str | None, int] = {}  # None: every model
        self.transformers: dict[str | None, list[Any]] = {}  # None: the provider's own

    def convert(self) -> dict[str, Any]:
        raw = self.raw
        transformer: dict[str, Any] = raw["transformer"] if isinstance(raw.get("transformer"), dict) else {}
        global_uses = _uses(transformer)
        names = {name.lower() for name, _ in global_uses}
        kind, vendor, base_url = _wire(str(raw.get("api_base_url", "")), names)
        for name, options in global_uses:
            self._transformer(name, options, None)
        models = raw.get("models") or []
        for model, spec in transformer.items():
            if model == "use":
                continue
            uses = _uses(spec)
            if uses and model not in models:
                self.warnings.append(
                    f"{self.where}: transformers for model {model!r}, which is not in models; dropped"
                )
                continue
            for name, options in uses:
                self._transformer(name, options, model)
        provider: dict[str, Any] = {"name": raw.get("name"), "type": kind}
        if vendor:
            provider["vendor"] = vendor
        if base_url:
            provider["base_url"] = base_url
        if raw.get("api_key"):
            provider["api_key"] = raw["api_key"]
        provider["models"] = self._models(models)
        if self.headers:
            provider["headers"] = self.headers
        if self.transformers.get(None):
            provider["transformers"] = self.transformers[None]
        self._leftovers(local="//localhost" in base_url or "//127.0.0.1" in base_url)
        return provider

    def _keep(self, name: str, options: dict[str, Any], model: str | None) -> None:
        self.transformers.setdefault(model, []).append([name, options] if options else name)

    def _transformer(self, name: str, options: dict[str, Any], model: str | None) -> None:
        lowered = name.lower()
        scope = f" for model {model!r}" if model else ""
        if lowered == "maxtoken" and isinstance(options.get("max_tokens"), int):
            self.max_tokens[model] = options["max_tokens"]
            self.notes.append(f"{self.where}: transformer 'maxtoken'{scope} is models[].max_output_tokens")
        elif lowered in _KEPT_TRANSFORMERS:
            self._keep(lowered, options, model)
        elif lowered == "openrouter":
            self.notes.append(
                f"{self.where}: transformer {name!r}{scope} is built in (vendor: openrouter; its options:"
                " headers and customparams)"
            )
            self._openrouter(options, model)
        elif lowered in _BUILT_IN:
            self.notes.append(f"{self.where}: transformer {name!r}{scope} is built in ({_BUILT_IN[lowered]})")
        elif lowered in _VENDOR_TRANSFORMERS or lowered in _NATIVE_TRANSFORMERS or lowered == "vertex-gemini":
            self.notes.append(
                f"{self.where}: transformer {name!r}{scope} is built in (the provider's type/vendor)"
            )
            if options:
                self.warnings.append(f"{self.where}: options of {name!r}{scope} dropped: {options}")
            if lowered == "vertex-gemini":
                self.warnings.append(f"{self.where}: Vertex AI needs its own credentials; check the provider")
        else:
            self.warnings.append(
                f"{self.where}: transformer {name!r}{scope} has no equivalent; dropped (a Python plugin can"
                " register one: register_transformers)"
            )

    def _openrouter(self, options: dict[str, Any], model: str | None) -> None:
        # OpenRouter app attribution headers (openrouter.ai/docs/app-attribution): the provider's.
        if options.get("referer"):
            self.headers["HTTP-Referer"] = str(options["referer"])
        if options.get("title"):
            self.headers["X-Title"] = str(options["title"])
        # ccr merges the other options into the body (provider routing...): that is customparams.
        rest = {k: v for k, v in options.items() if k not in ("referer", "title") and v not in ([], {}, None)}
        if rest:
            self._keep("customparams", rest, model)

    def _models(self, models: list[Any]) -> list[Any]:
        out: list[Any] = []
        for model in models:
            if not isinstance(model, str):
                out.append(model)
                continue
            entry: dict[str, Any] = {"name": model}
            limit = self.max_tokens.get(model, self.max_tokens.get(None))
            if limit:
                entry["max_output_tokens"] = limit
            if self.transformers.get(model):
                entry["transformers"] = self.transformers[model]
            out.append(entry if len(entry) > 1 else model)
        return out

    def _leftovers(self, *, local: bool) -> None:
        extra = sorted(set(self.raw) - {"name", "api_base_url", "api_key", "models", "transformer"})
        if extra:
            self.warnings.append(f"{self.where}: keys not carried over: {', '.join(extra)}")
        name = self.raw.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            self.warnings.append(f"{self.where}: name must match [A-Za-z0-9_.-]+; rename it and its routes")
        key = self.raw.get("api_key")
        # Local servers (Ollama, LM Studio) take any placeholder key.
        if isinstance(key, str) and key and not _REF.search(key) and not local:
            self.warnings.append(f"{self.where}: api_key is a literal secret; consider ${{ENV_VAR}} instead")


def _router(raw: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    router: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _ROUTES and value not in (None, ""):
            router[_ROUTES[key]] = value
        elif key == "fallback":
            _fallback(value, router, warnings, "Router.fallback")
        elif key not in _ROUTES:
            warnings.append(f"Router.{key} has no ccrouter equivalent; dropped")
    return router


def _fallback(value: Any, router: dict[str, Any], warnings: list[str], where: str) -> None:
    """ccr's ``fallback`` (scenario -> ordered ``provider,model`` list) is ``router.fallback``; its
    scenario names are the Router's camelCase ones."""
    if not isinstance(value, dict):
        warnings.append(f"{where} must map scenarios to lists of 'provider,model'; dropped")
        return
    chains: dict[str, list[str]] = router.setdefault("fallback", {})
    for scenario, routes in value.items():
        name = _ROUTES.get(scenario, scenario)
        if name not in _FALLBACK_SCENARIOS or not isinstance(routes, list):
            warnings.append(f"{where}.{scenario} has no ccrouter equivalent; dropped")
            continue
        kept = [r for r in routes if isinstance(r, str) and r.count(",") == 1]
        if len(kept) != len(routes):
            warnings.append(f"{where}.{scenario}: entries that are not 'provider,model' dropped")
        if kept:
            chains[name] = [*chains.get(name, []), *(r for r in kept if r not in chains.get(name, []))]
    if not chains:
        router.pop("fallback")


def _server(data: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    server: dict[str, Any] = {}
    if data.get("APIKEY"):
        server["api_keys"] = [data["APIKEY"]]
        if not _REF.search(str(data["APIKEY"])):
            warnings.append("APIKEY is a literal secret; consider ${CCROUTER_API_KEY} in server.api_keys")
    host = data.get("HOST")
    if host and (host in _LOOPBACK or server.get("api_keys")):
        server["host"] = host
    elif host:
        # Same rule as ccr: without a client key the gateway stays on loopback.
        warnings.append(f"HOST {host!r} dropped: binding beyond loopback needs APIKEY (server.api_keys)")
    port = data.get("PORT")
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        server["port"] = int(port)
    elif port is not None:
        warnings.append(f"PORT {port!r} is not a port number; dropped")
    level = _LOG_LEVELS.get(str(data.get("LOG_LEVEL", "")).lower())
    if level:
        server["log_level"] = level
    return server


_DEFAULT_TOTAL_MS = 1000 * Timeouts().total
_TOP_LEVEL = frozenset({"Providers", "Router", "APIKEY", "HOST", "PORT", "LOG_LEVEL", "API_TIMEOUT_MS"})


@dataclass(slots=True)
class CcrImport:
    """A converted ccr config: the ccrouter document, what has no equivalent (``warnings``) and what
    was carried over as a different ccrouter setting (``notes``)."""

    document: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _top_level_leftovers(data: dict[str, Any], warnings: list[str]) -> None:
    for key in sorted(set(data) - _TOP_LEVEL - {"fallback"}):
        if key == "CUSTOM_ROUTER_PATH":
            warnings.append(
                f"CUSTOM_ROUTER_PATH ({data[key]}) is a JavaScript router, which cannot run here; write it"
                " as a Python function and set router.custom: 'package.module:function' (README: Custom"
                " router); until then the scenarios in router decide"
            )
        elif key == "transformers":
            warnings.append(
                "transformers (JavaScript transformer plugins) cannot run here; a Python plugin can register"
                " transformers (register_transformers, README: Plugins)"
            )
        else:
            warnings.append(f"{key} has no ccrouter equivalent; ignored")


def convert_ccr(data: dict[str, Any]) -> CcrImport:
    """Convert a parsed ccr ``config.json``."""
    result = CcrImport({})
    warnings = result.warnings
    providers = [
        _Provider(i, raw, warnings, result.notes).convert()
        for i, raw in enumerate(data.get("Providers") or [])
        if isinstance(raw, dict)
    ]
    timeout_ms = data.get("API_TIMEOUT_MS")
    if isinstance(timeout_ms, int | float) and timeout_ms > 0 and timeout_ms != _DEFAULT_TOTAL_MS:
        for provider in providers:
            provider["timeouts"] = {"total": timeout_ms / 1000}
    out: dict[str, Any] = {}
    server = _server(data, warnings)
    if server:
        out["server"] = server
    out["providers"] = providers
    out["router"] = _router(data.get("Router") or {}, warnings)
    if "default" not in out["router"]:
        warnings.append("Router.default is missing: set router.default to 'provider,model'")
    if data.get("fallback"):
        _fallback(data["fallback"], out["router"], warnings, "fallback")
    _top_level_leftovers(data, warnings)
    result.document = _refs(out)
    return result


def import_ccr(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Convert a parsed ccr ``config.json``; returns the ccrouter document and what could not be kept."""
    result = convert_ccr(data)
    return result.document, result.warnings


def _strip_json5(text: str) -> str:
    """Drop ``//`` and ``/* */`` comments and trailing commas outside strings: ccr reads its config with
    a lenient parser, and its own ``config.example.json`` has a trailing comma."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i : end + 1])
            i = end + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif char in "]}":
            last = len(out) - 1
            while last >= 0 and out[last].isspace():
                last -= 1
            if last >= 0 and out[last] == ",":
                out[last] = " "  # keep positions, so a later error still points at the right column
            out.append(char)
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def parse_ccr_json(text: str, *, source: str = "config.json") -> dict[str, Any]:
    """Parse a ccr config (JSON, tolerating comments and trailing commas)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            data = orjson.loads(_strip_json5(text))
        except orjson.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ConfigError(f"{source}: not valid JSON at {where}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object at the top level")
    return data
