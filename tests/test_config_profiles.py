"""``profiles:`` and ``router.subagent`` in the config: routes checked like router routes, with the
key path, and a profile's strategy checked against the registered ones when the services are built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ccrouter.config import Settings
from ccrouter.errors import ConfigError
from ccrouter.plugins import Registry, load_plugins
from ccrouter.services import build_services

PROVIDERS = [{"name": "sim", "type": "simulated", "models": ["sim-1", "sim-2"]}]


def settings(**extra: Any) -> Settings:
    return Settings.model_validate({"providers": PROVIDERS, "router": {"default": "sim,sim-1"}, **extra})


def test_profiles_and_the_subagent_route_load() -> None:
    loaded = settings(
        router={"default": "sim,sim-1", "subagent": "sim,sim-2"},
        profiles={
            "cheap": {
                "router": {"default": "sim,sim-2", "think": "sim,sim-1"},
                "routing": {"strategy": "cost"},
            }
        },
    )
    assert loaded.router.subagent == "sim,sim-2"
    assert loaded.profiles["cheap"].router.routes() == {"default": "sim,sim-2", "think": "sim,sim-1"}
    assert loaded.profiles["cheap"].routing.strategy == "cost"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"router": {"default": "sim,sim-1", "subagent": "nope,x"}},
            "router.subagent: unknown provider 'nope'",
        ),
        (
            {"profiles": {"p": {"router": {"default": "sim,gpt"}}}},
            "profiles.p.router.default: provider 'sim' has no model 'gpt'",
        ),
        (
            {"profiles": {"p": {"router": {"subagent": "other,x"}}}},
            "profiles.p.router.subagent: unknown provider 'other'",
        ),
        (
            {"profiles": {"p": {"router": {"thinking": "sim,sim-1"}}}},
            "profiles.p.router.thinking\n  Extra inputs are not permitted",
        ),
        ({"profiles": {"p": {"router": {"think": "sim"}}}}, "must be 'provider,model'"),
        ({"profiles": {"two words": {}}}, "profiles.two words: a profile name is letters"),
    ],
)
def test_bad_profiles_are_refused_with_the_key_path(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        settings(**extra)


async def test_a_profile_naming_an_unknown_strategy_stops_the_build(tmp_path: Path) -> None:
    registry = Registry.build(load_plugins(entry_points=False))
    bad = settings(
        profiles={"p": {"routing": {"strategy": "nonesuch"}}}, store={"url": f"sqlite:///{tmp_path / 'u.db'}"}
    )
    with pytest.raises(ConfigError, match=r"profiles\.p\.routing\.strategy: unknown strategy 'nonesuch'"):
        await build_services(bad, registry, config_dir=tmp_path, simulated=True, version="t")
