"""Frozen, typed settings. Loaded once (see ``ccrouter.config_file``), passed down, never global.

The YAML contract::

    server: {host: 127.0.0.1, port: 3456, api_keys: [...]}
    providers:
      - name: deepseek
        type: openai                 # a registered provider type: anthropic | openai | gemini | simulated...
        base_url: https://api.deepseek.com/v1
        api_key: ${DEEPSEEK_API_KEY}
        models: [deepseek-chat, deepseek-reasoner]   # or objects (see ModelSpec)
    router:
      default: deepseek,deepseek-chat
      background: ...; think: ...; long_context: ...; long_context_threshold: 60000
      web_search: ...; image: ...; subagent: ...; custom: package.module:function
    profiles:                        # chosen per request by x-ccrouter-profile (a project's .ccrouter.yaml)
      cheap: {router: {default: ...}, routing: {strategy: cost}}
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from ccrouter.auth.roles import Role

# The base model and the provider settings live in modules of their own; their names are re-exported.
from ccrouter.config_base import _Frozen, registry_context
from ccrouter.config_providers import (
    DEFAULT_POOL_SIZE,
    EntraConfig,
    ModelSpec,
    ProviderConfig,
    ResponseLimits,
    Timeouts,
    TransformerUse,
    proxy_url_problem,
)
from ccrouter.projects import MAX_NAME, NAME_PATTERN, SCENARIOS

__all__ = [
    "DEFAULT_POOL_SIZE",
    "AlertsConfig",
    "BreakerConfig",
    "BudgetRule",
    "ClientKey",
    "EntraConfig",
    "JwtConfig",
    "KeysConfig",
    "LimitRule",
    "LoggingConfig",
    "ModelSpec",
    "PriceOverride",
    "Profile",
    "ProfileRouter",
    "ProfileRouting",
    "ProviderConfig",
    "ResponseLimits",
    "RouterConfig",
    "RoutingConfig",
    "SecretsConfig",
    "ServerConfig",
    "Settings",
    "StateConfig",
    "StoreConfig",
    "Timeouts",
    "TransformerUse",
    "UiConfig",
    "proxy_url_problem",
    "registry_context",
]


class RouterConfig(_Frozen):
    """Scenario routes, each ``provider,model``. Only ``default`` is required."""

    default: str
    background: str | None = None
    think: str | None = None
    long_context: str | None = None
    long_context_threshold: int = Field(default=60_000, gt=0)
    web_search: str | None = None
    image: str | None = None
    # Requests of Claude Code's subagents (``cc_is_subagent=true`` in the billing line; under
    # ``ccrouter code`` also ``CLAUDE_CODE_SUBAGENT_MODEL``); the ``<CCR-SUBAGENT-MODEL>`` tag wins over it
    # (``ccrouter.routing.scenarios``).
    subagent: str | None = None
    # -- the image agent (issue 13): a vision model that describes each image of a request whose
    # target has no vision; the descriptions replace the images (``ccrouter.images``). Off when unset.
    image_agent: str | None = None
    image_agent_prompt: str = Field(
        default=(
            "Describe this image for someone who cannot see it: its content, any text in it verbatim, "
            "and details a software engineer would need (code, errors, layout). Be concise."
        ),
        min_length=1,
    )
    # At most this many distinct images described per request (more get a note), each at most
    # image_agent_max_bytes of image data, in at most image_agent_max_tokens of description; at most
    # image_agent_concurrency vision calls at once per request.
    image_agent_max_images: int = Field(default=20, gt=0, le=200)
    image_agent_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    image_agent_max_tokens: int = Field(default=1024, gt=0)
    image_agent_concurrency: int = Field(default=4, gt=0, le=32)
    # ``package.module:function``: an async callable (request, context) -> "provider,model" | None.
    custom: str | None = None
    # Route a bare model name that exactly one listed provider serves to that provider (as an
    # explicit choice). Off by default, as in claude-code-router: Claude Code always names a claude-*
    # model, and a provider listing that name would otherwise take every request from the scenarios.
    match_model_names: bool = False
    # Ordered fallback routes per scenario (``default`` applies to scenarios without their own list),
    # like claude-code-router's ``fallback`` section (issue 3).
    fallback: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("fallback")
    @classmethod
    def _fallback_shape(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for scenario, routes in value.items():
            for route in routes:
                if route.count(",") != 1 or not all(p.strip() for p in route.split(",")):
                    raise ValueError(f"fallback.{scenario}: must be 'provider,model', got {route!r}")
        return value

    @field_validator(
        "default", "background", "think", "long_context", "web_search", "image", "subagent", "image_agent"
    )
    @classmethod
    def _route_shape(cls, value: str | None) -> str | None:
        return _route_shape(value)


def _route_shape(value: str | None) -> str | None:
    if value is not None and (value.count(",") != 1 or not all(p.strip() for p in value.split(","))):
        raise ValueError(f"must be 'provider,model', got {value!r}")
    return value


class ProfileRouter(_Frozen):
    """The scenario routes a profile overrides (each ``provider,model``); unset ones are the config's."""

    default: str | None = None
    background: str | None = None
    think: str | None = None
    long_context: str | None = None
    web_search: str | None = None
    image: str | None = None
    subagent: str | None = None

    @field_validator(*SCENARIOS)
    @classmethod
    def _route_shape(cls, value: str | None) -> str | None:
        return _route_shape(value)

    def routes(self) -> dict[str, str]:
        """The overridden scenarios and their routes."""
        return {scenario: route for scenario in SCENARIOS if (route := getattr(self, scenario)) is not None}


