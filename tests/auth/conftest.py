"""Fixtures of the auth tests: stores of each kind sharing one database (two 'instances'), and a
unique prefix on the local Redis. They fail, never skip, when PostgreSQL or Redis is missing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio
from redis.driver_info import DriverInfo

from ccrouter.store.base import Store
from ccrouter.store.postgres import PostgresStore
from ccrouter.store.sqlite import SQLiteStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def _pg_connect() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is needed at {PG_URL} ({exc}); start it: `service postgresql start` "
            "(trust auth, user postgres, database test)"
        )


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    """A factory of unopened stores sharing one database (so a test can open two 'instances')."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await _pg_connect() if request.param == "postgres" else None

    def build() -> Store:
        if request.param == "sqlite":
            return SQLiteStore(tmp_path / "ledger.db", flush_interval_s=0.01)
        return PostgresStore(PG_URL, schema=schema, flush_interval_s=0.01)

    try:
        yield build
    finally:
        if conn is not None:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


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
