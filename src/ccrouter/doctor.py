"""``ccrouter doctor``'s checks: the configuration, its variables and key files, the port, each
provider (reachable, key accepted), Claude Code (installed, version, settings, onboarding flag), and
Redis and PostgreSQL when configured.

Each check returns one ``Check`` with a status: ``ok``; ``warn`` (works, but something a user may trip
over: Claude Code's settings not pointing here while ``ccrouter code`` would set them anyway); ``fail``
(something that will not work: ``doctor`` exits 1); ``skip`` (not configured, or not checkable because
an earlier check failed). The checks run concurrently, each bounded by the timeout; no check prints a
key.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
import yaml

from ccrouter.errors import CCRouterError

if TYPE_CHECKING:
    from ccrouter.config import ProviderConfig, Settings
    from ccrouter.plugins import Registry

__all__ = ["Check", "DoctorContext", "claude_paths", "run_checks", "seed_onboarding"]

Status = Literal["ok", "warn", "fail", "skip"]
_PLACEHOLDER = "ccrouter-doctor-placeholder"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""


@dataclass(frozen=True)
class DoctorContext:
    config: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    home: Path = field(default_factory=Path.home)
    timeout_s: float = 5.0


def claude_paths(ctx: DoctorContext) -> tuple[Path, Path]:
    """Claude Code's ``settings.json`` and its global ``.claude.json`` (``$CLAUDE_CONFIG_DIR`` moves both)."""
    folder = ctx.environ.get("CLAUDE_CONFIG_DIR")
    if folder:
        return Path(folder) / "settings.json", Path(folder) / ".claude.json"
    return ctx.home / ".claude" / "settings.json", ctx.home / ".claude.json"


# --- the configuration -------------------------------------------------------------------------


@dataclass
class _Loaded:
    checks: list[Check]
    settings: Settings | None = None
    # Providers whose key reference cannot be resolved now: name -> why.
    unresolved: dict[str, str] = field(default_factory=dict)
    # ``${file:...}`` references whose file cannot be read.
    unreadable: frozenset[str] = frozenset()


