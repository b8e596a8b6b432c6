"""Loading plugins and gathering what they register.

Plugins come from three places, in this order: ccrouter's built-ins (``ccrouter.builtins``), the
``ccrouter`` entry-point group of installed packages, and ``plugins:`` in the config (module names or
paths to ``.py`` files). ``load_plugins`` returns a pluggy manager holding them all; ``Registry.build``
asks the static ``register_*`` hooks once and freezes the answers; ``Extensions.build`` asks the
hooks that take the settings (again on every reload). Hooks are asked in that order, and an entry a
later plugin registers under a taken name (a provider type, a vendor...) replaces the earlier one.

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
    from ccrouter.exchange import PreDispatch, ResponseHook, TargetStep
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
    "add_commands",
    "collect_observers",
    "describe",
    "load_plugins",
]

ENTRY_POINT_GROUP = "ccrouter"
# Built-in plugin modules, registered in this order (their names start with "ccrouter.").
BUILTIN_MODULES: tuple[str, ...] = (
    "ccrouter.builtins.providers",
    "ccrouter.builtins.vendors",
    "ccrouter.builtins.endpoints",
    "ccrouter.builtins.transformers",
    "ccrouter.builtins.routing",
    "ccrouter.builtins.images",
    "ccrouter.builtins.observers",
)


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
        _load_entry_points(manager)
    for spec in config_plugins:
        module = _import_config_plugin(spec, base_dir)
        _register(manager, module, spec)
    return manager


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = point.load()
        except Exception as exc:  # the boundary: any failure of a third party's import
            raise PluginError(f"plugin {point.name!r} ({point.value}) failed to load: {exc!r}") from exc
        _register(manager, plugin, point.name)


def add_commands(cli: Any) -> None:
    """The installed plugins' (``ccrouter`` entry points) ``register_commands`` on ``cli`` (the
    ``typer.Typer`` of the ``ccrouter`` command). Built-ins add none, and are not imported: the CLI
    starts without loading the gateway."""
    manager = _new_manager()
    _load_entry_points(manager)
    _call_commands(manager, cli)


def _call_commands(manager: pluggy.PluginManager, cli: Any) -> None:
    for impl in manager.hook.register_commands.get_hookimpls():
        name = manager.get_name(impl.plugin)
        try:
            impl.function(cli=cli)
        except Exception as exc:  # the boundary: a plugin's own code
            raise PluginError(f"plugin {name!r} failed in register_commands: {exc!r}") from exc


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    if manager.has_plugin(name) or manager.is_registered(plugin):
        return  # the same plugin named twice (an entry point and the config): once is enough
    try:
        manager.register(plugin, name=name)
        # A hook implementation whose name is no hook (a typo) would otherwise never be called.
        manager.check_pending()
    except Exception as exc:  # pluggy's validation (an unknown hook name, a wrong signature)
        # One line: pluggy's validation messages span several.
        raise PluginError(f"plugin {name!r} cannot be registered: {' '.join(str(exc).split())}") from exc


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
    # Registration order (built-ins, entry points, the config's), which ``get_hookimpls`` keeps
    # (pluggy's own call would run the last registered first), with ``tryfirst`` / ``trylast``
    # implementations moved to the front / the back.
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


def _choices(names: Iterable[str]) -> str:
    """``'a', 'b' or 'c'``, as pydantic words a choice (the config file's other messages)."""
    quoted = [repr(name) for name in names]
    if len(quoted) < 2:
        return "".join(quoted) or "(nothing registered)"
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _label(item: Any) -> str:
    """How ``plugins list`` names a registered thing: its name, path, or the name it was registered by."""
    if isinstance(item, tuple) and item and isinstance(item[0], str):
        return item[0]
    for attr in ("name", "path", "__name__"):
        value = getattr(item, attr, None)
        if isinstance(value, str):
            return value
    return type(item).__qualname__


@dataclass(frozen=True, slots=True)
class Registry:
    """What the static hooks registered, frozen: read by config validation and service building."""

    manager: pluggy.PluginManager
    providers: Mapping[str, ProviderType]
    vendors: Mapping[str, Vendor]
    strategies: Mapping[str, StrategyFactory]
    transformers: Mapping[str, TransformerFactory]
    endpoints: tuple[Endpoint, ...]
    # plugin name -> what it registered ("provider openai", "strategy fastest"...), for ``describe``.
    provided: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, manager: pluggy.PluginManager) -> Registry:
        provided: dict[str, list[str]] = {}

        def gather(hook: str, kind: str) -> list[tuple[str, Any]]:
            found = _collect(manager, hook)
            for plugin, item in found:
                provided.setdefault(plugin, []).append(f"{kind} {_label(item)}")
            return found

        providers = {item.name: item for _, item in gather("register_providers", "provider")}
        vendors = {item.name: item for _, item in gather("register_vendors", "vendor")}
        return cls(
            manager=manager,
            providers=MappingProxyType(providers),
            vendors=MappingProxyType(vendors),
            strategies=_named(gather("register_strategies", "strategy"), "register_strategies"),
            transformers=_named(gather("register_transformers", "transformer"), "register_transformers"),
            endpoints=tuple(item for _, item in gather("register_endpoints", "endpoint")),
            provided=MappingProxyType({name: tuple(items) for name, items in provided.items()}),
        )

    def extensions(self, settings: Settings) -> Extensions:
        """What the hooks that take the settings register for ``settings``."""
        return Extensions.build(self, settings)

    def implements(self, hook: str) -> bool:
        """Whether any plugin implements ``hook``: what is not implemented is not wired in at all."""
        return bool(getattr(self.manager.hook, hook).get_hookimpls())

    def type_problem(self, name: str) -> str | None:
        """Why ``providers[].type`` cannot be ``name`` (None: it is a registered provider type)."""
        if name in self.providers:
            return None
        return f"Input should be {_choices(self.providers)}"

    def vendor_problem(self, type_name: str, vendor: str | None) -> str | None:
        """Why a provider of ``type_name`` cannot name ``vendor`` (None: it can, or is not checked)."""
        kind = self.providers.get(type_name)
        if kind is None or vendor is None:
            return None
        allowed = tuple(self.vendors) if kind.vendor_profiles else kind.vendors
        if not allowed or vendor in allowed:
            return None
        return f"vendor {vendor!r} is not one of type {type_name!r}: should be {_choices(allowed)}"

    def register_commands(self, cli: Any) -> None:
        """Let every plugin add its CLI commands to ``cli`` (a ``typer.Typer``)."""
        _call_commands(self.manager, cli)


