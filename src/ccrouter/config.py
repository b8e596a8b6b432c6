"""Frozen, typed settings. Loaded once (see ``ccrouter.config_file``), passed down, never global.

The YAML contract::

    server: {host: 127.0.0.1, port: 3456, api_keys: [...]}
    providers:
      - name: deepseek
        type: openai                 # wire format: anthropic | openai | gemini | simulated
        base_url: https://api.deepseek.com/v1
        api_key: ${DEEPSEEK_API_KEY}
        models: [deepseek-chat, deepseek-reasoner]   # or objects (see ModelSpec)
    router:
      default: deepseek,deepseek-chat
      background: ...; think: ...; long_context: ...; long_context_threshold: 60000
      web_search: ...; image: ...; custom: package.module:function
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "ModelSpec",
    "ProviderConfig",
    "RouterConfig",
    "ServerConfig",
    "Settings",
    "Timeouts",
    "WireFormat",
]

WireFormat = Literal["anthropic", "openai", "gemini", "simulated"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSpec(_Frozen):
    """A model a provider serves. Unset capabilities come from the shipped catalog
    (``ccrouter.catalog``); set ones override it."""

    name: str
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    tools: bool | None = None
    vision: bool | None = None
    thinking: bool | None = None


class Timeouts(_Frozen):
    """Seconds. ``first_byte`` bounds the wait for response headers, ``idle`` the gap between stream
    chunks, ``total`` a whole non-streamed call."""

    connect: float = Field(default=10.0, gt=0)
    first_byte: float = Field(default=120.0, gt=0)
    idle: float = Field(default=120.0, gt=0)
    total: float = Field(default=600.0, gt=0)


class ProviderConfig(_Frozen):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    type: WireFormat
    # Vendor profile applying quirks on top of the wire format (openai, deepseek, groq, openrouter,
    # ollama, github, gemini, vertex, anthropic, generic). Guessed from base_url/name when unset.
    vendor: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    models: list[ModelSpec] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @field_validator("models", mode="before")
    @classmethod
    def _models_from_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _needs_base_url(self) -> ProviderConfig:
        if self.type in ("openai",) and not self.base_url and self.vendor in (None, "generic"):
            raise ValueError("an openai-format provider needs base_url (or a known vendor)")
        return self

    def model(self, name: str) -> ModelSpec | None:
        for spec in self.models:
            if spec.name == name:
                return spec
        return None


class RouterConfig(_Frozen):
    """Scenario routes, each ``provider,model``. Only ``default`` is required."""

    default: str
    background: str | None = None
    think: str | None = None
    long_context: str | None = None
    long_context_threshold: int = Field(default=60_000, gt=0)
    web_search: str | None = None
    image: str | None = None
    # ``package.module:function``: an async callable (request, context) -> "provider,model" | None.
    custom: str | None = None

    @field_validator("default", "background", "think", "long_context", "web_search", "image")
    @classmethod
    def _route_shape(cls, value: str | None) -> str | None:
        if value is not None and (value.count(",") != 1 or not all(p.strip() for p in value.split(","))):
            raise ValueError(f"must be 'provider,model', got {value!r}")
        return value


class ServerConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=3456, ge=0, le=65535)
    # Client keys accepted as x-api-key or Authorization: Bearer. Empty: no client auth, and the
    # server refuses to bind anything but loopback.
    api_keys: list[SecretStr] = Field(default_factory=list)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _loopback_unless_auth(self) -> ServerConfig:
        if not self.api_keys and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"host {self.host!r} is not loopback: set server.api_keys to expose the gateway")
        return self


class Settings(_Frozen):
    server: ServerConfig = Field(default_factory=ServerConfig)
    providers: list[ProviderConfig]
    router: RouterConfig

    @model_validator(mode="after")
    def _routes_exist(self) -> Settings:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique, got {names}")
        for scenario in ("default", "background", "think", "long_context", "web_search", "image"):
            route = getattr(self.router, scenario)
            if route is None:
                continue
            provider_name, model = (part.strip() for part in route.split(","))
            provider = self.provider(provider_name)
            if provider is None:
                raise ValueError(f"router.{scenario}: unknown provider {provider_name!r} (have {names})")
            if provider.models and provider.model(model) is None:
                raise ValueError(
                    f"router.{scenario}: provider {provider_name!r} has no model {model!r}"
                    f" (have {[m.name for m in provider.models]})"
                )
        return self

    def provider(self, name: str) -> ProviderConfig | None:
        for provider in self.providers:
            if provider.name == name:
                return provider
        return None