def _where(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _provider_of(loc: tuple[int | str, ...], data: Any) -> str | None:
    if len(loc) >= 2 and loc[0] == "providers" and isinstance(loc[1], int):
        providers = data.get("providers") if isinstance(data, dict) else None
        if isinstance(providers, list) and loc[1] < len(providers) and isinstance(providers[loc[1]], dict):
            return str(providers[loc[1]].get("name"))
    return None


def _file_problem(name: str) -> tuple[Status, str] | None:
    path = Path(name.strip()).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return "fail", f"{path}: {exc.strerror or exc}"
    if stat.S_IMODE(mode) & 0o077:
        return "warn", f"{path} is readable by other users (chmod 600 {path})"
    return None


def _references(data: Any, environ: Mapping[str, str], loaded: _Loaded) -> dict[str, str]:
    """Check every ``${VAR}`` and ``${file:...}``; return the environment to validate with (a
    placeholder for each unset variable, so that every other problem is still found)."""
    from ccrouter.config_file import references

    env = dict(environ)
    missing: dict[str, list[str]] = {}
    files: list[tuple[Status, str]] = []
    for loc, kind, name in references(data):
        provider = _provider_of(loc, data)
        if kind == "env" and name not in environ:
            missing.setdefault(name, []).append(_where(loc))
            env[name] = _PLACEHOLDER
            if provider:
                loaded.unresolved[provider] = f"${{{name}}} is not set"
        elif kind == "file" and (problem := _file_problem(name)) is not None:
            files.append(problem)
            if problem[0] == "fail":
                loaded.unreadable |= {"${file:" + name + "}"}
                if provider:
                    loaded.unresolved[provider] = problem[1]
    if missing:
        listed = ", ".join(f"{name} ({', '.join(where)})" for name, where in missing.items())
        loaded.checks.append(
            Check("environment variables", "fail", f"not set: {listed}", "export them, or edit the config")
        )
    else:
        loaded.checks.append(Check("environment variables", "ok", "every referenced variable is set"))
    for status, detail in files:
        loaded.checks.append(Check("key files", status, detail, "ccrouter init writes them with mode 0600"))
    return env


def _load(ctx: DoctorContext) -> _Loaded:
    from ccrouter.config_file import settings_from_data

    loaded = _Loaded([])
    name = f"config {ctx.config}"
    try:
        text = ctx.config.read_text(encoding="utf-8")
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        loaded.checks.append(Check(name, "fail", reason, "write one: ccrouter init"))
        return loaded
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        loaded.checks.append(Check(name, "fail", f"YAML syntax error: {exc}", "fix the file"))
        return loaded
    env = _references(data, ctx.environ, loaded)
    # File references that cannot be read are reported above; read as empty here so the rest validates.
    try:
        settings = settings_from_data(
            _blank(data, loaded.unreadable), env, source="config", base_dir=ctx.config.parent
        )
    except CCRouterError as exc:
        loaded.checks.insert(0, Check(name, "fail", exc.message, "ccrouter config validate shows the same"))
        return loaded
    routes = f"default route {settings.router.default}"
    loaded.checks.insert(0, Check(name, "ok", f"valid: {len(settings.providers)} provider(s), {routes}"))
    loaded.settings = settings
    return loaded


def _blank(node: Any, texts: frozenset[str]) -> Any:
    """The document with each of ``texts`` (unreadable ``${file:...}`` references) made a placeholder."""
    if isinstance(node, str):
        for text in texts:
            node = node.replace(text, _PLACEHOLDER)
        return node
    if isinstance(node, dict):
        return {key: _blank(value, texts) for key, value in node.items()}
    if isinstance(node, list):
        return [_blank(value, texts) for value in node]
    return node


# --- the gateway's port ------------------------------------------------------------------------


async def _port(settings: Settings, ctx: DoctorContext) -> Check:
    from ccrouter.cli.port import probe

    host, port = settings.server.host, settings.server.port
    name = f"port {host}:{port}"
    if port == 0:
        return Check(name, "ok", "port 0: a free port is picked at start")
    holder = await asyncio.to_thread(probe, host, port, min(ctx.timeout_s, 2.0))
    if holder is None:
        return Check(name, "ok", "free")
    if holder.ccrouter:
        return Check(name, "ok", f"a ccrouter gateway answers there ({holder.describe()})")
    return Check(name, "fail", "taken by another program", "stop it, or change server.port (or --port)")


# --- providers ---------------------------------------------------------------------------------


async def _provider(
    config: ProviderConfig, why_unresolved: str | None, registry: Registry, ctx: DoctorContext
) -> Check:
    from ccrouter.probe import probe_provider

    name = f"provider {config.name}"
    if why_unresolved is not None:
        return Check(name, "fail", f"not tested: its key {why_unresolved}", "set the key first")
    result = await probe_provider(config, registry, limit_s=ctx.timeout_s)
    where = config.base_url or "default URL"
    if result.ok:
        return Check(name, "ok", f"{where}: {result.detail}")
    hints = {
        "key_rejected": "check the key (a new one from the provider's console?)",
        "unreachable": "check base_url, the network, or that the server runs",
        "timeout": "the provider is slow or unreachable; retry, or raise --timeout",
    }
    return Check(name, "fail", f"{where}: {result.detail}", hints.get(result.outcome, "see the detail"))


# --- Claude Code -------------------------------------------------------------------------------


async def _claude(ctx: DoctorContext) -> Check:
    from ccrouter.cli.code import find_claude

    found = await asyncio.to_thread(find_claude)
    if found is None:
        return Check(
            "Claude Code", "warn", "not found on PATH nor in ./node_modules/.bin",
            "npm install -g @anthropic-ai/claude-code (not needed for other clients)",
        )  # fmt: skip
    try:
        process = await asyncio.create_subprocess_exec(
            found,
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        return Check("Claude Code", "fail", f"{found}: cannot run it ({exc.strerror or exc})", "reinstall it")
    try:
        out, _ = await asyncio.wait_for(process.communicate(), ctx.timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        return Check(
            "Claude Code", "fail", f"{found} --version gave no answer in {ctx.timeout_s:g}s", "reinstall it"
        )
    version = out.decode("utf-8", "replace").strip().splitlines()
    if process.returncode != 0 or not version:
        return Check("Claude Code", "fail", f"{found} --version exited {process.returncode}", "reinstall it")
    return Check("Claude Code", "ok", f"{version[0][:80]} ({found})")


def _gateway_urls(settings: Settings) -> set[str]:
    host, port = settings.server.host, settings.server.port
    hosts = {host, "127.0.0.1", "localhost"} if host in ("127.0.0.1", "localhost", "0.0.0.0") else {host}
    return {f"http://{h}:{port}" for h in hosts}


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return orjson.loads(path.read_bytes()), None
    except FileNotFoundError:
        return None, None
    except (OSError, orjson.JSONDecodeError) as exc:
        return None, f"{path}: unreadable ({exc})"


async def _claude_settings(settings: Settings, ctx: DoctorContext) -> Check:
    path, _ = claude_paths(ctx)
    name = "Claude Code settings"
    data, problem = await asyncio.to_thread(_read_json, path)
    if problem is not None:
        return Check(name, "warn", problem, "fix or remove the file")
    env = data.get("env") if isinstance(data, dict) else None
    configured = env.get("ANTHROPIC_BASE_URL") if isinstance(env, dict) else None
    source = f"{path} env.ANTHROPIC_BASE_URL"
    if not configured and ctx.environ.get("ANTHROPIC_BASE_URL"):
        configured, source = ctx.environ["ANTHROPIC_BASE_URL"], "$ANTHROPIC_BASE_URL"
    ours = _gateway_urls(settings)
    hint = "use `ccrouter code`, or `ccrouter claude-settings --write` to point a plain `claude` here"
    if not configured:
        return Check(name, "warn", "ANTHROPIC_BASE_URL not set: a plain `claude` talks to Anthropic", hint)
    if str(configured).rstrip("/") in ours:
        return Check(name, "ok", f"{source} = {configured}")
    return Check(name, "warn", f"{source} = {configured}, not this gateway ({sorted(ours)[0]})", hint)


async def _onboarding(ctx: DoctorContext) -> Check:
    _, path = claude_paths(ctx)
    name = "Claude Code onboarding"
    data, problem = await asyncio.to_thread(_read_json, path)
    if problem is not None:
        return Check(name, "warn", problem, "fix or remove the file")
    if isinstance(data, dict) and data.get("hasCompletedOnboarding") is True:
        return Check(name, "ok", f"hasCompletedOnboarding in {path}")
    return Check(
        name, "warn",
        f"no hasCompletedOnboarding in {path}: an interactive first run offline stops at"
        " 'Unable to connect to Anthropic services'",
        f"ccrouter doctor --fix (writes {{\"hasCompletedOnboarding\": true}} into {path})",
    )  # fmt: skip


def seed_onboarding(ctx: DoctorContext) -> Path:
    """Set ``hasCompletedOnboarding: true`` in Claude Code's ``.claude.json``, keeping the rest (the
    old file is kept as ``.claude.json.bak``)."""
    from ccrouter.config_file import write_private

    _, path = claude_paths(ctx)
    data, problem = _read_json(path)
    if problem is not None:
        raise CCRouterError(f"not changed: {problem}")
    if path.exists():
        write_private(path.with_name(path.name + ".bak"), path.read_text(encoding="utf-8"))
    merged = {**(data if isinstance(data, dict) else {}), "hasCompletedOnboarding": True}
    write_private(path, orjson.dumps(merged, option=orjson.OPT_INDENT_2).decode() + "\n")
    return path


# --- Redis and PostgreSQL ----------------------------------------------------------------------


def _safe_url(url: str) -> str:
    """``scheme://host:port/db`` without user or password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


async def _redis(url: str, ctx: DoctorContext) -> Check:
    import redis as redis_package
    import redis.asyncio as redis
    from redis.driver_info import DriverInfo

    name = f"Redis {_safe_url(url)}"
    client = redis.from_url(
        url,
        socket_connect_timeout=ctx.timeout_s,
        socket_timeout=ctx.timeout_s,
        # Told its version, redis-py does not scan the package metadata (on the loop) to connect.
        driver_info=DriverInfo(lib_version=redis_package.__version__),
    )
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        return Check(
            name, "fail", f"no answer to PING: {type(exc).__name__}", "start Redis or fix state.redis_url"
        )
    finally:
        await client.aclose()
    return Check(name, "ok", "PING answered")


async def _postgres(url: str, ctx: DoctorContext) -> Check:
    import asyncpg

    name = f"PostgreSQL {_safe_url(url)}"
    try:
        connection = await asyncpg.connect(url, timeout=ctx.timeout_s)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return Check(
            name, "fail", f"cannot connect: {type(exc).__name__}", "start PostgreSQL or fix store.url"
        )
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()
    return Check(name, "ok", "connected, SELECT 1 answered")


# --- all together ------------------------------------------------------------------------------


async def _bounded(name: str, check: Awaitable[Check], limit_s: float) -> Check:
    try:
        return await asyncio.wait_for(check, limit_s)
    except TimeoutError:
        return Check(name, "fail", f"no result within {limit_s:g}s", "see the detail of the other checks")


def _registry(settings: Settings, ctx: DoctorContext) -> Registry:
    from ccrouter.plugins import Registry, load_plugins

    return Registry.build(load_plugins(settings.plugins, base_dir=ctx.config.parent))


async def run_checks(ctx: DoctorContext) -> list[Check]:
    """Every check, in a stable order; they run concurrently."""
    loaded = await asyncio.to_thread(_load, ctx)
    limit = ctx.timeout_s + 2.0
    pending: list[tuple[str, Awaitable[Check]]] = []
    settings = loaded.settings
    if settings is not None:
        registry = await asyncio.to_thread(_registry, settings, ctx)
        pending.append(("port", _port(settings, ctx)))
        for provider in settings.providers:
            why = loaded.unresolved.get(provider.name)
            pending.append((f"provider {provider.name}", _provider(provider, why, registry, ctx)))
    pending.append(("Claude Code", _claude(ctx)))
    if settings is not None:
        pending.append(("Claude Code settings", _claude_settings(settings, ctx)))
    pending.append(("Claude Code onboarding", _onboarding(ctx)))
    if settings is not None and settings.state.redis_url is not None:
        pending.append(("Redis", _redis(settings.state.redis_url.get_secret_value(), ctx)))
    store = settings.store.url.get_secret_value() if settings is not None and settings.store.url else None
    if store is not None and store.startswith(("postgres://", "postgresql://")):
        pending.append(("PostgreSQL", _postgres(store, ctx)))
    results = await asyncio.gather(*(_bounded(name, check, limit) for name, check in pending))
    return [*loaded.checks, *results]
