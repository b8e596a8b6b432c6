"""Per-project settings on the client side: the ``.ccrouter.yaml`` of a project directory and the
headers that carry it to the gateway (``ccrouter code`` sets them through ``ANTHROPIC_CUSTOM_HEADERS``).

A project file::

    project: billing-api          # default: the name of the directory holding the file
    profile: cheap                # a profile of the gateway's config (``profiles:``)
    routes:                       # scenario -> provider,model, over the config's and the profile's
      default: deepseek,deepseek-chat
      subagent: groq,llama-3.3-70b-versatile

The gateway reads ``x-ccrouter-project``, ``x-ccrouter-profile`` and ``x-ccrouter-routes``
(``think=p,m;default=p,m``) and checks them again (``ccrouter.routing.project``): names made of
``[A-Za-z0-9_.-]``, bounded lengths, only the scenario keys below, routes that name configured
providers and models.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ccrouter.errors import ConfigError

__all__ = [
    "MAX_NAME",
    "MAX_ROUTES_HEADER",
    "NAME_PATTERN",
    "PROFILE_HEADER",
    "PROJECT_FILE",
    "PROJECT_HEADER",
    "ROUTES_HEADER",
    "SCENARIOS",
    "ProjectFile",
    "find_project_file",
    "load_project",
    "project_headers",
]

PROJECT_FILE: Final = ".ccrouter.yaml"
PROJECT_HEADER: Final = "x-ccrouter-project"
PROFILE_HEADER: Final = "x-ccrouter-profile"
ROUTES_HEADER: Final = "x-ccrouter-routes"
# The scenario routes a project or a profile may override (``router.<scenario>``).
SCENARIOS: Final = ("default", "background", "think", "long_context", "web_search", "image", "subagent")
NAME_PATTERN: Final = r"^[A-Za-z0-9_.\-]+$"
MAX_NAME: Final = 64
# A provider or model name in a route header: model names carry ``/`` and ``:`` (``openai/gpt-5``,
# ``llama3:8b``), never a ``,``, ``;``, ``=`` or whitespace.
ROUTE_PART_PATTERN: Final = r"^[A-Za-z0-9_.:/@+\-]+$"
MAX_ROUTE_PART: Final = 128
MAX_ROUTES_HEADER: Final = 2048
# How many directories ``find_project_file`` looks at, at most.
_MAX_DEPTH: Final = 64
_MAX_FILE_BYTES: Final = 64 * 1024
_NAME = re.compile(NAME_PATTERN)
_ROUTE_PART = re.compile(ROUTE_PART_PATTERN)


def check_route(route: str) -> str:
    """``provider,model`` with header-safe parts (ValueError otherwise); returned stripped."""
    provider, sep, model = (part.strip() for part in route.partition(","))
    if not sep or not provider or not model:
        raise ValueError(f"expected 'provider,model', got {route!r}")
    for part in (provider, model):
        if len(part) > MAX_ROUTE_PART or not _ROUTE_PART.match(part):
            raise ValueError(
                f"{part!r} in {route!r}: use letters, digits and _.:/@+- (at most {MAX_ROUTE_PART})"
            )
    return f"{provider},{model}"


class ProjectFile(BaseModel):
    """A project's ``.ccrouter.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN)]
    profile: Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN)] | None = None
    routes: dict[str, str] = Field(default_factory=dict)

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for scenario, route in value.items():
            if scenario not in SCENARIOS:
                raise ValueError(f"unknown scenario {scenario!r} (use any of: {', '.join(SCENARIOS)})")
            try:
                checked[scenario] = check_route(route)
            except ValueError as exc:
                raise ValueError(f"{scenario}: {exc}") from None
        return checked


def find_project_file(start: Path) -> Path | None:
    """The nearest ``.ccrouter.yaml`` in ``start`` or a directory above it. The search stops after
    the home directory (a file in ``$HOME`` itself counts, nothing above it when ``start`` is under
    it), at the filesystem root, or after 64 directories."""
    home = _home()
    current = start.absolute()
    for _ in range(_MAX_DEPTH):
        candidate = current / PROJECT_FILE
        if candidate.is_file():
            return candidate
        if current == home or current.parent == current:
            return None
        current = current.parent
    return None


def _home() -> Path | None:
    home = os.environ.get("HOME")
    return Path(home).absolute() if home else None


def load_project(path: Path) -> ProjectFile:
    """The project file at ``path``; a ConfigError names the file and the key at fault."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {_MAX_FILE_BYTES} bytes")
    try:
        data: Any = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of project, profile and routes")
    data.setdefault("project", _directory_name(path))
    try:
        return ProjectFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None


def _directory_name(path: Path) -> str:
    """The project's default name: its directory's, with characters a header cannot hold as ``-``."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", path.absolute().parent.name)[:MAX_NAME]
    return name or "project"


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (use project, profile or routes)"
    return f"{where}: {message}" if where else message


def project_headers(project: ProjectFile) -> dict[str, str]:
    """The headers that carry ``project`` to the gateway."""
    headers = {PROJECT_HEADER: project.project}
    if project.profile is not None:
        headers[PROFILE_HEADER] = project.profile
    if project.routes:
        headers[ROUTES_HEADER] = ";".join(f"{scenario}={route}" for scenario, route in project.routes.items())
    return headers
