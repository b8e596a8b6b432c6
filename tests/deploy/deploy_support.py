"""What the deployment tests share: the repository's paths, the tools from the dev extras, and the
real configuration loader fed a dummy environment."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from ccrouter.config import Settings
from ccrouter.config_file import settings_from_data

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def dev_tool(name: str, package: str) -> str:
    """A command that a dev-extras wheel installs beside the interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found is not None, f"{name} is missing: it comes with the dev extras (pip install {package})"
    return found


def variables(text: str) -> set[str]:
    """The ``${VAR}`` references of a ccrouter configuration."""
    return set(_VAR.findall(text))


def dummy_environ(names: set[str]) -> dict[str, str]:
    return {name: f"dummy-{name.lower()}-value-0123456789" for name in names}


def load_config(text: str, environ: dict[str, str]) -> Settings:
    """``text`` as the gateway loads a file: parsed, interpolated from ``environ``, validated."""
    data: Any = yaml.safe_load(text)
    return settings_from_data(data, environ=environ)
