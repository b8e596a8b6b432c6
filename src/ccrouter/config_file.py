"""Read, interpolate, validate and create the YAML configuration file.

``load_settings`` is the only way from a file to ``Settings``: every problem surfaces as a
``ConfigError`` whose message names the exact key path (``providers[0].base_url: ...``). Secrets stay
out of the file: detected keys are written as ``${VAR}`` references and resolved at load time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from ccrouter.config import Settings, registry_context
from ccrouter.config_errors import describe, key_path, missing_variables_message
from ccrouter.errors import ConfigError, PluginError
from ccrouter.presets import PRESETS, preset
from ccrouter.secret_refs import KINDS, Reference, Resolution, find, read_secret_file

if TYPE_CHECKING:
    from ccrouter.plugins import Registry

__all__ = [
    "default_config_path",
    "detect_providers",
    "dump_yaml",
    "interpolate",
    "load_or_create",
    "load_settings",
    "read_secret_file",
    "references",
    "secret_prints",
    "settings_from_data",
    "uses_simulated",
    "write_default_config",
    "write_private",
]

SIMULATED_PROVIDER: dict[str, Any] = {"name": "simulated", "type": "simulated", "models": ["sim-1"]}


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$CCROUTER_CONFIG`` if set, else ``~/.ccrouter/config.yaml``; its folder holds pid file and logs."""
    env = os.environ if environ is None else environ
    if env.get("CCROUTER_CONFIG"):
        return Path(env["CCROUTER_CONFIG"]).expanduser()
    return Path.home() / ".ccrouter" / "config.yaml"


def references(node: Any, loc: tuple[int | str, ...] = ()) -> list[tuple[tuple[int | str, ...], str, str]]:
    """Every reference in the string values of a parsed document: (key path, kind, target), the kind
    one of ``ccrouter.secret_refs.KINDS`` (``env``: a variable name; ``file``: a path; ``keyring``:
    ``service/name``; ``vault``: ``path#field``) or an unknown one as written, in document order.
    Nothing is read or resolved."""
    if isinstance(node, str):
        return [(loc, ref.kind, ref.target) for ref in find(node)] if "$" in node else []
    if isinstance(node, dict):
        return [ref for key, value in node.items() for ref in references(value, (*loc, str(key)))]
    if isinstance(node, list):
        return [ref for i, value in enumerate(node) for ref in references(value, (*loc, i))]
    return []


def _interpolate(node: Any, resolution: Resolution, loc: tuple[int | str, ...]) -> Any:
    if isinstance(node, str):
        return resolution.substitute(node, key_path(loc))
    if isinstance(node, dict):
        return {key: _interpolate(value, resolution, (*loc, str(key))) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, resolution, (*loc, i)) for i, value in enumerate(node)]
    return node


def interpolate(
    node: Any,
    environ: Mapping[str, str],
    loc: tuple[int | str, ...] = (),
    *,
    resolution: Resolution | None = None,
) -> Any:
    """Replace every reference (``ccrouter.secret_refs``: ``${VAR}``/``$VAR``/``${env:VAR}``,
    ``${file:...}``, ``${keyring:...}``, ``${vault:...}``) in every string value (``$$`` is a literal
    ``$``); keys are left alone. Unset variables are one ``ConfigError`` naming every one of them and
    the keys that use them; any other unresolvable reference is a ``ConfigError`` naming it.
    ``resolution``: the load to resolve in (its fingerprints are the caller's); one made here if None."""
    own = resolution is None
    active = Resolution(environ) if resolution is None else resolution
    try:
        resolved = _interpolate(node, active, loc)
    finally:
        if own:
            active.close()
    if active.missing:
        raise ConfigError(missing_variables_message(active.missing))
    return resolved


def secret_prints(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Fingerprints (``secret_refs.fingerprint``) of the refreshable references (files, Vault) the
    config file at ``path`` uses, read afresh: what the periodic refresh compares with those of the
    running configuration's load. Blocking (run it in a thread); a ``ConfigError`` if one cannot be
    read now."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({type(exc).__name__})") from None
    resolution = Resolution(os.environ if environ is None else environ)
    try:
        for loc, kind, target in references(data):
            if kind in KINDS and KINDS[kind].refreshable:
                resolution.resolve(Reference(kind, target, f"${{{kind}:{target}}}"), key_path(loc))
    finally:
        resolution.close()
    return dict(resolution.prints)


def _registry_for(data: dict[str, Any], base_dir: Path | None, config_plugins: bool) -> Registry:
    """The plugins the document would run with (built-ins, installed, its ``plugins:``), so that the
    provider types they add are valid; a malformed ``plugins:`` is left to the validation."""
    from ccrouter.plugins import Registry, load_plugins

    named = data.get("plugins", []) if config_plugins else []
    if not (isinstance(named, list) and all(isinstance(item, str) for item in named)):
        named = []
    return Registry.build(load_plugins(named, base_dir=base_dir))