class ProfileRouting(_Frozen):
    """What a profile changes in ``routing``: the strategy (a registered one, checked when the
    services are built)."""

    strategy: str | None = Field(default=None, min_length=1)


class Profile(_Frozen):
    """Settings a request takes when it names the profile in ``x-ccrouter-profile`` (a project's
    ``.ccrouter.yaml``)."""

    router: ProfileRouter = Field(default_factory=ProfileRouter)
    routing: ProfileRouting = Field(default_factory=ProfileRouting)


# ---------------------------------------------------------------- client keys, ledger, prices, budgets


class ClientKey(_Frozen):
    """A client key with an identity. ``user_header``: the client may name its user in
    ``x-ccrouter-user`` (a team key shared by several people)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.@\-]+$")]
    key: SecretStr
    user: str | None = None
    user_header: bool = False
    # -- a team's gateway (issue 14): the key's team and role (``ccrouter.auth.roles``), its own
    # request and token limits per minute and the routes it may use (as managed keys have them).
    team: str | None = Field(default=None, min_length=1, max_length=128)
    role: Role = "client"
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    models: list[str] | None = None

    def get_secret_value(self) -> str:
        """The key itself, like ``SecretStr`` (so code reading ``api_keys`` takes either)."""
        return self.key.get_secret_value()


class StoreConfig(_Frozen):
    """The usage ledger. ``url`` unset: SQLite file ``usage.db`` in the config folder;
    ``sqlite:///path`` or ``postgresql://...`` otherwise."""

    url: SecretStr | None = None
    # PostgreSQL schema holding the tables (created if missing); None: the server's search_path.
    schema_name: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]*$")
    # Seconds between ledger commits: a crash loses at most the rows of the last interval.
    flush_interval_s: float = Field(default=0.2, gt=0, le=60)
    batch_size: int = Field(default=500, gt=0)
    # -- issue 17: a response's end waits until its ledger row is committed (rows of concurrent
    # requests share a commit), so a crash or SIGKILL loses no row of a completed request; at most
    # durable_timeout_s (the ledger unreachable: the response ends anyway, the row stays queued).
    durable: bool = False
    durable_timeout_s: float = Field(default=2.0, gt=0, le=60)


