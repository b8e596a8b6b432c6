"""Live configuration: the ``Gateway`` owns the running ``Services`` and swaps them atomically.

A reload (the config file changed, SIGHUP, ``POST /api/config/reload``) reads and validates the new
file completely first, plugins included; if anything is wrong the running configuration stays and
the error is logged and returned. Otherwise new services are built beside the running ones (sharing
what did not change, ``ccrouter.services``) and swapped in with one assignment: requests in flight
finish on the old services, new requests get the new ones, and the old ones are closed once their
last request ends.

Some settings are read once, when the server starts (``RESTART_ONLY``): a reload keeps their
running value and names them in its result.

Secrets that change at their source without the file changing (``${file:...}``, ``${vault:...}``)
are read again every ``secrets.refresh_s`` seconds, in a thread; their keyed fingerprints are compared
with those of the running configuration's load, and any difference is an ordinary reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import SecretStr

from ccrouter.config import Settings
from ccrouter.config_file import load_settings, secret_prints, uses_simulated
from ccrouter.errors import CCRouterError
from ccrouter.plugins import Extensions, Registry, load_plugins
from ccrouter.secret_refs import Resolution
from ccrouter.services import (
    Services,
    activate,
    build_services,
    close_services,
    close_stores,
    stop_background,
)

__all__ = ["RESTART_ONLY", "Gateway", "ReloadResult", "config_version", "restart_only_changes"]

log = logging.getLogger("ccrouter.reload")

# Read once at start: the listening socket and its protocol limits, the failed-authentication
# throttle, the key directory and the single sign-on verifier (their stores and key sets), the
# logging setup, and where the ledger and the shared live state are stored. Client keys, the admin
# token and whether auth is required change with a reload (each configuration's ``Authenticator``).
RESTART_ONLY: tuple[str, ...] = (
    "server.host",
    "server.port",
    "server.backlog",
    "server.max_body_bytes",
    "server.header_timeout_s",
    "server.keys",
    "server.jwt",
    "server.auth_throttle_burst",
    "server.auth_throttle_per_minute",
    "server.log_level",
    "logging.format",
    "logging.level",
    "store",
    "state",
)

# With ``secrets.refresh_s: 0`` the refresh task looks again this often for a new value of the setting.
_REFRESH_IDLE_S = 30.0

# Secrets enter the version through a keyed hash: the version is on every response, and must not
# let anyone test a guess of a secret against it. Made at import, so forked workers share it.
_VERSION_KEY = os.urandom(16)


def config_version(settings: Settings) -> str:
    """A short hash of the settings (secrets included), the same for the same settings."""

    def secret(value: Any) -> str:
        if isinstance(value, SecretStr):
            digest = hmac.new(_VERSION_KEY, value.get_secret_value().encode(), hashlib.sha256)
            return digest.hexdigest()
        raise TypeError(type(value).__name__)

    text = orjson.dumps(settings.model_dump(mode="python"), default=secret, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:12]


def _at(settings: Settings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def restart_only_changes(old: Settings, new: Settings) -> list[str]:
    """The ``RESTART_ONLY`` settings that differ between ``old`` and ``new``."""
    return [path for path in RESTART_ONLY if _at(old, path) != _at(new, path)]


def _keeping(old: Settings, new: Settings, paths: list[str]) -> Settings:
    """``new`` with the settings at ``paths`` (top-level sections or ``section.field``) as in ``old``."""
    sections: dict[str, Any] = {}
    for path in paths:
        section, _, name = path.partition(".")
        if not name:
            sections[section] = getattr(old, section)
            continue
        current = sections.get(section, getattr(new, section))
        sections[section] = current.model_copy(update={name: getattr(getattr(old, section), name)})
    return new.model_copy(update=sections) if sections else new


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """``reloaded``: the new configuration serves; ``unchanged``: nothing to apply; ``refused``: the
    new file is invalid (``error``) and the running configuration stays."""

    status: Literal["reloaded", "unchanged", "refused"]
    version: str
    previous_version: str
    restart_required: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "version": self.version,
            "previous_version": self.previous_version,
            "restart_required": list(self.restart_required),
        }
        if self.restart_required:
            out["note"] = "these settings keep their running value until the gateway is restarted"
        if self.error is not None:
            out["error"] = self.error
        return out


class Gateway:
    """The running services (``current``: read it once per request) and their reloads."""

    def __init__(self, services: Services, *, config_path: Path | None = None) -> None:
        self.current = services
        self.config_path = config_path
        self.last: ReloadResult | None = None
        # Called with the new services after each swap (``serve`` refreshes the log scrubbing).
        self.on_swap: list[Callable[[Services], None]] = []
        self._lock = asyncio.Lock()
        self._retiring: dict[asyncio.Task[None], Services] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_watching = asyncio.Event()
        self._signal: int | None = None
        # Fingerprints of the file and Vault secrets the running configuration was loaded with; None
        # until a reload here made one (the first load happened before the gateway existed).
        self._prints: dict[str, str] | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        registry: Registry,
        *,
        config_dir: Path,
        simulated: bool,
        config_path: Path | None = None,
    ) -> Gateway:
        services = await build_services(
            settings,
            registry,
            config_dir=config_dir,
            simulated=simulated,
            version=config_version(settings),
        )
        activate(services)
        return cls(services, config_path=config_path)

    # ------------------------------------------------------------------ reloading

    async def reload(self) -> ReloadResult:
        """Reload from the config file the gateway was started with."""
        async with self._lock:
            running = self.current
            if self.config_path is None:
                return self._refused(running, "this gateway was not started from a config file")
            try:
                settings, registry, prints = await asyncio.to_thread(self._read, running)
            except CCRouterError as exc:
                return self._refused(running, exc.message)
            result = await self._apply(running, settings, registry, uses_simulated(settings))
            if result.status != "refused":
                self._prints = prints
            return result

    def _read(self, running: Services) -> tuple[Settings, Registry, dict[str, str]]:
        """In a thread: parse and validate the file, and load the plugins it names if they changed;
        with the fingerprints of its refreshable secrets."""
        assert self.config_path is not None
        resolution = Resolution(os.environ)
        try:
            settings = load_settings(self.config_path, resolution=resolution)
        finally:
            resolution.close()
        prints = dict(resolution.prints)
        if settings.plugins == running.settings.plugins:
            return settings, running.registry, prints
        base = self.config_path.parent
        return settings, Registry.build(load_plugins(settings.plugins, base_dir=base)), prints

    async def _apply(
        self, running: Services, settings: Settings, registry: Registry, simulated: bool
    ) -> ReloadResult:
        restart = restart_only_changes(running.settings, settings)
        settings = _keeping(running.settings, settings, restart)
        version = config_version(settings)
        if version == running.version and registry is running.registry:
            return self._done(ReloadResult("unchanged", version, version, tuple(restart)))
        try:
            extensions = Extensions.build(registry, settings)
            services = await build_services(
                settings,
                registry,
                config_dir=running.config_dir,
                simulated=simulated,
                version=version,
                previous=running,
                extensions=extensions,
            )
        except CCRouterError as exc:
            return self._refused(running, exc.message)
        self._swap(running, services)
        result = ReloadResult("reloaded", version, running.version, tuple(restart))
        log.info(
            "configuration reloaded: version %s -> %s%s",
            running.version,
            version,
            f"; restart needed for {', '.join(restart)}" if restart else "",
        )
        return self._done(result)

    def _swap(self, running: Services, services: Services) -> None:
        # One assignment: a request reads ``current`` once and keeps what it read.
        self.current = services
        activate(services)
        for listener in self.on_swap:
            listener(services)
        task = asyncio.create_task(self._retire(running), name="ccrouter-retire-config")
        self._retiring[task] = running
        task.add_done_callback(self._retired)

    async def _retire(self, old: Services) -> None:
        await stop_background(old)
        await old.users.drained()
        await close_services(old, self._serving(old))

    def _retired(self, task: asyncio.Task[None]) -> None:
        self._retiring.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("closing the previous configuration failed: %r", task.exception())

    def _serving(self, besides: Services) -> list[Services]:
        return [self.current, *(s for s in self._retiring.values() if s is not besides)]

    def _refused(self, running: Services, error: str) -> ReloadResult:
        log.error("configuration reload refused, still serving version %s: %s", running.version, error)
        return self._done(ReloadResult("refused", running.version, running.version, error=error))

    def _done(self, result: ReloadResult) -> ReloadResult:
        self.last = result
        return result

    # ------------------------------------------------------------------ triggers

    def reload_soon(self, why: str) -> None:
        """Reload in the background (a signal handler or the file watcher cannot wait)."""
        log.info("reloading the configuration (%s)", why)
        task = asyncio.create_task(self._reload_logged(), name="ccrouter-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:  # the task's boundary: a failed reload must never stop the gateway
            log.exception("configuration reload failed; the running configuration stays")

    def watch(self, *, debounce_ms: int = 400) -> None:
        """Reload whenever the config file changes. The folder is watched, so an editor that
        replaces the file (write a temporary, rename it over) is seen too."""
        if self.config_path is None:
            return
        task = asyncio.create_task(self._watch(self.config_path, debounce_ms), name="ccrouter-watch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, path: Path, debounce_ms: int) -> None:
        from watchfiles import awatch

        # Resolved once (off the loop: it reads the file system): events name resolved paths.
        target = await asyncio.to_thread(path.resolve)
        wanted = str(target)

        def ours(_change: object, changed: str) -> bool:
            return changed == wanted

        try:
            async for _ in awatch(
                target.parent, watch_filter=ours, debounce=debounce_ms, stop_event=self._stop_watching
            ):
                await self._reload_logged()
        except Exception:  # the task's boundary: the gateway serves on without watching
            log.exception("watching %s failed: reload with SIGHUP or POST /api/config/reload", path)

    def refresh_secrets(self) -> None:
        """Every ``secrets.refresh_s`` seconds (read from the running settings each time), read the
        file's ``${file:...}`` and ``${vault:...}`` secrets again and reload when one changed."""
        if self.config_path is None:
            return
        task = asyncio.create_task(self._refresh_loop(self.config_path), name="ccrouter-refresh-secrets")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_loop(self, path: Path) -> None:
        while True:
            every = self.current.settings.secrets.refresh_s
            await asyncio.sleep(every if every > 0 else _REFRESH_IDLE_S)
            if every > 0:
                try:
                    await self._refresh_once(path)
                except Exception:  # the task's boundary: the gateway serves on, the next round tries again
                    log.exception("re-reading the secrets failed; the running configuration stays")

    async def _refresh_once(self, path: Path) -> None:
        if self._prints is None:
            # Nothing to compare with yet: one reload resolves everything afresh (``unchanged`` when
            # nothing changed, which builds nothing) and records the fingerprints.
            await self.reload()
            return
        try:
            prints = await asyncio.to_thread(secret_prints, path)
        except CCRouterError as exc:
            log.warning("re-reading the secrets failed, the running ones stay: %s", exc.message)
            return
        if prints != self._prints:
            log.info("a file or Vault secret changed at its source: reloading the configuration")
            await self.reload()

    def handle_sighup(self) -> None:
        """Reload on SIGHUP (without it, SIGHUP would end the process)."""
        if self.config_path is None or not hasattr(signal, "SIGHUP"):
            return
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_soon, "SIGHUP")
        self._signal = signal.SIGHUP

    async def aclose(self) -> None:
        """Stop watching and close every configuration still open, then the shared stores."""
        self._stop_watching.set()
        if self._signal is not None:
            asyncio.get_running_loop().remove_signal_handler(self._signal)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        retiring = list(self._retiring.items())
        for task, old in retiring:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await close_services(old, [self.current])
        await close_services(self.current)
        await close_stores(self.current)
