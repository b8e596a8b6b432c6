"""What the benchmark runs: the targets, their configuration files, and how each one is started.

Every target is a real server process in its own session (so the run can stop exactly the process
groups it started), bound to 127.0.0.1 and pointed at the one fake upstream.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from common import HERE, HOST, free_port, http_ok, listener_pids, log, proc_tree
from live_watch import TOKEN_ENV
from payloads import UPSTREAM_MODEL

PEERS = HERE / ".peers"
LITELLM = PEERS / "venv" / "bin" / "litellm"
CCR_CLI = PEERS / "node" / "node_modules" / "@musistudio" / "claude-code-router" / "dist" / "cli.js"
# LiteLLM refuses to start without a master key; the client sends it to every target (others ignore it).
CLIENT_KEY = "sk-bench-7f3a9c1e5b2d4f608a1c3e5b7d9f1a2c4e6b8d0f"
# The managed key the client presents to the ``-keys`` modes (one of the 1,000 the store holds).
MANAGED_KEY = "ccr-" + "benchBENCHbench0123456789_-benchBENCHbench0"
MANAGED_KEYS = 1000
LIVE_TOKEN = "adm-bench-live-0123456789abcdef"
START_TIMEOUT_S = 60.0

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"


@dataclass
class Target:
    """One thing the client measures. ``baseline`` names the direct target its latency is compared to."""

    name: str
    label: str
    kind: str  # "direct" (client straight to the upstream), "floor", "ccrouter", "peer"
    wire: str  # the client's format: "anthropic" or "openai"
    url: str
    baseline: str
    slow: bool = False  # peers: fewer sequential requests, so the run stays bounded
    pid: int = 0  # root pid of the server (0 for direct targets: the upstream is not measured)
    port: int = 0
    startup_s: float | None = None
    rss_start_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Launcher:
    """Starts server processes in their own sessions and stops exactly those."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log_file = (self.workdir / f"{name.replace(' ', '_')}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with killpg, nothing else
        )
        log_file.close()
        self.procs.append(proc)
        return proc

    def start(
        self, name: str, argv: list[str], port: int, health: str, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], float]:
        """Spawn and wait until ``health`` answers; returns the process and the seconds it took."""
        started = time.perf_counter()
        proc = self.spawn(name, argv, env)
        url = f"http://{HOST}:{port}{health}"
        deadline = started + START_TIMEOUT_S
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_tail(name)}")
            if http_ok(url, timeout=0.5):
                return proc, time.perf_counter() - started
            time.sleep(0.01)
        raise RuntimeError(
            f"{name} did not answer {url} within {START_TIMEOUT_S:g} s; see {self.log_tail(name)}"
        )

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.workdir / f"{name.replace(' ', '_')}.log"
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return str(path)
        return f"{path}:\n" + "\n".join(text)

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for proc in self.procs:  # children that outlived their leader (uvicorn / node helpers)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()


def server_pids(root: int, port: int) -> list[int]:
    """The processes to charge: ``root``'s tree plus whatever listens on ``port`` and its tree."""
    pids = set(proc_tree(root)) if root else set()
    for pid in listener_pids(port):
        pids.update(proc_tree(pid))
    return sorted(pids)


def _bench_role(role: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, str(HERE / "run.py"), "--role", role, "--port", str(port), *extra]


def start_upstream(launcher: Launcher) -> tuple[str, int, int]:
    port = free_port()
    proc, seconds = launcher.start("upstream", _bench_role("upstream", port), port, "/health")
    log(f"upstream on :{port} ({seconds:.2f} s)")
    return f"http://{HOST}:{port}", port, proc.pid


def direct_targets(upstream: str) -> list[Target]:
    return [
        Target(
            "direct",
            "client -> upstream (Anthropic body)",
            "direct",
            "anthropic",
            upstream + ANTHROPIC_PATH,
            "direct",
        ),
        Target(
            "direct-oai",
            "client -> upstream (OpenAI body)",
            "direct",
            "openai",
            upstream + OPENAI_PATH,
            "direct-oai",
        ),
    ]


def _measured(
    launcher: Launcher, target: Target, argv: list[str], health: str, env: dict[str, str] | None = None
) -> Target:
    from common import rss_mb

    proc, seconds = launcher.start(target.name, argv, target.port, health, env)
    target.pid = proc.pid
    target.startup_s = seconds
    target.rss_start_mb = rss_mb(server_pids(proc.pid, target.port))
    log(f"{target.name} on :{target.port}, healthy after {seconds:.2f} s")
    return target


def start_floor(launcher: Launcher, upstream: str) -> Target:
    port = free_port()
    target = Target(
        "floor",
        "raw aiohttp pass-through (no parsing)",
        "floor",
        "anthropic",
        f"http://{HOST}:{port}{ANTHROPIC_PATH}",
        "direct",
        port=port,
    )
    return _measured(launcher, target, _bench_role("floor", port, "--upstream", upstream), "/health")