class PriceOverride(_Frozen):
    """USD per million tokens. Keyed in ``prices:`` by ``provider,model`` or by model name."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


BudgetPeriod = Literal["daily", "weekly", "monthly"]
BudgetAction = Literal["warn", "downgrade", "block"]


class BudgetRule(_Frozen):
    """A spending limit. ``scope``: ``global``, ``key``, ``user``, ``team``, ``profile`` (the request's
    ``x-ccrouter-profile``) or ``project`` (its ``x-ccrouter-project``); ``match`` names one key (its
    name or id), user, profile or project, unset: each gets the limit separately. Periods are UTC
    days, ISO weeks (from Monday) and calendar months."""

    name: Annotated[str, Field(min_length=1)]
    scope: Literal["global", "key", "user", "team", "profile", "project"] = "global"
    match: str | None = None
    period: BudgetPeriod
    limit_usd: float = Field(gt=0)
    action: BudgetAction = "block"
    # ``provider,model`` to route to while the budget is spent (action downgrade).
    downgrade_to: str | None = None

    @model_validator(mode="after")
    def _downgrade_target(self) -> BudgetRule:
        if self.action == "downgrade" and (self.downgrade_to is None or self.downgrade_to.count(",") != 1):
            raise ValueError("action downgrade needs downgrade_to: 'provider,model'")
        if self.scope == "global" and self.match is not None:
            raise ValueError("a global budget takes no match")
        named = self.scope in ("profile", "project") and self.match is not None
        if named and (len(self.match or "") > MAX_NAME or not re.match(NAME_PATTERN, self.match or "")):
            raise ValueError(f"a {self.scope} name is letters, digits and _.- (at most {MAX_NAME})")
        return self


# ---------------------------------------------------------------- routing and resilience (issue 3)


class BreakerConfig(_Frozen):
    """Circuit breaker per provider and model. Opens after ``consecutive_failures`` failures in a row,
    or when over ``window_s`` at least ``min_calls`` calls saw a failure share >= ``failure_rate`` or a
    slow share >= ``slow_rate`` (slow: longer than ``slow_call_s``). Open for ``open_s``, then lets
    ``half_open_probes`` calls through; ``success_threshold`` successes close it."""

    consecutive_failures: int = Field(default=5, gt=0)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    slow_rate: float = Field(default=0.8, gt=0, le=1)
    slow_call_s: float = Field(default=60.0, gt=0)
    min_calls: int = Field(default=10, gt=0)
    window_s: float = Field(default=60.0, gt=0)
    open_s: float = Field(default=30.0, gt=0)
    half_open_probes: int = Field(default=1, gt=0)
    success_threshold: int = Field(default=2, gt=0)


class StrategyWeights(_Frozen):
    headroom: float = Field(default=0.4, ge=0)
    latency: float = Field(default=0.3, ge=0)
    cost: float = Field(default=0.2, ge=0)
    reliability: float = Field(default=0.1, ge=0)


class RoutingConfig(_Frozen):
    """How candidates are ordered and guarded. ``strategy``: intelligent (weighted score), cost,
    performance, availability, priority (config order), or one a plugin registers (checked against
    the registered strategies when the services are built)."""

    strategy: str = Field(default="intelligent", min_length=1)
    weights: StrategyWeights = Field(default_factory=StrategyWeights)
    # Candidates tried after the first. Automatic ones come from other providers: ``capable``: any
    # listed model whose catalog capabilities and context window fit; ``same_model``: the same model.
    max_fallbacks: int = Field(default=3, ge=0)
    auto_fallback: Literal["off", "same_model", "capable"] = "capable"
    sticky_sessions: bool = True
    # Skip a candidate whose window is at or above this share of a known limit.
    headroom_threshold: float = Field(default=0.8, gt=0, le=1)
    # After a rate-limit cooldown, traffic share rises linearly from recovery_floor to 1 over recovery_s.
    recovery_s: float = Field(default=30.0, ge=0)
    recovery_floor: float = Field(default=0.1, gt=0, le=1)
    # Cooldown after a 429 without Retry-After: exponential backoff with jitter, base * 2^n capped.
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    # A credential answering 401/403 is set aside this long.
    auth_cooldown_s: float = Field(default=3600.0, gt=0)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    # Active health checks: a cheap call per provider every interval (off: costs money on paid APIs).
    health_checks: bool = False
    health_check_interval_s: float = Field(default=60.0, gt=0)


class StateConfig(_Frozen):
    """Where live routing state lives: in memory (one instance) or Redis (shared by instances)."""

    redis_url: SecretStr | None = None
    key_prefix: str = Field(default="ccrouter", min_length=1)


# ---------------------------------------------------------------- logs and alerts (issue 4, telemetry)


class LoggingConfig(_Frozen):
    """Log output. ``format`` auto: JSON lines when stderr is not a terminal, a readable console
    format when it is. ``level`` unset: ``server.log_level``."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] | None = None
    # One line per finished API request (route decision, usage, cost, status, duration).
    requests: bool = True
    # Also log request bodies and non-streamed response bodies at debug level (they hold prompts:
    # off unless debugging; needs level debug).
    bodies: bool = False


