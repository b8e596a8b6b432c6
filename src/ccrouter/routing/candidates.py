"""Who else can serve a request: the scenario's fallback list and automatic candidates.

Automatic candidates come from *other* providers (another model of the same provider rarely helps
when that provider fails): with ``routing.auto_fallback: capable`` any listed model whose catalog
capabilities (tools, vision, thinking) and context window fit the request, the same model name first;
with ``same_model`` only the same model served elsewhere.
"""

from __future__ import annotations

from ccrouter.catalog import Catalog
from ccrouter.config import Settings
from ccrouter.messages import ImageBlock, MessagesRequest, ToolResultBlock
from ccrouter.routing.decision import RouteDecision
from ccrouter.routing.strategies import Candidate

__all__ = ["candidates_for", "compared_windows", "needs"]


def needs(request: MessagesRequest) -> tuple[bool, bool]:
    """(tools, vision): what the request needs from a model."""
    vision = any(
        isinstance(block, ImageBlock)
        or (isinstance(block, ToolResultBlock) and any(isinstance(p, ImageBlock) for p in block.content))
        for message in request.messages
        for block in message.content
    )
    return bool(request.tools), vision


def candidates_for(
    settings: Settings, catalog: Catalog, request: MessagesRequest, decision: RouteDecision
) -> tuple[list[Candidate], list[Candidate]]:
    """(the scenario's class: route then fallback list; automatic candidates), without repeats."""
    primary = Candidate(decision.provider, decision.model, "route")
    fallback = settings.router.fallback
    routes = fallback.get(decision.scenario, fallback.get("default", []))
    chosen = [primary]
    seen = {primary.route}
    for route in routes:
        provider, _, model = (part.strip() for part in route.partition(","))
        if f"{provider},{model}" not in seen and settings.provider(provider) is not None:
            seen.add(f"{provider},{model}")
            chosen.append(Candidate(provider, model, "fallback"))
    return chosen, _automatic(settings, catalog, request, decision, seen)


def compared_windows(settings: Settings, catalog: Catalog) -> frozenset[int]:
    """Every context window ``candidates_for`` may compare ``RouteDecision.tokens`` with (a superset:
    the decision's own provider is not known yet), so the router can count exactly near one."""
    if settings.routing.auto_fallback != "capable":
        return frozenset()
    return frozenset(
        catalog.info(config, spec.name).context_window
        for config in settings.providers
        if config.type != "simulated"
        for spec in config.models
    )


def _automatic(
    settings: Settings,
    catalog: Catalog,
    request: MessagesRequest,
    decision: RouteDecision,
    seen: set[str],
) -> list[Candidate]:
    mode = settings.routing.auto_fallback
    if mode == "off":
        return []
    wanted: tuple[bool, bool] | None = None  # needs(request), worked out only if a candidate asks
    same: list[Candidate] = []
    other: list[Candidate] = []
    for config in settings.providers:
        if config.name == decision.provider or config.type == "simulated":
            continue
        for spec in config.models:
            route = f"{config.name},{spec.name}"
            if route in seen:
                continue
            if spec.name == decision.model:
                same.append(Candidate(config.name, spec.name, "auto"))
                continue
            if mode != "capable":
                continue
            info = catalog.info(config, spec.name)
            if wanted is None:
                wanted = needs(request)
            tools, vision = wanted
            if (tools and not info.tools) or (vision and not info.vision):
                continue
            if request.thinking.on and not info.thinking:
                continue
            if decision.tokens is not None and decision.tokens >= info.context_window:
                continue
            other.append(Candidate(config.name, spec.name, "auto"))
    return same + other