# ---------------------------------------------------------------- ccrouter

CCROUTER_MODES = {
    # mode: (label, provider type, client wire, request path)
    "a2o": ("ccrouter Anthropic->OpenAI (translation)", "openai", "anthropic", ANTHROPIC_PATH),
    "a2a": ("ccrouter Anthropic->Anthropic (passthrough)", "anthropic", "anthropic", ANTHROPIC_PATH),
    "o2o": ("ccrouter OpenAI->OpenAI", "openai", "openai", OPENAI_PATH),
    # Issue 14: client auth by managed key (1,000 in the store), per-key rpm/tpm and a per-user rule.
    # Issue 15: a2o with the dashboard's Overview open (one SSE client on /api/live the whole run).
    "a2o-live": (
        "ccrouter a2o, the dashboard's Overview open (live stream)",
        "openai",
        "anthropic",
        ANTHROPIC_PATH,
    ),
    "a2o-keys": (
        "ccrouter a2o, 1,000 managed keys, per-key and per-user limits",
        "openai",
        "anthropic",
        ANTHROPIC_PATH,
    ),
    # Issue 17: a2o with live state shared through Redis (``REDIS_URL``, default the local server).
    "a2o-redis": (
        "ccrouter a2o, live state shared through Redis",
        "openai",
        "anthropic",
        ANTHROPIC_PATH,
    ),
}