class AlertsConfig(_Frozen):
    """Alert rules evaluated every ``interval_s``; each alert is logged and, with ``webhook_url``, POSTed
    as JSON when it fires and when it resolves. Error rate and p95 latency are over ``window_s``."""

    enabled: bool = True
    webhook_url: SecretStr | None = None
    interval_s: float = Field(default=30.0, gt=0)
    window_s: float = Field(default=300.0, gt=0)
    # Error rate and latency rules wait for this many requests in the window.
    min_requests: int = Field(default=20, gt=0)
    error_rate: float = Field(default=0.2, gt=0, le=1)
    p95_latency_s: float = Field(default=60.0, gt=0)
    # A provider whose health score (0..1) falls below this, or whose breaker is open.
    provider_health: float = Field(default=0.5, gt=0, le=1)
    budget_used: float = Field(default=0.8, gt=0, le=1)
    webhook_timeout_s: float = Field(default=5.0, gt=0)


# ---------------------------------------------------------------- a team's gateway (issue 14)


class KeysConfig(_Frozen):
    """Managed client keys (``ccrouter keys``, ``/api/keys``), kept hashed in the store. A change made
    on one instance reaches the others through Redis (``state.redis_url``) at once, else by polling
    the store every ``poll_s``. ``rotation_grace_s``: how long a rotated key's old secret still works
    (default a day: long enough to roll the new one out to every client)."""

    poll_s: float = Field(default=1.0, gt=0, le=60)
    rotation_grace_s: float = Field(default=86_400.0, ge=0)
    # Last-used times are kept in memory and written to the store this often.
    last_used_flush_s: float = Field(default=30.0, gt=0)


class UiConfig(_Frozen):
    """The dashboard at ``/ui`` (``ccrouter.ui``). A login turns a key or token of role viewer or above
    into an encrypted, HttpOnly, SameSite=Strict session cookie that lasts ``session_ttl_s``.
    ``session_secret``: the key the cookies are sealed with; set the same one on every instance behind
    a load balancer (None: a new one at each start, so a restart logs everyone out)."""

    enabled: bool = True
    session_ttl_s: float = Field(default=12 * 3600.0, gt=0, le=30 * 86_400.0)
    session_secret: SecretStr | None = None


JwtAlgorithm = Literal["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"]
_JWT_DEFAULT_ALGORITHMS: tuple[JwtAlgorithm, ...] = ("RS256", "ES256")


