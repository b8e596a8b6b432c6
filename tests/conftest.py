"""Suite-wide fixtures."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
from blockbuster import BlockBuster, blockbuster_ctx
from redis.driver_info import DriverInfo


@pytest.fixture(autouse=True)
def _private_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real ~/.ccrouter: the default config (and the ledger beside it)
    live in the test's own temporary directory."""
    monkeypatch.setenv("CCROUTER_CONFIG", str(tmp_path / "ccrouter-home" / "config.yaml"))


# Where a blocking call is acceptable although the event loop runs, each with why. Anything else that
# blocks while an async test runs fails it: move the call off the loop instead (``asyncio.to_thread``).
CAN_BLOCK = (
    # Synchronous by design: ``serve`` calls it before the loop runs (it reads the plugins' entry points
    # and imports them). Tests call it from a coroutine.
    ("ccrouter/app.py", "create_app"),
    # aiohttp runs the app's cleanup contexts before the server listens (``web.run_app``: the runner's
    # setup, then the site's start): the price table read there holds up no request.
    ("ccrouter/app.py", "lifespan"),
    # The shipped price table, read once per process (functools.cache) from the installed package.
    ("ccrouter/pricing/table.py", "_shipped"),
    # The shipped model catalog, likewise read once per process; a test that builds a Router first
    # in a coroutine reads it there.
    ("ccrouter/catalog.py", "_shipped"),
    # A module's import reads its files once (a library's lazy import in a test, its own metadata).
    ("<frozen importlib._bootstrap_external>", "exec_module"),
    # Log lines go to stderr synchronously, one write each, as aiohttp's own logs do.
    ("logging/__init__.py", "emit"),
    # asyncpg looks for ~/.pgpass when a DSN has no password: a stat per new connection of the pool.
    ("asyncpg/connect_utils.py", "_parse_connect_arguments"),
    # The token encoding, loaded once per process (~0.3 s). The gateway loads it in a thread at start
    # (TokenCounter.warm) and its async counts wait for that; tests that count first load it in place.
    ("ccrouter/tokens.py", "_load"),
    # Test helpers: /proc reads (procfs: no disk), the shipped Prometheus files, and the tests' own
    # Redis clients (redis-py reads its version for each new connection; the gateway's is told it).
    ("tests/integration/test_memory.py", "_rss_mb"),
    ("tests/integration/test_plugin_hooks.py", "_write"),
    ("tests/integration/test_plugin_hooks.py", "_config"),
    ("tests/integration/test_example_plugin.py", "_config"),
    # Tests load a config file from a coroutine before they serve it; the gateway loads it before
    # its loop runs, and a live reload reads and validates it in a thread (ccrouter.reload).
    ("ccrouter/config_file.py", "load_settings"),
    ("ccrouter/config_file.py", "settings_from_data"),
    ("tests/integration/test_reload.py", "_write"),
    ("tests/cli/test_serve_workers.py", "_children"),
    ("tests/cli/test_serve_workers.py", "_alive"),
    ("tests/integration/test_metrics.py", "_used_names"),
    ("tests/integration/test_shared_state_redis.py", "prefix"),
    ("tests/integration/test_routing_limits.py", "redis_windows"),
)


@pytest.fixture(autouse=True)
def blockbuster(request: pytest.FixtureRequest) -> Iterator[BlockBuster | None]:
    """Fails an async test when anything blocks the event loop while it runs (file or socket I/O,
    ``time.sleep``, SQLite...), as aiohttp's suite does; ``CAN_BLOCK`` lists the exceptions."""
    if not inspect.iscoroutinefunction(getattr(request.node, "function", None)):
        yield None  # no event loop runs in a sync test
        return
    with blockbuster_ctx() as bb:
        # Locks are taken by threads (the SQLite writer, coverage's tracer), briefly: not a loop stall.
        bb.functions["threading.Lock.acquire"].deactivate()
        for function in bb.functions.values():
            for filename, where in CAN_BLOCK:
                function.can_block_in(filename, where)
        yield bb


# -- the local Redis, for every test that uses it (fails, never skips, without a server)
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    """The test's own client of the local Redis (told redis-py's version, so connecting reads no
    package metadata on the loop)."""
    client = redis.asyncio.from_url(REDIS_URL, driver_info=DriverInfo(lib_version=redis.__version__))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: redis.asyncio.Redis) -> AsyncIterator[str]:
    """A unique key prefix on the local Redis, its keys deleted afterwards."""
    client = redis_client
    try:
        await client.ping()
    except (redis.ConnectionError, OSError) as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}): start it with `redis-server --daemonize yes`"
        )
    name = f"ccrouter-test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        async for key in client.scan_iter(match=f"{name}:*"):
            await client.delete(key)
