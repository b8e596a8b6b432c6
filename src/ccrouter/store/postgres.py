"""The PostgreSQL ledger (asyncpg): shared by every gateway instance, so budgets hold across them.

Rows go on an asyncio queue; a writer task inserts them in batches, each batch in one transaction that
also drops the budget reservations the rows settle. Budget admissions serialize on a transaction-level
advisory lock (postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS), which every instance
takes, so two instances cannot both spend the last dollar.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import asyncpg

from ccrouter.auth.keys import AuditRecord, KeyRecord
from ccrouter.errors import ConfigError, RequestError
from ccrouter.store import rollups
from ccrouter.store.base import (
    RESERVATION_TTL_S,
    SqlBuilder,
    Store,
    StoreUnavailableError,
    crosses,
    group_rows,
    narrowed,
)
from ccrouter.store.keys_sql import (
    DUPLICATE_KEY,
    KeysSql,
    audit_from_row,
    audit_row,
    key_from_row,
    key_row,
)
from ccrouter.store.migrations import MIGRATIONS_TABLE, create_migrations_table, pending
from ccrouter.store.records import (
    COLUMNS,
    GroupRow,
    RequestQuery,
    SessionDay,
    UsageQuery,
    UsageRecord,
    Window,
    record_from_row,
)

__all__ = ["PostgresStore"]

log = logging.getLogger("ccrouter.store")

# Advisory lock keys (any fixed 64-bit numbers): migrations, budget admissions, key writes.
_MIGRATION_LOCK = 0x63637230_00000001
_BUDGET_LOCK = 0x63637230_00000002
_KEYS_LOCK = 0x63637230_00000003
_RETRY_S = 1.0
_FINAL_ATTEMPTS = 5


class PostgresStore(Store):
    dialect = "postgres"

    def __init__(
        self, url: str, *, schema: str | None = None, flush_interval_s: float = 0.2, batch_size: int = 500
    ) -> None:
        self._url = url
        self._schema = schema
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._sql = SqlBuilder("postgres")
        self._keys = KeysSql(self._sql)
        self._queue: asyncio.Queue[UsageRecord | asyncio.Future[None] | None] = asyncio.Queue()
        self._pool: asyncpg.Pool | None = None
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        settings = {"search_path": self._schema} if self._schema else {}
        try:
            if self._schema:
                conn = await asyncpg.connect(self._url)
                try:
                    # IF NOT EXISTS is not safe against a concurrent create: serialize instances.
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
                finally:
                    await conn.close()
            self._pool = await asyncpg.create_pool(
                self._url, min_size=1, max_size=4, server_settings=settings
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(
                f"store.url: cannot connect to PostgreSQL ({type(exc).__name__}: {exc})"
            ) from None
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        self._writer = asyncio.create_task(self._write_loop(), name="ccrouter-ledger-write")

    async def _migrate(self) -> None:
        async with self._acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(create_migrations_table("postgres"))
            applied = {row[0] for row in await conn.fetch(f"SELECT name FROM {MIGRATIONS_TABLE}")}
            for step in pending(applied):
                for statement in step("postgres"):
                    await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} VALUES ($1, $2)", step.__name__, time.time()
                )

    def _acquire(self) -> Any:
        if self._pool is None:
            raise RuntimeError("the ledger is not open")
        return self._pool.acquire()

    def add(self, record: UsageRecord) -> None:
        self._queue.put_nowait(record)

    async def flush(self) -> None:
        if self._writer is None:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(done)
        await done

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # -- the writer task ----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        stop = False
        while not stop:
            batch, waiters, stop = await self._collect()
            if batch:
                await self._commit(batch, final=stop)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _collect(self) -> tuple[list[UsageRecord], list[asyncio.Future[None]], bool]:
        batch: list[UsageRecord] = []
        item = await self._queue.get()
        deadline = time.monotonic() + self._interval
        while True:
            if item is None:
                return batch, [], True
            if isinstance(item, asyncio.Future):
                return batch, [item], False
            batch.append(item)
            remaining = deadline - time.monotonic()
            if len(batch) >= self._batch_size or remaining <= 0:
                return batch, [], False
            try:
                item = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                return batch, [], False

    async def _commit(self, batch: list[UsageRecord], *, final: bool) -> None:
        rows = [self._sql.usage_row(record) for record in batch]
        tokens = [record.reservation_token() for record in batch]
        for attempt in itertools.count(1):
            try:
                async with self._acquire() as conn, conn.transaction():
                    await conn.executemany(self._sql.insert_usage(), rows)
                    await _roll_up(conn, batch)
                    await conn.execute(
                        "DELETE FROM budget_reservations WHERE token = ANY($1::text[])", tokens
                    )
                    await conn.execute(self._sql.purge_reservations(), time.time() - RESERVATION_TTL_S)
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The server is away: keep the batch and retry rather than drop rows, except at a stop,
                # which must end.
                if final and attempt >= _FINAL_ATTEMPTS:
                    log.error(
                        "ledger write failed (%s): %d usage rows lost at shutdown",
                        type(exc).__name__,
                        len(rows),
                    )
                    return
                log.warning("ledger write failed (%s); retrying in %.0f s", type(exc).__name__, _RETRY_S)
                await asyncio.sleep(_RETRY_S)

    # -- queries ------------------------------------------------------------------------------------

    async def ping(self) -> None:
        async with _unavailable(), self._acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def report(self, query: UsageQuery) -> list[GroupRow]:
        async with _unavailable(), self._acquire() as conn:
            on = await _rollups_on(conn)
            ranking = self._sql.ranking(query, rollups=on)
            if ranking is not None:
                top = [tuple(row) for row in await conn.fetch(*_flat(ranking))]
                if not top:
                    return []
                query = narrowed(query, top)
            rows = await conn.fetch(*_flat(self._sql.report(query, rollups=on)))
        return group_rows(query.by, [tuple(row) for row in rows])

    async def window_sums(self, windows: Sequence[Window], now: float) -> list[int]:
        async with _unavailable(), self._acquire() as conn:
            on = await _rollups_on(conn)
            return [
                int(await conn.fetchval(*_flat(self._sql.window_sum(w, now, rollups=on)))) for w in windows
            ]

    async def reserve(
        self,
        token: str,
        ts: float,
        windows: Sequence[Window],
        amount: int,
        *,
        client_key_id: str | None,
        user_name: str | None,
        profile: str | None = None,
        project: str | None = None,
        team: str | None = None,
    ) -> tuple[list[int], bool]:
        async with _unavailable(), self._acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _BUDGET_LOCK)
            on = await _rollups_on(conn)
            used = [
                int(await conn.fetchval(*_flat(self._sql.window_sum(w, ts, rollups=on)))) for w in windows
            ]
            blocked = any(w.blocking and crosses(w, u, amount) for w, u in zip(windows, used, strict=True))
            if not blocked and amount > 0:
                await conn.execute(
                    self._sql.insert_reservation() + " ON CONFLICT (token) DO NOTHING",
                    token,
                    ts,
                    client_key_id,
                    user_name,
                    profile,
                    project,
                    team,
                    amount,
                )
        return used, not blocked

    async def settle(self, token: str, amount: int) -> None:
        # No admission lock: lowering a reservation can only make a concurrent admission's sum
        # conservative (it saw the larger figure).
        sql = self._sql.settle_reservation() if amount > 0 else self._sql.release_reservation()
        args = (token, amount) if amount > 0 else (token,)
        async with _unavailable(), self._acquire() as conn:
            await conn.execute(sql, *args)

    async def spend_by(self, group: str, since: float) -> dict[str, int]:
        async with _unavailable(), self._acquire() as conn:
            sql, params = self._sql.spend_by(group, since, rollups=await _rollups_on(conn))
            rows = await conn.fetch(sql, *params)
        return {str(row[0]): int(row[1]) for row in rows if row[0] is not None}

    async def session_day(self, session_id: str, since: float, until: float) -> SessionDay:
        async with _unavailable(), self._acquire() as conn:
            sums = await conn.fetchrow(self._sql.session_sums(), session_id, since, until)
            last = await conn.fetchrow(self._sql.session_last(), session_id, until)
        requests, picos, unpriced = (0, 0, 0) if sums is None else tuple(sums)
        return SessionDay(
            int(requests), int(picos), int(unpriced), None if last is None else record_from_row(tuple(last))
        )

    async def records(self, since: float | None = None) -> list[UsageRecord]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM usage WHERE ts >= $1 ORDER BY id"
        async with _unavailable(), self._acquire() as conn:
            rows = await conn.fetch(sql, since or 0.0)
        return [record_from_row(tuple(row)) for row in rows]

    async def requests(self, query: RequestQuery) -> list[tuple[int, UsageRecord]]:
        sql, params = self._sql.requests(query)
        async with _unavailable(), self._acquire() as conn:
            found = await conn.fetch(sql, *params)
        return [(int(row[0]), record_from_row(tuple(row)[1:])) for row in found]

    # -- managed keys and the audit trail -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _key_write(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction holding the key-write lock until it commits: every instance's key writes are
        serial, so each takes the next ``rev`` and revs commit in order (``keys_sql``)."""
        async with _unavailable(), self._acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEYS_LOCK)
            yield conn

    async def key_insert(self, record: KeyRecord) -> KeyRecord:
        async with self._key_write() as conn:
            stored = record.with_changes(rev=int(await conn.fetchval(self._keys.next_rev())))
            await conn.execute(self._keys.insert(), *key_row(stored))
        return stored

    async def key_get(self, key_id: str) -> KeyRecord | None:
        async with _unavailable(), self._acquire() as conn:
            row = await conn.fetchrow(self._keys.get(), key_id)
        return None if row is None else key_from_row(tuple(row))

    async def key_list(self) -> list[KeyRecord]:
        async with _unavailable(), self._acquire() as conn:
            rows = await conn.fetch(self._keys.listing())
        return [key_from_row(tuple(row)) for row in rows]

    async def key_update(self, key_id: str, changes: Mapping[str, Any]) -> KeyRecord | None:
        async with self._key_write() as conn:
            rev = int(await conn.fetchval(self._keys.next_rev()))
            sql, params = self._keys.update(changes, rev, key_id)
            await conn.execute(sql, *params)
            row = await conn.fetchrow(self._keys.get(), key_id)
        return None if row is None else key_from_row(tuple(row))

    async def key_changes(self, since_rev: int) -> tuple[int, list[KeyRecord]]:
        # One snapshot for the rows and the highest rev.
        async with (
            _unavailable(),
            self._acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await conn.fetch(self._keys.changes(), since_rev)
            top = int(await conn.fetchval(self._keys.max_rev()))
        return top, [key_from_row(tuple(row)) for row in rows]

    async def key_touch(self, last_used: Mapping[str, float]) -> None:
        if not last_used:
            return
        async with _unavailable(), self._acquire() as conn:
            await conn.executemany(self._keys.touch(), list(last_used.items()))

    async def audit_add(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        async with _unavailable(), self._acquire() as conn:
            await conn.executemany(self._keys.audit_insert(), [audit_row(record) for record in records])

    async def audit_list(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        sql, params = self._keys.audit_list(since=since, until=until, action=action, actor=actor, limit=limit)
        async with _unavailable(), self._acquire() as conn:
            rows = await conn.fetch(sql, *params)
        return [audit_from_row(tuple(row)) for row in rows]


@contextlib.asynccontextmanager
async def _unavailable() -> AsyncIterator[None]:
    """The database is away: a 503 the client retries, not a crash (budgets fail closed)."""
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise RequestError(DUPLICATE_KEY) from None
    except asyncpg.IntegrityConstraintViolationError as exc:
        # The message names the constraint and column (never a value).
        raise RequestError(f"invalid record ({exc})") from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailableError(f"the usage ledger is unavailable ({type(exc).__name__})") from exc


async def _rollups_on(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(f"SELECT NOT EXISTS (SELECT 1 FROM {rollups.OFF_TABLE})"))


_ROLL_UP = rollups.upsert_batch()


async def _roll_up(conn: asyncpg.Connection, batch: Sequence[UsageRecord]) -> None:
    """Add ``batch`` to the rollups, in the transaction that inserts it."""
    if not await _rollups_on(conn):
        return
    try:
        async with conn.transaction():  # a savepoint: a failed upsert keeps the batch
            await conn.execute(_ROLL_UP, *rollups.batch_columns(batch))
    except asyncpg.NumericValueOutOfRangeError as exc:
        # A sum past 64 bits: the rollups can no longer be exact, so they stop and reads use the rows.
        await conn.execute(
            f"INSERT INTO {rollups.OFF_TABLE} VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
            time.time(),
            str(exc),
        )
        log.error("ledger rollups turned off (%s): reports read the raw rows from now on", exc)


def _flat(statement: tuple[str, list[Any]]) -> tuple[Any, ...]:
    sql, params = statement
    return (sql, *params)