class JwtConfig(_Frozen):
    """Single sign-on: ``Authorization: Bearer <JWT>`` verified against a JWKS (``jwks_url``, fetched
    and refreshed, or ``jwks_file``). The claims name the user, team and role; ``role_map`` maps the
    role claim's values (a string or a list of groups) to ccrouter roles, the highest match wins;
    without a match the token gets ``default_role`` (None: refused)."""

    jwks_url: str | None = None
    jwks_file: str | None = None
    issuer: str = Field(min_length=1)
    audience: str | list[str]
    # Asymmetric algorithms only: an HS* token (a JWKS public key used as an HMAC secret) is refused.
    algorithms: list[JwtAlgorithm] = Field(
        default_factory=lambda: list(_JWT_DEFAULT_ALGORITHMS), min_length=1
    )
    user_claim: str = "sub"
    team_claim: str | None = None
    role_claim: str | None = None
    role_map: dict[str, Role] = Field(default_factory=dict)
    default_role: Role | None = "client"
    # Clock skew allowed on exp/nbf/iat, at most five minutes.
    leeway_s: float = Field(default=30.0, ge=0, le=300)
    # JWKS refetched this often, and at most once per ``jwks_min_refresh_s`` for an unknown key id.
    jwks_refresh_s: float = Field(default=300.0, gt=0)
    jwks_min_refresh_s: float = Field(default=10.0, gt=0)
    jwks_timeout_s: float = Field(default=5.0, gt=0)
    # Tokens larger than this are refused before any parsing.
    max_token_bytes: int = Field(default=16_384, gt=0, le=1_048_576)

    @model_validator(mode="after")
    def _one_source(self) -> JwtConfig:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("set exactly one of jwks_url and jwks_file")
        return self


class LimitRule(_Frozen):
    """Requests and tokens per minute, and the routes allowed, for client keys, users or teams
    (``scope``), shared by every instance through ``state.redis_url``. ``match`` names one key (its
    name or id), user or team; unset: each gets the limit separately. ``models``: the routes they may
    use (``provider,model``, ``provider,*`` or a model name); a request routed elsewhere is a 403."""

    name: Annotated[str, Field(min_length=1)]
    scope: Literal["key", "user", "team"]
    match: str | None = None
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    models: list[str] | None = None


class SecretsConfig(_Frozen):
    """Secret references in this file (``${file:...}``, ``${vault:...}``) are read again every
    ``refresh_s`` seconds; when one changed the configuration reloads (requests in flight finish on
    the old values). 0: only at reload."""

    refresh_s: float = Field(default=300.0, ge=0)


class ServerConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=3456, ge=0, le=65535)
    # Client keys accepted as x-api-key or Authorization: Bearer. Empty: no client auth, and the
    # server refuses to bind anything but loopback.
    # Plain strings, or {name, key, user} objects that give the key an identity (ledger, budgets).
    api_keys: list[ClientKey | SecretStr] = Field(default_factory=list)
    # Bearer token for the /api/* admin endpoints; unset: they answer 403.
    admin_token: SecretStr | None = None
    # The request body's limit, on its inflated size when it comes compressed (content-encoding).
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # -- slow clients (issue 11): a request head must arrive within header_timeout_s of its first
    # byte (else 408 and close); a body within body_timeout_s once the handler reads it (408 in the
    # client's envelope); a stream ends with an SSE error event after max_stream_s (None: no limit).
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=60.0, gt=0)
    max_stream_s: float | None = Field(default=None, gt=0)
    # -- brute force (issue 11): per client address, auth_throttle_burst failed authentications
    # pass at once, then auth_throttle_per_minute; beyond that 429 with retry-after.
    auth_throttle_burst: int = Field(default=20, ge=1)
    auth_throttle_per_minute: float = Field(default=10.0, gt=0)
    # /metrics and /health/providers need the admin token; None: only when host is not loopback.
    protect_observability: bool | None = None
    # -- a team's gateway (issue 14): whether /v1/* needs a credential (a static key, a managed key,
    # a single sign-on token); None: when server.api_keys or server.jwt is set.
    require_auth: bool | None = None
    keys: KeysConfig = Field(default_factory=KeysConfig)
    jwt: JwtConfig | None = None
    # -- the dashboard (issue 15)
    ui: UiConfig = Field(default_factory=UiConfig)
    # -- lifecycle (issue 17): on SIGTERM /health/ready fails at once; new requests are still served
    # for drain_grace_s (a load balancer's time to stop sending), then answered 529 overloaded_error;
    # requests in flight (streams) get up to drain_s to finish; then the ledger is flushed and the
    # process exits 0. SIGINT (Ctrl-C) skips the grace; a second signal stops at once.
    drain_grace_s: float = Field(default=0.0, ge=0, le=3600)
    drain_s: float = Field(default=30.0, ge=0, le=3600)
    # -- speed and scale (issue 17): connections the kernel queues for accept() (the listen backlog).
    # aiohttp's default of 128 resets clients when hundreds connect within a second; the kernel caps
    # it at /proc/sys/net/core/somaxconn (4096 on Linux >= 5.4, 128 before).
    backlog: int = Field(default=2048, ge=1, le=65535)

    @model_validator(mode="after")
    def _loopback_unless_auth(self) -> ServerConfig:
        if not self.auth_required and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(
                f"host {self.host!r} is not loopback: set server.api_keys, server.jwt or"
                " server.require_auth: true (managed keys) to expose the gateway"
            )
        return self

    @property
    def auth_required(self) -> bool:
        """Whether /v1/* refuses a request without a valid credential."""
        if self.require_auth is not None:
            return self.require_auth
        return bool(self.api_keys) or self.jwt is not None

    @property
    def observability_protected(self) -> bool:
        """Whether /metrics and /health/providers need the admin token."""
        if self.protect_observability is not None:
            return self.protect_observability
        return self.host not in ("127.0.0.1", "localhost", "::1")