# The Redis server the ``-redis`` modes share their live state through (a fresh key prefix per run).
REDIS_URL = os.environ.get("CCROUTER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def port_tag() -> str:
    """A short random tag: each run's Redis keys under their own prefix."""
    return os.urandom(4).hex()


def with_managed_keys(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``config`` requiring client auth, its ledger (and so its keys) in ``folder``, 1,000 managed keys
    in it (``MANAGED_KEY`` among them, with limits no run reaches), and a per-user limit rule."""
    import asyncio

    from ccrouter.auth.keys import KeyRecord, hash_secret, new_secret
    from ccrouter.store.sqlite import SQLiteStore

    ledger = folder / "usage.db"

    async def seed() -> None:
        store = SQLiteStore(ledger)
        await store.open()
        try:
            now = time.time()
            for i in range(MANAGED_KEYS):
                secret = MANAGED_KEY if i == MANAGED_KEYS // 2 else new_secret()
                record = KeyRecord(
                    id=f"key_bench{i:06d}",
                    name=f"bench-{i}",
                    hash=hash_secret(secret),
                    prefix=secret[:8],
                    created_at=now,
                    user=f"user-{i % 50}",
                    team=f"team-{i % 5}",
                    rpm=10_000_000,
                    tpm=10_000_000_000,
                )
                await store.key_insert(record)
        finally:
            await store.close()

    asyncio.run(seed())
    server = {**config["server"], "require_auth": True}
    return {
        **config,
        "server": server,
        "store": {"url": f"sqlite:///{ledger}"},
        "limits": [{"name": "per-user", "scope": "user", "rpm": 10_000_000, "tpm": 10_000_000_000}],
    }


def ccrouter_config(provider_type: str, upstream: str) -> dict[str, Any]:
    """A configuration as a Claude Code user would write it: every scenario routed, long context on
    (so the request's tokens are counted, as in real use), log level warning."""
    base_url = upstream + "/v1" if provider_type == "openai" else upstream
    route = f"fake,{UPSTREAM_MODEL}"
    return {
        "server": {"host": HOST, "port": 0, "log_level": "warning"},
        "providers": [
            {
                "name": "fake",
                "type": provider_type,
                "base_url": base_url,
                "api_key": "sk-fake-upstream",
                "models": [UPSTREAM_MODEL],
            },
        ],
        "router": {
            "default": route,
            "background": route,
            "think": route,
            "long_context": route,
            "long_context_threshold": 60000,
        },
    }


def start_ccrouter(
    launcher: Launcher, mode: str, upstream: str, workers: int, variant: Path | None = None
) -> Target:
    """ccrouter in ``mode``; ``variant``: a folder holding a patched ``ccrouter`` package to import
    instead of the installed one (an A/B comparison inside one interleaved run)."""
    label, provider_type, wire, path = CCROUTER_MODES[mode]
    name = f"ccrouter {mode}" + (f"@{variant.name}" if variant is not None else "")
    folder = launcher.workdir / name.replace(" ", "-")
    folder.mkdir()
    config = folder / "config.yaml"
    document = ccrouter_config(provider_type, upstream)
    if mode.endswith("-keys"):
        document = with_managed_keys(document, folder)
    if mode.endswith("-live"):  # /api/live needs a viewer: the admin token (/v1 stays open)
        document = {**document, "server": {**document["server"], "admin_token": LIVE_TOKEN}}
    if mode.endswith("-redis"):
        prefix = f"ccrouter-bench-{os.getpid()}-{port_tag()}"
        document = {**document, "state": {"redis_url": REDIS_URL, "key_prefix": prefix}}
    config.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    port = free_port()
    target = Target(
        name,
        label,
        "ccrouter",
        wire,
        f"http://{HOST}:{port}{path}",
        "direct" if wire == "anthropic" else "direct-oai",
        port=port,
        extra={"workers": workers, "key": MANAGED_KEY if mode.endswith("-keys") else CLIENT_KEY},
    )
    argv = [sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(config), "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    # No provider keys from the caller's environment: the configuration says everything.
    env = {"CCROUTER_CONFIG": str(config), "NO_COLOR": "1"}
    if variant is not None:
        env["PYTHONPATH"] = str(variant.resolve())
        target.extra["variant"] = str(variant)
    measured = _measured(launcher, target, argv, "/health", env)
    if mode.endswith("-live"):
        launcher.spawn(f"{name} watcher", _bench_role("live", port), {TOKEN_ENV: LIVE_TOKEN})
    return measured


# ---------------------------------------------------------------- peers


def peers_installed() -> dict[str, bool]:
    """Installed completely: ``peers/install.sh`` writes a stamp file after a successful install."""
    return {
        "litellm": LITELLM.exists() and any((PEERS / "venv").glob(".litellm-*")),
        "ccr": CCR_CLI.exists() and any((PEERS / "node").glob(".ccr-*")),
    }


def start_litellm(launcher: Launcher, upstream: str, client_model: str) -> list[Target]:
    """LiteLLM proxy, one worker, the client model mapped to the fake upstream (OpenAI format)."""
    folder = launcher.workdir / "litellm"
    folder.mkdir()
    params = {
        "model": f"openai/{UPSTREAM_MODEL}",
        "api_base": upstream + "/v1",
        "api_key": "sk-fake-upstream",
    }
    config = {
        "model_list": [
            {"model_name": client_model, "litellm_params": params},
            {"model_name": UPSTREAM_MODEL, "litellm_params": params},
        ],
        "litellm_settings": {"drop_params": True, "set_verbose": False},
    }
    (folder / "config.yaml").write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
    port = free_port()
    env = {
        "LITELLM_MASTER_KEY": CLIENT_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the model-cost map from the internet
        # /v1/messages to an openai/ model goes to OpenAI's Responses API by default; every gateway
        # here talks chat completions to the same upstream.
        "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "HOME": str(folder),
    }
    argv = [
        str(LITELLM),
        "--config",
        str(folder / "config.yaml"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    a2o = Target(
        "litellm a2o",
        "LiteLLM 1.106.2 Anthropic->OpenAI",
        "peer",
        "anthropic",
        f"http://{HOST}:{port}{ANTHROPIC_PATH}",
        "direct",
        slow=True,
        port=port,
    )
    _measured(launcher, a2o, argv, "/health/liveliness", env)
    o2o = Target(
        "litellm o2o",
        "LiteLLM 1.106.2 OpenAI->OpenAI",
        "peer",
        "openai",
        f"http://{HOST}:{port}{OPENAI_PATH}",
        "direct-oai",
        slow=True,
        pid=a2o.pid,
        port=port,
        startup_s=a2o.startup_s,
        rss_start_mb=a2o.rss_start_mb,
        extra={"same_process_as": a2o.name},
    )
    return [a2o, o2o]


def start_ccr(launcher: Launcher, upstream: str) -> Target:
    """claude-code-router 2.0.0 (``ccr start`` runs the server in the foreground) with its config in a
    private HOME; file logs off, so it is not charged for disk logging ccrouter does not do either."""
    home = launcher.workdir / "ccr-home"
    (home / ".claude-code-router").mkdir(parents=True)
    port = free_port()
    route = f"fake,{UPSTREAM_MODEL}"
    config = {
        "LOG": False,
        "LOG_LEVEL": "warn",
        "HOST": HOST,
        "PORT": port,
        "API_TIMEOUT_MS": 60000,
        "Providers": [
            {
                "name": "fake",
                "api_base_url": upstream + OPENAI_PATH,
                "api_key": "sk-fake-upstream",
                "models": [UPSTREAM_MODEL],
            },
        ],
        "Router": {
            "default": route,
            "background": route,
            "think": route,
            "longContext": route,
            "longContextThreshold": 60000,
        },
    }
    (home / ".claude-code-router" / "config.json").write_bytes(
        orjson.dumps(config, option=orjson.OPT_INDENT_2)
    )
    target = Target(
        "ccr a2o",
        "claude-code-router 2.0.0 Anthropic->OpenAI",
        "peer",
        "anthropic",
        f"http://{HOST}:{port}{ANTHROPIC_PATH}",
        "direct",
        slow=True,
        port=port,
    )
    return _measured(launcher, target, ["node", str(CCR_CLI), "start"], "/health", {"HOME": str(home)})
