"""Loading plugins and gathering what they register.

Plugins come from three places, in this order: ccrouter's built-ins (``ccrouter.builtins``), the
``ccrouter`` entry-point group of installed packages, and ``plugins:`` in the config (module names or
paths to ``.py`` files). ``load_plugins`` returns a pluggy manager holding them all; ``Registry.build``
asks the static ``register_*`` hooks once and freezes the answers; ``Extensions.build`` asks the
hooks that take the settings (again on every reload).

Any failure while importing or registering is a ``PluginError`` naming the plugin: at start the
gateway does not come up; at reload the running configuration stays.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from ccrouter import hookspecs
from ccrouter.errors import PluginError

if TYPE_CHECKING:
    from ccrouter.api.endpoints import Endpoint
    from ccrouter.config import Settings
    from ccrouter.exchange import PreDispatch, ResponseHook
    from ccrouter.providers.base import ProviderType
    from ccrouter.providers.openai_vendors import Vendor
    from ccrouter.routing.rules import RoutingRule
    from ccrouter.routing.strategies import StrategyFactory
    from ccrouter.telemetry.alerts import Sender
    from ccrouter.transformers.base import TransformerFactory

__all__ = [
    "ENTRY_POINT_GROUP",
    "Extensions",
    "PluginInfo",
    "Registry",
    "collect_observers",
    "describe",
    "load_plugins",
]

ENTRY_POINT_GROUP = "ccrouter"
# Built-in plugin modules, registered in this order (their names start with "ccrouter.").
BUILTIN_MODULES: tuple[str, ...] = ("ccrouter.builtins.providers", "ccrouter.builtins.observers")


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def load_plugins(
    config_plugins: Sequence[str] = (), *, base_dir: Path | None = None, entry_points: bool = True
) -> pluggy.PluginManager:
    """A manager with the built-ins, the installed plugins and those the config names. ``base_dir``:
    where relative plugin paths in the config start (the config file's folder)."""
    manager = _new_manager()
    for name in BUILTIN_MODULES:
        manager.register(importlib.import_module(name), name=name)
    if entry_points:
        for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                plugin = point.load()
            except Exception as exc:  # the boundary: any failure of a third party's import
                raise PluginError(f"plugin {point.name!r} ({point.value}) failed to load: {exc!r}") from exc
            _register(manager, plugin, point.name)
    for spec in config_plugins:
        module = _import_config_plugin(spec, base_dir)
        _register(manager, module, spec)
    return manager


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    if manager.has_plugin(name) or manager.is_registered(plugin):
        return  # the same plugin named twice (an entry point and the config): once is enough
    try:
        manager.register(plugin, name=name)
    except Exception as exc:  # pluggy's validation (an unknown hook name, a wrong signature)
        raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from exc


def _import_config_plugin(spec: str, base_dir: Path | None) -> ModuleType:
    """A module name (``package.module``) or a path to a ``.py`` file."""
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise PluginError(f"plugins: {spec!r}: no such file ({path})")
        # One module name per file (a reload re-imports a changed file under a fresh name).
        digest = hashlib.sha256(str(path.resolve()).encode() + path.read_bytes()).hexdigest()[:12]
        module_name = f"ccrouter_plugin_{path.stem}_{digest}"
        found = sys.modules.get(module_name)
        if found is not None:
            return found
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise PluginError(f"plugins: {spec!r} is not a Python file")
        module = importlib.util.module_from_spec(loader_spec)
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:  # the boundary: the plugin's own code
            raise PluginError(f"plugin {spec!r} failed to load: {exc!r}") from exc
        sys.modules[module_name] = module
        return module
    try:
        return importlib.import_module(spec)
    except Exception as exc:  # the boundary: the plugin's own code, or a missing module
        raise PluginError(f"plugin {spec!r} failed to import: {exc!r}") from exc


def _collect(manager: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call ``hook`` on every plugin (in registration order), each with its own ``register``;
    return what each registered, with the plugin's name."""
    out: list[tuple[str, Any]] = []
    caller = getattr(manager.hook, hook)
    # pluggy calls the last registered first; ccrouter's order is registration order (built-ins
    # first), with ``tryfirst`` / ``trylast`` implementations moved to the front / the back.
    impls = sorted(caller.get_hookimpls(), key=lambda impl: (not impl.tryfirst, impl.trylast))
    for impl in impls:
        name = manager.get_name(impl.plugin) or repr(impl.plugin)

        def register(*item: Any, _name: str = name) -> None:
            out.append((_name, item[0] if len(item) == 1 else item))

        args = {key: value for key, value in kwargs.items() if key in impl.argnames}
        try:
            impl.function(register, **args)
        except PluginError:
            raise
        except Exception as exc:  # the boundary: a plugin's own code
            raise PluginError(f"plugin {name!r} failed in {hook}: {exc!r}") from exc
    return out


def _named(items: Iterable[tuple[str, Any]], kind: str) -> Mapping[str, Any]:
    """``(plugin, (name, thing))`` pairs as a read-only name -> thing map; a later plugin may
    replace an earlier one's entry (a third party overriding a built-in)."""
    table: dict[str, Any] = {}
    for plugin, item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise PluginError(f"plugin {plugin!r}: register() in {kind} takes (name, factory)")
        table[item[0]] = item[1]
    return MappingProxyType(table)


@dataclass(frozen=True, slots=True)
class Registry:
    """What the static hooks registered, frozen: read by config validation and service building."""

    manager: pluggy.PluginManager
    providers: Mapping[str, ProviderType]
    vendors: Mapping[str, Vendor]
    strategies: Mapping[str, StrategyFactory]
    transformers: Mapping[str, TransformerFactory]
    endpoints: tuple[Endpoint, ...]

    @classmethod
    def build(cls, manager: pluggy.PluginManager) -> Registry:
        providers = {item.name: item for _, item in _collect(manager, "register_providers")}
        vendors = {item.name: item for _, item in _collect(manager, "register_vendors")}
        return cls(
            manager=manager,
            providers=MappingProxyType(providers),
            vendors=MappingProxyType(vendors),
            strategies=_named(_collect(manager, "register_strategies"), "register_strategies"),
            transformers=_named(_collect(manager, "register_transformers"), "register_transformers"),
            endpoints=tuple(item for _, item in _collect(manager, "register_endpoints")),
        )

    def register_commands(self, cli: Any) -> None:
        """Let every plugin add its CLI commands to ``cli`` (a ``typer.Typer``)."""
        for impl in reversed(self.manager.hook.register_commands.get_hookimpls()):
            name = self.manager.get_name(impl.plugin)
            try:
                impl.function(cli=cli)
            except Exception as exc:  # the boundary: a plugin's own code
                raise PluginError(f"plugin {name!r} failed in register_commands: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class Extensions:
    """What the hooks that take the settings registered for one configuration: rebuilt on reload.
    Empty tuples when no plugin adds any, which the hot path checks once."""

    rules: tuple[RoutingRule, ...] = ()
    pre_dispatch: tuple[PreDispatch, ...] = ()
    response_hooks: tuple[ResponseHook, ...] = ()
    alert_channels: tuple[Sender, ...] = ()
    # Which plugin registered each object (by id), for error messages.
    owners: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def build(cls, registry: Registry, settings: Settings) -> Extensions:
        owners: dict[int, str] = {}

        def gather(hook: str) -> tuple[Any, ...]:
            found = _collect(registry.manager, hook, settings=settings)
            for plugin, item in found:
                owners[id(item)] = plugin
            return tuple(item for _, item in found)

        return cls(
            rules=gather("register_routing_rules"),
            pre_dispatch=gather("register_pre_dispatch"),
            response_hooks=gather("register_response_hooks"),
            alert_channels=gather("register_alert_channels"),
            owners=MappingProxyType(owners),
        )

    def owner(self, item: object) -> str:
        return self.owners.get(id(item), type(item).__qualname__)


def collect_observers(registry: Registry, context: object) -> list[tuple[str, Any]]:
    """``register_observers`` of every plugin, with the services built for this configuration."""
    return _collect(registry.manager, "register_observers", context=context)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    version: str | None
    builtin: bool
    hooks: tuple[str, ...]
    # What it registers (provider types, strategies...), where it can be told without settings.
    provides: tuple[str, ...] = ()


def describe(manager: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin, built-in or not, with the hooks it implements and its version."""
    dists = _distributions()
    out: list[PluginInfo] = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
        module = getattr(plugin, "__name__", type(plugin).__module__)
        builtin = name in BUILTIN_MODULES
        version = None
        if builtin:
            from ccrouter import __version__

            version = __version__
        else:
            version = dists.get(module.split(".")[0]) or getattr(plugin, "__version__", None)
        out.append(PluginInfo(name, version, builtin, hooks))
    return out


def _distributions() -> dict[str, str]:
    """Top-level module name -> the version of the installed distribution that provides it."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        for point in dist.entry_points:
            if point.group == ENTRY_POINT_GROUP:
                found[point.value.split(":")[0].split(".")[0]] = dist.version
    return found