class Settings(_Frozen):
    server: ServerConfig = Field(default_factory=ServerConfig)
    providers: list[ProviderConfig]
    router: RouterConfig
    store: StoreConfig = Field(default_factory=StoreConfig)
    prices: dict[str, PriceOverride] = Field(default_factory=dict)
    budgets: list[BudgetRule] = Field(default_factory=list)
    # -- routing and resilience (issue 3)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    # -- logs and alerts (issue 4, telemetry)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    # -- the platform (issue 12): plugins to load besides the installed ones (``ccrouter`` entry
    # points): module names, or paths to .py files (relative to the config file's folder).
    plugins: list[str] = Field(default_factory=list)
    # -- Claude Code (issue 13): named profiles a request picks with ``x-ccrouter-profile``.
    profiles: dict[str, Profile] = Field(default_factory=dict)
    # -- a team's gateway (issue 14): per key, user and team limits; when secrets are read again.
    limits: list[LimitRule] = Field(default_factory=list)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)

    @model_validator(mode="after")
    def _routes_exist(self) -> Settings:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique, got {names}")
        routes = [
            (f"router.{scenario}", getattr(self.router, scenario)) for scenario in (*SCENARIOS, "image_agent")
        ]
        # Fallback routes (issue 3) are checked like scenario routes.
        routes += [(f"router.fallback.{k}", r) for k, rs in self.router.fallback.items() for r in rs]
        # Profile routes (issue 13) too, and the profile names a request's header may carry.
        for name, profile in self.profiles.items():
            if len(name) > MAX_NAME or not re.match(NAME_PATTERN, name):
                raise ValueError(
                    f"profiles.{name}: a profile name is letters, digits and _.- (at most {MAX_NAME})"
                )
            routes += [(f"profiles.{name}.router.{k}", r) for k, r in profile.router.routes().items()]
        for rule in self.budgets:
            if rule.scope == "profile" and rule.match is not None and rule.match not in self.profiles:
                raise ValueError(
                    f"budgets.{rule.name}: unknown profile {rule.match!r} (have {sorted(self.profiles)})"
                )
        for where, route in routes:
            if route is None:
                continue
            provider_name, model = (part.strip() for part in route.split(","))
            provider = self.provider(provider_name)
            if provider is None:
                raise ValueError(f"{where}: unknown provider {provider_name!r} (have {names})")
            if provider.models and provider.model(model) is None:
                raise ValueError(
                    f"{where}: provider {provider_name!r} has no model {model!r}"
                    f" (have {[m.name for m in provider.models]})"
                )
        return self

    def provider(self, name: str) -> ProviderConfig | None:
        for provider in self.providers:
            if provider.name == name:
                return provider
        return None