@dataclass(frozen=True, slots=True)
class Extensions:
    """What the hooks that take the settings registered for one configuration: rebuilt on reload.
    Empty tuples when no plugin adds any, which the hot path checks once."""

    rules: tuple[RoutingRule, ...] = ()
    pre_dispatch: tuple[PreDispatch, ...] = ()
    target_steps: tuple[TargetStep, ...] = ()
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
            target_steps=gather("register_target_steps"),
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
    # "built-in", "installed" (an entry point) or "config" (named in ``plugins:``).
    origin: str = "built-in"
    # What it registers (provider types, strategies...): the static hooks' answers, and with
    # ``Extensions`` those of the hooks that take the settings.
    provides: tuple[str, ...] = ()


def describe(registry: Registry, extensions: Extensions | None = None) -> list[PluginInfo]:
    """Every registered plugin, built-in or not, in load order, with its version, the hooks it
    implements and what it registers."""
    from ccrouter import __version__

    manager = registry.manager
    per_config = _provided_by(extensions) if extensions is not None else {}
    entry_versions = _entry_point_versions()
    out: list[PluginInfo] = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
        builtin = name in BUILTIN_MODULES
        version = __version__ if builtin else entry_versions.get(name) or _module_version(plugin)
        origin = "built-in" if builtin else "installed" if name in entry_versions else "config"
        # One line per name: an endpoint with two routes (/v1/models and /v1/models/{id}) is one.
        provides = tuple(dict.fromkeys((*registry.provided.get(name, ()), *per_config.get(name, ()))))
        out.append(PluginInfo(name, version, builtin, hooks, origin, provides))
    return out


def _provided_by(extensions: Extensions) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    kinds = (
        ("rule", extensions.rules),
        ("pre-dispatch", extensions.pre_dispatch),
        ("target step", extensions.target_steps),
        ("response hook", extensions.response_hooks),
        ("alert channel", extensions.alert_channels),
    )
    for kind, items in kinds:
        for item in items:
            found.setdefault(extensions.owner(item), []).append(f"{kind} {_label(item)}")
    return found


def _entry_point_versions() -> dict[str, str | None]:
    """Entry-point name -> the version of the distribution that declares it."""
    return {
        point.name: point.dist.version if point.dist is not None else None
        for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    }


def _module_version(plugin: object) -> str | None:
    """A module's ``__version__``, else the version of the installed distribution holding it."""
    declared = getattr(plugin, "__version__", None)
    if isinstance(declared, str):
        return declared
    top = getattr(plugin, "__name__", type(plugin).__module__).split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, ()):
        return importlib.metadata.version(dist)
    return None
