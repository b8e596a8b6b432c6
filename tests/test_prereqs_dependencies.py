"""The dependency lower bounds exclude releases with known security fixes, and the installed set fits."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DECLARED = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]
REQUIREMENTS = {req.name: req for req in map(Requirement, DECLARED)}

# The first release with the fix: a lower bound below it would let pip keep a vulnerable install.
SECURITY_FLOORS = {
    "aiohttp": "3.13.3",  # CVE-2025-53643 (smuggling, 3.12.14); CVE-2025-69223 and the Jan 2026 batch
    "orjson": "3.9.15",  # CVE-2024-27454: recursion limit for deeply nested input
    "pydantic": "2.4.0",  # CVE-2024-3772: regular expression denial of service in email validation
    "redis": "4.5.4",  # CVE-2023-28858/28859: a cancelled async command leaked its reply to the next
    "pyyaml": "5.4",  # CVE-2020-14343: arbitrary code execution through full_load
    "pyjwt": "2.10.1",  # CVE-2024-53861: a partial issuer match passed the iss check
}


def _floor(name: str) -> Version:
    specs = [spec for spec in REQUIREMENTS[name].specifier if spec.operator == ">="]
    assert specs, f"{name} has no lower bound in pyproject.toml"
    return Version(specs[0].version)


@pytest.mark.parametrize(("name", "fixed"), sorted(SECURITY_FLOORS.items()))
def test_lower_bound_includes_the_security_fix(name: str, fixed: str) -> None:
    assert _floor(name) >= Version(fixed), f"{name}>={_floor(name)} allows a release before {fixed}"


@pytest.mark.parametrize("name", sorted(REQUIREMENTS))
def test_installed_version_satisfies_the_declared_bound(name: str) -> None:
    requirement = REQUIREMENTS[name]
    if requirement.marker is not None and not requirement.marker.evaluate():
        return  # a platform marker excludes it here (uvloop on Windows)
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.fail(f"{name} is declared but not installed: `make test` installs it")
    assert requirement.specifier.contains(installed, prereleases=True), f"{name} {installed}: {requirement}"
