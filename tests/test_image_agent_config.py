"""``router.image_agent`` is checked like the other scenario routes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ccrouter.config import Settings

PROVIDERS = [{"name": "sim", "type": "simulated", "models": ["sim-1"]}]


def test_off_by_default() -> None:
    settings = Settings.model_validate({"providers": PROVIDERS, "router": {"default": "sim,sim-1"}})
    assert settings.router.image_agent is None


@pytest.mark.parametrize(
    ("route", "problem"),
    [("sim", "must be 'provider,model'"), ("nope,x", "unknown provider 'nope'"), ("sim,x", "no model 'x'")],
)
def test_a_bad_route_is_refused(route: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings.model_validate(
            {"providers": PROVIDERS, "router": {"default": "sim,sim-1", "image_agent": route}}
        )
