"""Whether a config file's text would load and reload, as a list of problems at their key paths.

The same checks, in the same order, as a reload (``ccrouter.reload``): YAML, the references, the
plugins the file names, the settings model (routes to known providers and models), the plugins'
settings hooks, then what only the registry knows (``services.check_registered``). Blocking (files,
plugins, Vault): run it in a thread. No problem ever holds a secret: each is redacted with the
configured secrets and every value a reference resolved to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ccrouter.config import Settings
from ccrouter.config_file import settings_from_data
from ccrouter.config_source import Problem
from ccrouter.errors import CCRouterError, PluginError
from ccrouter.plugins import Extensions, Registry, load_plugins
from ccrouter.reload import restart_only_changes
from ccrouter.secret_refs import Reference, Resolution
from ccrouter.services import check_registered
from ccrouter.telemetry.redact import Redactor

__all__ = ["Checked", "check_text", "problems_of"]

TOP = "(top level)"
# A document whose aliases expand past this many nodes is refused before it is built (an alias
# bomb: a kilobyte of YAML that would take the loader's walks hours).
MAX_NODES = 200_000
# "providers[0].type", "providers[1] (beta).models[0]", "profiles.cheap.router.default"
_PATH = re.compile(r"[A-Za-z_][\w.\-\[\]]*(?: \([^)]*\)[\w.\-\[\]]*)?")


@dataclass(frozen=True, slots=True)
class Checked:
    """``settings``: what the text loads as (None when it has problems)."""

    settings: Settings | None
    problems: list[Problem] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)


class _Recording(Resolution):
    """A load that remembers the values its references resolved to, so problems can be redacted."""

    def __init__(self, environ: Any) -> None:
        super().__init__(environ)
        self.values: set[str] = set()

    def resolve(self, ref: Reference, where: str) -> str:
        value = super().resolve(ref, where)
        self.values.add(value)
        return value


def _split(line: str, fallback: str) -> Problem:
    path, sep, message = line.strip().partition(": ")
    if sep and _PATH.fullmatch(path):
        return Problem(path, message)
    return Problem(fallback, line.strip())


def problems_of(error: CCRouterError, source: str) -> list[Problem]:
    """The problems in a load's ``ConfigError``: its message is ``<source>: <head>`` then one
    ``  <path>: <message>`` line per problem (``config_file.settings_from_data``)."""
    text = error.message.removeprefix(f"{source}: ")
    head, *rest = text.split("\n")
    fallback = "plugins" if isinstance(error, PluginError) else TOP
    items = [line for line in rest if line.startswith("  ") and line.strip()]
    if items:
        return [_split(line, fallback) for line in items]
    return [_split(text.replace("\n", " "), fallback)] if head else [Problem(fallback, "invalid")]


def _expanded(node: yaml.Node | None) -> int:
    """How many nodes the document is once its aliases are expanded (each node counted once per use)."""
    sizes: dict[int, int] = {}

    def size(item: yaml.Node) -> int:
        known = sizes.get(id(item))
        if known is not None:
            return known
        sizes[id(item)] = 1  # an alias cycle counts once
        if isinstance(item, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in item.value)
        elif isinstance(item, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in item.value)
        else:
            total = 1
        sizes[id(item)] = min(total, MAX_NODES + 1)
        return sizes[id(item)]

    return size(node) if node is not None else 0


def _parse(text: str) -> tuple[Any, Problem | None]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if _expanded(node) > MAX_NODES:
            return None, Problem(TOP, f"the document expands past {MAX_NODES} nodes through its aliases")
        return (loader.construct_document(node) if node is not None else None), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        return None, Problem(TOP, f"YAML syntax error{where}: {problem}", mark.line + 1 if mark else None)
    finally:
        loader.dispose()


def check_text(
    text: str,
    *,
    running: Settings,
    registry: Registry,
    base_dir: Path,
    source: str,
    secrets: Iterable[str] = (),
) -> Checked:
    """Check ``text`` as the reload of a file at ``source`` (in ``base_dir``) would, against the
    running settings and their plugin ``registry``."""
    data, problem = _parse(text)
    if problem is not None:
        return Checked(None, [problem])
    resolution = _Recording(os.environ)
    try:
        settings = settings_from_data(data, source=source, base_dir=base_dir, resolution=resolution)
        if settings.plugins != running.plugins:
            registry = Registry.build(load_plugins(settings.plugins, base_dir=base_dir))
        Extensions.build(registry, settings)
        check_registered(settings, registry)
    except CCRouterError as exc:
        # Stripped: a block scalar's value ends with a newline its echo in a message has not.
        redactor = Redactor(s.strip() for s in (*secrets, *resolution.values))
        problems = [
            Problem(redactor.text(p.path), redactor.text(p.message), p.line) for p in problems_of(exc, source)
        ]
        return Checked(None, problems)
    finally:
        resolution.close()
    return Checked(settings, [], restart_only_changes(running, settings))
