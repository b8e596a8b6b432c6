"""A ledger store of each kind: a temporary SQLite file, or a fresh schema on the local PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from ccrouter.store.base import Store
from ccrouter.store.postgres import PostgresStore
from ccrouter.store.sqlite import SQLiteStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def pg_connect() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is needed at {PG_URL} ({exc}); start it: `service postgresql start` "
            "(trust auth, user postgres, database test)"
        )


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await pg_connect()
    try:
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[type]:
    """A factory of unopened stores sharing one database (so a test can open two 'instances')."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await pg_connect() if request.param == "postgres" else None

    def build() -> Store:
        if request.param == "sqlite":
            return SQLiteStore(tmp_path / "ledger.db", flush_interval_s=0.01)
        return PostgresStore(PG_URL, schema=schema, flush_interval_s=0.01)

    try:
        yield build  # type: ignore[misc]
    finally:
        if conn is not None:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
