"""An opened ledger store of each kind for the auth tests: a temporary SQLite file, or a fresh schema
on the local PostgreSQL (dropped after the test)."""

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


async def _pg_connect() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is needed at {PG_URL} ({exc}); start it: `service postgresql start`")


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await _pg_connect() if request.param == "postgres" else None
    opened: Store = (
        SQLiteStore(tmp_path / "ledger.db", flush_interval_s=0.01)
        if request.param == "sqlite"
        else PostgresStore(PG_URL, schema=schema, flush_interval_s=0.01)
    )
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        if conn is not None:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
