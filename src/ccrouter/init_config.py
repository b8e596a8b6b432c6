"""What ``ccrouter init`` writes: the providers and routes chosen, as a config document, a key file,
and a safe replacement of an existing file. No prompts here (``ccrouter.cli.init`` asks)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccrouter.config_file import dump_yaml, settings_from_data, write_private
from ccrouter.errors import ConfigError

__all__ = [
    "SCENARIOS",
    "InitPlan",
    "ProviderChoice",
    "key_file_reference",
    "render_config",
    "store_key",
    "write_config",
]

# The scenario routes init asks for, in order (``default`` required).
SCENARIOS = ("default", "background", "think", "long_context")


@dataclass(frozen=True)
class ProviderChoice:
    """One provider as chosen: ``api_key`` is a reference (``${VAR}``, ``${file:...}``) or None."""

    name: str
    wire: str
    vendor: str | None
    base_url: str | None
    api_key: str | None
    models: tuple[str, ...]

    def document(self, used: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.wire}
        if self.vendor:
            out["vendor"] = self.vendor
        if self.base_url:
            out["base_url"] = self.base_url
        if self.api_key is not None:
            out["api_key"] = self.api_key
        # The routed models first, then the rest offered (a route must name a listed model).
        out["models"] = list(dict.fromkeys((*used, *self.models)))
        return out


@dataclass(frozen=True)
class InitPlan:
    providers: tuple[ProviderChoice, ...]
    # scenario -> "provider,model"
    routes: Mapping[str, str] = field(default_factory=dict)
    port: int = 3456

    def document(self) -> dict[str, Any]:
        used: dict[str, list[str]] = {}
        for route in self.routes.values():
            name, model = (part.strip() for part in route.split(",", 1))
            used.setdefault(name, []).append(model)
        return {
            "server": {"host": "127.0.0.1", "port": self.port},
            "providers": [p.document(tuple(used.get(p.name, []))) for p in self.providers],
            "router": {
                scenario: self.routes[scenario] for scenario in SCENARIOS if self.routes.get(scenario)
            },
        }


_HEADER = """\
# ccrouter configuration, written by `ccrouter init` (edit freely; `ccrouter config validate` checks it,
# `ccrouter doctor` checks the providers and Claude Code). Secrets stay out of this file: `${VAR}` is
# read from the environment, `${file:~/path}` from a file (mode 0600), when the gateway starts.
"""


def render_config(plan: InitPlan) -> str:
    return _HEADER + dump_yaml(plan.document())


def key_file_reference(path: Path) -> str:
    """``${file:~/...}`` for a file under the home folder (the config stays portable), else absolute."""
    home = Path.home()
    try:
        return "${file:~/" + path.relative_to(home).as_posix() + "}"
    except ValueError:
        return "${file:" + str(path) + "}"


def store_key(name: str, key: str, keys_dir: Path | None = None) -> Path:
    """Write an entered key to ``~/.ccrouter/keys/<name>`` (folder 0700, file 0600)."""
    folder = keys_dir if keys_dir is not None else Path.home() / ".ccrouter" / "keys"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    path = folder / name
    write_private(path, key.strip() + "\n")
    return path


def write_config(path: Path, plan: InitPlan, environ: Mapping[str, str], *, force: bool) -> Path | None:
    """Validate the plan's document as the gateway would load it, then write it; an existing file is
    refused unless ``force``, and then kept beside it as ``<name>.bak-<time>`` (returned)."""
    import yaml

    text = render_config(plan)
    settings_from_data(yaml.safe_load(text), environ, source="the new configuration", base_dir=path.parent)
    backup: Path | None = None
    if path.exists():
        if not force:
            raise ConfigError(f"{path} exists; pass --force to replace it (the old file is kept as a backup)")
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)  # a copy: the old file stays in place until the new one replaces it
    write_private(path, text)
    return backup
