"""The settings of one provider (``providers[]``): its models, timeouts, limits, credentials and the
fields of each cloud type. Re-exported by ``ccrouter.config``."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ccrouter.config_base import _Frozen, _registry

__all__ = [
    "DEFAULT_POOL_SIZE",
    "EntraConfig",
    "ModelSpec",
    "ProviderConfig",
    "ResponseLimits",
    "Timeouts",
    "TransformerUse",
    "proxy_url_problem",
]


class TransformerUse(_Frozen):
    """One transformer a provider (or one of its models) applies: a registered name and its options.
    Written ``name`` or ``[name, {options}]`` in the config, as claude-code-router writes them."""

    name: Annotated[str, Field(min_length=1)]
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, list | tuple) and 1 <= len(value) <= 2:
            return {"name": value[0], "options": value[1] if len(value) == 2 else {}}
        return value


class ModelSpec(_Frozen):
    """A model a provider serves. Unset capabilities come from the shipped catalog
    (``ccrouter.catalog``); set ones override it."""

    name: str
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    tools: bool | None = None
    vision: bool | None = None
    thinking: bool | None = None
    # -- routing and resilience (issue 3): configured rate limits for this model (per credential).
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    rpd: int | None = Field(default=None, gt=0)
    # -- the platform (issue 12): transformers for this model, applied after the provider's own.
    transformers: list[TransformerUse] = Field(default_factory=list)
    # -- issue 16, Azure OpenAI: the model this name stands for (an Azure deployment's model, an
    # alias): capabilities, prices and the wire dialect are looked up by it; requests still name
    # ``name`` (the deployment).
    base_model: str | None = Field(default=None, min_length=1)


class EntraConfig(_Frozen):
    """-- issue 16, Azure OpenAI: a Microsoft Entra ID app registration (service principal) whose
    tokens authorise a ``type: azure`` provider (azure-identity's ``ClientSecretCredential``).
    ``authority``: the login host (default ``login.microsoftonline.com``; sovereign clouds differ)."""

    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    authority: str | None = Field(default=None, min_length=1)


class Timeouts(_Frozen):
    """Seconds. ``connect`` bounds getting a connection (pool wait, TCP, TLS); ``first_byte`` the wait
    for the response head, counted from when the connection is ready and the request goes out; ``idle``
    the gap between stream chunks; ``total`` a whole non-streamed call, connecting included."""

    connect: float = Field(default=10.0, gt=0)
    first_byte: float = Field(default=120.0, gt=0)
    idle: float = Field(default=120.0, gt=0)
    total: float = Field(default=600.0, gt=0)


class ResponseLimits(_Frozen):
    """Bytes the gateway reads from one upstream reply, counted after decompression: a non-streamed
    body (``max_body_bytes``) and each server-sent event of a stream (``max_frame_bytes``). A reply
    past a limit ends the call with an upstream error instead of filling memory."""

    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_frame_bytes: int = Field(default=16 * 1024 * 1024, gt=0)


def proxy_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a forward proxy's address (None: nothing). Never quotes it: it may
    hold a password."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL (http://[user:pass@]host:port, or none)"
    if parts.scheme not in ("http", "https"):
        return "only http:// and https:// proxies are supported (HTTP CONNECT), or none"
    if not parts.hostname:
        return "the URL names no host (http://[user:pass@]host:port)"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "a proxy URL is scheme, host and port only"
    del port
    return None


# A team's agents (each Claude Code session runs a main agent plus parallel subagents, every one of
# them holding a stream open) reach hundreds of concurrent streams to one provider. 1,024 covers the
# 1,000-stream benchmark (bench/concurrency.py) with room; each connection costs one file descriptor
# and a few KB. Providers usually answer 429 long before our pool is full.
DEFAULT_POOL_SIZE = 1024


class ProviderConfig(_Frozen):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    # A provider type a plugin registered (``register_providers``; ccrouter's own: anthropic, openai,
    # gemini, simulated).
    type: Annotated[str, Field(min_length=1)]
    # Vendor profile applying quirks on top of the wire format (openai, deepseek, groq, openrouter,
    # ollama, github, gemini, vertex, anthropic, generic). Guessed from base_url/name when unset.
    vendor: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    models: list[ModelSpec] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    limits: ResponseLimits = Field(default_factory=ResponseLimits)
    # -- issue 17 (speed and scale): the most connections open to this provider at once (all its
    # credentials share them). A stream holds one for its whole length, so this is the provider's
    # concurrent requests from this process; past it a call waits for a free one (up to
    # timeouts.first_byte) or, when its expected wait is longer and another candidate can serve,
    # goes there at once. See DEFAULT_POOL_SIZE.
    pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=1, le=65536)
    # -- routing and resilience (issue 3): a credential pool rotated with ``api_key`` (each key has its
    # own limits and cooldown), and limits for every model of the provider that sets none itself.
    api_keys: list[SecretStr] = Field(default_factory=list)
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    rpd: int | None = Field(default=None, gt=0)
    # -- the platform (issue 12): request/response transformers for every model of this provider
    # (``ccrouter.transformers``), checked against the registered ones when the app is built.
    transformers: list[TransformerUse] = Field(default_factory=list)
    # -- issue 16, Google Vertex AI (``type: vertex``, ``ccrouter.providers.vertex``): the Google Cloud
    # project and region of the endpoint; a credentials file (service account, external account...),
    # else Application Default Credentials (``api_key``: a static access token instead); the publisher
    # of a model whose name does not tell (claude-* are anthropic's, others google's).
    project: str | None = Field(default=None, min_length=1, pattern=r"^[a-z0-9.:\-]+$")
    region: str | None = Field(default=None, min_length=1, pattern=r"^[a-z0-9\-]+$")
    credentials_file: str | None = Field(default=None, min_length=1)
    publishers: dict[str, Literal["anthropic", "google"]] = Field(default_factory=dict)
    # -- issue 16, AWS Bedrock (``type: bedrock``, ``ccrouter.providers.bedrock``): ``region`` above is
    # the AWS region (requests are signed for it); credentials from botocore's chain (environment,
    # shared files, web identity, container and instance metadata), of ``aws_profile`` when set, or
    # the key pair given here (with its session token for temporary credentials).
    aws_profile: str | None = Field(default=None, min_length=1)
    aws_access_key_id: str | None = Field(default=None, min_length=1)
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    # -- issue 16, egress proxy (``ccrouter.providers.proxy``): the forward proxy this provider's
    # requests go through, ``http://[user:pass@]host:port``; ``none``: straight to the provider, whatever
    # the environment says; unset: the environment's HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
    proxy: SecretStr | None = None
    # -- issue 16, Azure OpenAI (``type: azure``, ``ccrouter.providers.azure``): the data-plane API
    # version (``YYYY-MM-DD[-preview]``; ``v1``: the v1 API, no version) and, without ``api_key``, the
    # Entra ID app whose tokens are sent (neither: azure-identity's DefaultAzureCredential).
    api_version: str | None = Field(default=None, pattern=r"^(v1|\d{4}-\d{2}-\d{2}(-preview)?)$")
    entra: EntraConfig | None = None

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        if text.lower() in ("", "none"):
            return SecretStr("none")
        problem = proxy_url_problem(text)
        if problem is not None:
            raise ValueError(problem)
        return SecretStr(text)

    @model_validator(mode="after")
    def _azure_needs_base_url(self) -> ProviderConfig:
        if self.type == "azure" and not self.base_url:
            raise ValueError("an azure provider needs base_url (https://<resource>.openai.azure.com)")
        return self

    def catalog_model(self, name: str) -> str:
        """The model ``name`` stands for in the catalog and the price table (its ``base_model``)."""
        spec = self.model(name)
        return spec.base_model if spec is not None and spec.base_model else name

    @model_validator(mode="after")
    def _vertex_needs_project(self) -> ProviderConfig:
        if self.type == "vertex" and not self.project:
            raise ValueError("a vertex provider needs project (its Google Cloud project id)")
        return self

    @model_validator(mode="after")
    def _bedrock_needs_region(self) -> ProviderConfig:
        if self.type == "bedrock" and not self.region:
            raise ValueError("a bedrock provider needs region (the AWS region its requests are signed for)")
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("aws_access_key_id and aws_secret_access_key go together")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise ValueError("aws_session_token needs aws_access_key_id and aws_secret_access_key")
        if self.aws_profile is not None and self.aws_access_key_id is not None:
            raise ValueError("give aws_profile or an explicit AWS key pair, not both")
        return self

    def credentials(self) -> list[SecretStr | None]:
        """``api_key`` then ``api_keys``, without repeats; ``[None]`` when the provider needs no key."""
        keys: list[SecretStr | None] = []
        seen: set[str] = set()
        for key in ([self.api_key] if self.api_key is not None else []) + list(self.api_keys):
            if key.get_secret_value() not in seen:
                seen.add(key.get_secret_value())
                keys.append(key)
        return keys or [None]

    def secrets(self) -> list[SecretStr]:
        """Every secret the provider's config holds: its credentials, the AWS secret key and session
        token (which are no credentials of their own for the pools: one Bedrock identity is one), and
        the Entra ID app's client secret."""
        found = [key for key in self.credentials() if key is not None]
        entra = None if self.entra is None else self.entra.client_secret
        return found + [
            s for s in (self.aws_secret_access_key, self.aws_session_token, entra) if s is not None
        ]

    @field_validator("api_key", "api_keys", "aws_secret_access_key", "aws_session_token", mode="before")
    @classmethod
    def _keys_without_edge_space(cls, value: Any) -> Any:
        # A key written as a YAML block scalar (``api_key: |``) ends in a newline, which no key has and
        # which no HTTP header may hold: drop the whitespace around each key.
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, list):
            return [item.strip() if isinstance(item, str) else item for item in value]
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _models_from_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("type")
    @classmethod
    def _registered_type(cls, value: str, info: ValidationInfo) -> str:
        registry = _registry(info)
        problem = registry.type_problem(value) if registry is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _registered_vendor(self, info: ValidationInfo) -> ProviderConfig:
        registry = _registry(info)
        problem = registry.vendor_problem(self.type, self.vendor) if registry is not None else None
        if problem is not None:
            raise ValueError(problem)
        return self

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
