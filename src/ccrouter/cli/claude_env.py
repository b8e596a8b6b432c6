"""What Claude Code needs to work through the gateway, as environment variables: shared by
``ccrouter code`` (set for the ``claude`` it runs) and ``ccrouter claude-settings`` (written into
``~/.claude/settings.json``).

- ``ANTHROPIC_BASE_URL`` (no ``/v1``: Claude Code appends ``/v1/messages``);
- the gateway key as ``ANTHROPIC_AUTH_TOKEN`` (sent as ``Authorization: Bearer``) and
  ``ANTHROPIC_API_KEY`` empty: with an API key, interactive Claude Code asks whether to use that
  "custom API key", with No preselected, and No leaves it logged out;
- ``CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1``: its ``/model`` picker lists the gateway's
  ``GET /v1/models`` (the ``claude-ccr-*`` aliases, ``routing.aliases``);
- the tiers: ``ANTHROPIC_DEFAULT_OPUS_MODEL=claude-ccr-think``, ``..._SONNET_MODEL=claude-ccr-default``,
  ``..._HAIKU_MODEL=claude-ccr-background`` and ``CLAUDE_CODE_SUBAGENT_MODEL=claude-ccr-subagent``:
  tier ids name a scenario, not a model, so the scenario rules still route each request (long
  context, web search, images, a project's profile) and the tier's own route is taken where none of
  them applies (``routing.scenarios.TierRule``); ``..._NAME`` labels show the route in ``/model``.
  Picking a route's alias (``claude-ccr-<provider>-<model>``) in ``/model`` pins that route;
- ``ANTHROPIC_CUSTOM_HEADERS``: ``Name: value`` lines, newline-separated (Claude Code's format).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ccrouter.config import Settings
from ccrouter.routing.aliases import tier_model

__all__ = ["ROUTES_HEADER", "claude_env", "custom_headers", "gateway_token", "tier_models"]

# Route overrides a project sends (``scenario=provider,model;...``), as decided for issue 13.
ROUTES_HEADER = "x-ccrouter-routes"
PROFILE_HEADER = "x-ccrouter-profile"
# Claude Code's tier variables and the scenario each names (``routing.aliases.tier_model``).
TIERS: tuple[tuple[str, str], ...] = (
    ("ANTHROPIC_DEFAULT_OPUS_MODEL", "think"),
    ("ANTHROPIC_DEFAULT_SONNET_MODEL", "default"),
    ("ANTHROPIC_DEFAULT_HAIKU_MODEL", "background"),
    ("CLAUDE_CODE_SUBAGENT_MODEL", "subagent"),
)
_MAX_HEADER = 8192


def gateway_token(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The key Claude Code presents: ``$CCROUTER_API_KEY`` (a team member's own managed key, from
    ``ccrouter keys create``), else the first of ``server.api_keys``, else any (none is checked)."""
    own = (os.environ if environ is None else environ).get("CCROUTER_API_KEY", "").strip()
    if own:
        return own
    keys = settings.server.api_keys
    return keys[0].get_secret_value() if keys else "ccrouter"


def _overrides(headers: Mapping[str, str]) -> dict[str, str]:
    """``x-ccrouter-routes: default=p,m;think=p,m`` as {scenario: route}; malformed parts ignored
    (the gateway reports them)."""
    found: dict[str, str] = {}
    value = next((v for k, v in headers.items() if k.lower() == ROUTES_HEADER), "")
    for part in value.split(";"):
        scenario, sep, route = (piece.strip() for piece in part.partition("="))
        if sep and scenario and route.count(",") == 1:
            found[scenario] = route
    return found


def tier_models(settings: Settings, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each tier variable -> its tier id (``claude-ccr-think`` ...), and for the three model tiers a
    ``..._NAME`` label for the ``/model`` picker naming the route it takes now (with the project's
    route overrides; under a profile, the profile's routes decide, which the label says)."""
    overrides = _overrides(headers or {})
    profile = next((v for k, v in (headers or {}).items() if k.lower() == PROFILE_HEADER), None)
    tiers: dict[str, str] = {}
    for variable, scenario in TIERS:
        tiers[variable] = tier_model(scenario)
        if not variable.startswith("ANTHROPIC_DEFAULT_"):
            continue
        route = overrides.get(scenario) or getattr(settings.router, scenario, None)
        if route is None and scenario != "default":
            route = overrides.get("default") or settings.router.default
            label = f"{scenario}: {route} (the default route)"
        else:
            label = f"{scenario}: {route}"
        if profile and scenario not in overrides:
            label = f"{scenario} route of profile {profile}"
        tiers[f"{variable}_NAME"] = f"ccrouter {label}"
    return tiers


def custom_headers(existing: str, extra: Mapping[str, str]) -> str:
    """``ANTHROPIC_CUSTOM_HEADERS``: the user's own ``Name: value`` lines, with ``extra`` replacing
    any of the same name (case-insensitive) and added after them."""
    names = {name.lower() for name in extra}
    lines = [
        line
        for line in existing.splitlines()
        if line.strip() and line.partition(":")[0].strip().lower() not in names
    ]
    for name, value in extra.items():
        if any(c in name + value for c in "\r\n") or ":" in name:
            raise ValueError(f"header {name!r}: a name or value cannot hold a line break (or the name a ':')")
        lines.append(f"{name}: {value}")
    joined = "\n".join(lines)
    if len(joined) > _MAX_HEADER:
        raise ValueError(f"ANTHROPIC_CUSTOM_HEADERS would be {len(joined)} bytes (at most {_MAX_HEADER})")
    return joined


def claude_env(settings: Settings, base_url: str, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables Claude Code needs to use the gateway at ``base_url`` (without the headers)."""
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_AUTH_TOKEN": gateway_token(settings),
        "ANTHROPIC_API_KEY": "",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
        **tier_models(settings, headers),
    }
