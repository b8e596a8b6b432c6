"""The project a request comes from, and what it changes in routing: read from the headers that
``ccrouter code`` sends for a project's ``.ccrouter.yaml`` (``ccrouter.projects``).

- ``x-ccrouter-project: NAME`` names the project (recorded in the ledger, nothing else);
- ``x-ccrouter-profile: NAME`` picks a profile of the config (``profiles:``): its scenario routes
  and its strategy apply to the request;
- ``x-ccrouter-routes: scenario=provider,model;...`` overrides scenario routes for the request, over
  the profile's.

Each header is checked (bounded, header-safe names, only known scenarios, routes that name configured
providers and models); a bad one is a 400 naming it, in the client's error envelope.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ccrouter.config import Settings
from ccrouter.errors import CCRouterError, RequestError
from ccrouter.projects import (
    MAX_NAME,
    MAX_ROUTES_HEADER,
    NAME_PATTERN,
    PROFILE_HEADER,
    PROJECT_HEADER,
    ROUTES_HEADER,
    SCENARIOS,
    check_route,
)

__all__ = ["NO_PROJECT", "ProjectContext", "project_context"]

_NAME = re.compile(NAME_PATTERN)
_SCENARIOS: Final = frozenset(SCENARIOS)


@dataclass(frozen=True, slots=True)
class ProjectContext:
    """What a request's project headers ask for: ``routes`` are the profile's routes with the
    header's overrides on top; ``strategy`` the profile's (None: the config's)."""

    project: str | None = None
    profile: str | None = None
    routes: Mapping[str, str] = field(default_factory=dict)
    # Where each route in ``routes`` comes from, for the decision's reason.
    sources: Mapping[str, str] = field(default_factory=dict)
    strategy: str | None = None


NO_PROJECT: Final = ProjectContext()

# Checks ``provider,model`` against the configuration (raises a CCRouterError naming what exists).
RouteCheck = Callable[[str, str], object]


def project_context(headers: Mapping[str, str], settings: Settings, check: RouteCheck) -> ProjectContext:
    """The request's project context from its headers (``NO_PROJECT`` without any of them)."""
    project = headers.get(PROJECT_HEADER)
    profile_name = headers.get(PROFILE_HEADER)
    routes_header = headers.get(ROUTES_HEADER)
    if project is None and profile_name is None and routes_header is None:
        return NO_PROJECT
    if project is not None:
        project = _name(PROJECT_HEADER, project)
    routes: dict[str, str] = {}
    sources: dict[str, str] = {}
    strategy = None
    if profile_name is not None:
        profile_name = _name(PROFILE_HEADER, profile_name)
        profile = settings.profiles.get(profile_name)
        if profile is None:
            known = ", ".join(sorted(settings.profiles)) or "none are configured"
            raise RequestError(f"{PROFILE_HEADER}: unknown profile {profile_name!r} (profiles: {known})")
        routes = profile.router.routes()
        sources = dict.fromkeys(routes, f"profile {profile_name}")
        strategy = profile.routing.strategy
    if routes_header is not None:
        for scenario, route in _routes(routes_header, check).items():
            routes[scenario] = route
            sources[scenario] = ROUTES_HEADER
    return ProjectContext(project, profile_name, routes, sources, strategy)


def _name(header: str, value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME or not _NAME.match(value):
        raise RequestError(
            f"{header}: expected a name of letters, digits and _.- (1 to {MAX_NAME} characters), "
            f"got {value[:MAX_NAME]!r}{'...' if len(value) > MAX_NAME else ''}"
        )
    return value


def _routes(value: str, check: RouteCheck) -> dict[str, str]:
    if len(value) > MAX_ROUTES_HEADER:
        raise RequestError(f"{ROUTES_HEADER}: longer than {MAX_ROUTES_HEADER} characters")
    found: dict[str, str] = {}
    for item in value.split(";"):
        if not item.strip():
            continue
        scenario, sep, route = (part.strip() for part in item.partition("="))
        if not sep:
            raise RequestError(
                f"{ROUTES_HEADER}: expected scenario=provider,model, got {item.strip()[:80]!r}"
            )
        if scenario not in _SCENARIOS:
            raise RequestError(
                f"{ROUTES_HEADER}: unknown scenario {scenario[:40]!r} (use any of: {', '.join(SCENARIOS)})"
            )
        if scenario in found:
            raise RequestError(f"{ROUTES_HEADER}: scenario {scenario!r} is given twice")
        try:
            route = check_route(route)
            check(route, f"{ROUTES_HEADER} {scenario}")
        except ValueError as exc:
            raise RequestError(f"{ROUTES_HEADER}: {scenario}: {exc}") from None
        except CCRouterError as exc:
            raise RequestError(exc.message) from None
        found[scenario] = route
    return found
