"""Fixtures of the auth tests: stores of each kind sharing one database (two 'instances'), and a
unique prefix on the local Redis. They fail, never skip, when PostgreSQL or Redis is missing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
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
        pytest.fail(
            f"PostgreSQL is needed at {PG_URL} ({exc}); start it: `service postgresql start` "
            "(trust auth, user postgres, database test)"
        )


class StoreFactory:
    """Makes unopened stores sharing one database (each one an 'instance'), and runs raw SQL on
    that database behind their backs (``execute``: to take a table away, say)."""

    def __init__(self, kind: str, path: Path, schema: str, conn: asyncpg.Connection | None) -> None:
        self.kind = kind
        self._path = path
        self._schema = schema
        self._conn = conn

    def __call__(self) -> Store:
        if self.kind == "sqlite":
            return SQLiteStore(self._path, flush_interval_s=0.01)
        return PostgresStore(PG_URL, schema=self._schema, flush_interval_s=0.01)

    async def execute(self, sql: str) -> None:
        if self._conn is not None:
            await self._conn.execute(f'SET search_path TO "{self._schema}"')
            await self._conn.execute(sql)
            return

        def run() -> None:
            with contextlib.closing(sqlite3.connect(self._path, timeout=30.0)) as conn:
                conn.execute(sql)
                conn.commit()

        await asyncio.to_thread(run)


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Stores of each kind sharing one database: a temporary SQLite file, or a fresh schema on the
    local PostgreSQL (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await _pg_connect() if request.param == "postgres" else None
    try:
        yield StoreFactory(request.param, tmp_path / "ledger.db", schema, conn)
    finally:
        if conn is not None:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    """One opened store of each kind (``make_store``'s first instance), closed afterwards."""
    opened = make_store()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