def settings_from_data(
    data: Any,
    environ: Mapping[str, str] | None = None,
    *,
    source: str = "config",
    base_dir: Path | None = None,
    run_plugins: bool = True,
    resolution: Resolution | None = None,
) -> Settings:
    """Interpolate and validate an already parsed document; ``base_dir``: where relative plugin paths
    start (the file's folder). ``run_plugins=False`` checks the document's shape only: its own
    ``plugins:`` are not imported and no plugin is asked about the settings (the code it names, a
    ``router.custom`` hook say, need not exist here: documentation examples). ``resolution``: see
    ``interpolate``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (server, providers, router)")
    try:
        resolved = interpolate(data, os.environ if environ is None else environ, resolution=resolution)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None
    try:
        registry = _registry_for(resolved, base_dir, run_plugins)
    except PluginError as exc:
        raise PluginError(f"{source}: {exc.message}") from exc.__cause__
    try:
        settings = Settings.model_validate(resolved, context=registry_context(registry))
    except ValidationError as exc:
        problems = "\n".join(f"  {describe(error)}" for error in exc.errors())
        raise ConfigError(f"{source}: invalid configuration\n{problems}") from None
    if not run_plugins:
        return settings
    try:
        # The hooks that take the settings, asked once here too: a plugin refusing them is a problem
        # of this file, found before anything starts.
        registry.extensions(settings)
    except PluginError as exc:
        raise PluginError(f"{source}: {exc.message}") from exc.__cause__
    return settings


def load_settings(
    path: Path, environ: Mapping[str, str] | None = None, *, resolution: Resolution | None = None
) -> Settings:
    """Read, interpolate and validate the YAML file at ``path`` (``resolution``: see ``interpolate``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (`ccrouter serve` or `ccrouter start` writes one)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    return settings_from_data(data, environ, source=str(path), base_dir=path.parent, resolution=resolution)


def uses_simulated(settings: Settings) -> bool:
    """True when the default route goes to the built-in simulated provider (no real key configured)."""
    provider = settings.provider(settings.router.default.split(",")[0].strip())
    return provider is not None and provider.type == "simulated"


# --- first run: detect what the environment offers ------------------------------------------------


_OLLAMA = preset("ollama")


def probe_ollama() -> bool:
    """A 0.3 s TCP connect to Ollama's default port on loopback."""
    try:
        with socket.create_connection(("127.0.0.1", 11434), timeout=0.3):
            return True
    except OSError:
        return False


def detect_providers(
    environ: Mapping[str, str], *, ollama_probe: Callable[[], bool] = probe_ollama
) -> list[dict[str, Any]]:
    """Provider dicts for every API key found in ``environ`` (as ``${VAR}`` references) and a local Ollama."""
    found = [
        known.provider(f"${{{var}}}")  # a reference: the secret itself never reaches the file
        for known in PRESETS
        if known.needs_key and (var := known.key_var(environ)) is not None
    ]
    if ollama_probe() and _OLLAMA is not None:
        found.append(_OLLAMA.provider())
    return found


def _router_for(providers: list[dict[str, Any]]) -> dict[str, Any]:
    first = providers[0]
    router: dict[str, Any] = {"default": f"{first['name']},{first['models'][0]}"}
    known = preset(first["name"])
    background = known.background if known is not None else None
    if background:
        router["background"] = f"{first['name']},{background}"
    return router


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of scalars (model lists, api_keys) which read better inline."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = bool(data) and all(isinstance(item, str | int | float | bool) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """YAML text for a config document, keys in insertion order."""
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


_HEADER = """\
# ccrouter configuration (written on first run; edit freely: a running gateway applies a saved edit at
# once, and keeps its configuration if the edit is invalid; server.host/port need `ccrouter restart`).
# Check it with `ccrouter config validate`. Secrets stay out of this file: `${VAR}` and `$VAR` are read
# from the environment when the gateway starts, `${file:~/path}` from a file, `${keyring:service/name}`
# from the system keyring, `${vault:path#field}` from HashiCorp Vault (`$$` is a literal `$`).
"""
_SIMULATED_NOTE = """\
# No API key was found in the environment, so the built-in simulated provider answers every request.
# To use a real model, export a key (ANTHROPIC_API_KEY, OPENAI_API_KEY, DEEPSEEK_API_KEY, GROQ_API_KEY,
# OPENROUTER_API_KEY, GEMINI_API_KEY or GITHUB_TOKEN), delete this file and run ccrouter again; or add a
# provider by hand, e.g.:
#   - name: deepseek
#     type: openai
#     base_url: https://api.deepseek.com/v1
#     api_key: ${DEEPSEEK_API_KEY}
#     models: [deepseek-chat, deepseek-reasoner]
"""
_ROUTER_NOTE = """\
# Each route is "provider,model". Optional scenarios: background, think, long_context (with
# long_context_threshold, tokens), web_search, image; custom: package.module:function.
"""


def _render_default(providers: list[dict[str, Any]], simulated: bool) -> str:
    server = dump_yaml({"server": {"host": "127.0.0.1", "port": 3456}})
    server_note = "# Client keys the gateway accepts (x-api-key or Bearer); needed for a non-loopback host.\n"
    server_note += '#   api_keys: ["${CCROUTER_API_KEY}"]   # quoted: YAML reads "{" in [...] as a mapping\n'
    return "\n".join(
        [
            _HEADER + server + server_note,
            (_SIMULATED_NOTE if simulated else "") + dump_yaml({"providers": providers}),
            _ROUTER_NOTE + dump_yaml({"router": _router_for(providers)}),
        ]
    )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically with mode 0600 (the file may hold client keys)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_default_config(
    path: Path, environ: Mapping[str, str], *, ollama_probe: Callable[[], bool] = probe_ollama
) -> tuple[Settings, bool]:
    """Write a commented default config from what ``environ`` offers; return it loaded and whether it is
    the simulated fallback."""
    providers = detect_providers(environ, ollama_probe=ollama_probe)
    simulated = not providers
    if simulated:
        providers = [{**SIMULATED_PROVIDER, "models": list(SIMULATED_PROVIDER["models"])}]
    write_private(path, _render_default(providers, simulated))
    return load_settings(path, environ), simulated


def load_or_create(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, Path, bool]:
    """Load the config at ``path`` (default location when None), writing a default one first if absent."""
    env = os.environ if environ is None else environ
    target = default_config_path(env) if path is None else path
    if target.exists():
        return load_settings(target, env), target, False
    settings, _ = write_default_config(target, env)
    return settings, target, True
