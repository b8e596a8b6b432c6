"""The SQLite ledger: WAL mode, one writer thread committing batches, one reader thread for queries.

The event loop never touches the database: ``add`` puts the row on a thread-safe queue; reports and
budget reservations run on a dedicated reader thread. WAL lets readers work while the writer commits,
and a committed batch survives a crash of the process (sqlite.org/wal.html).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ccrouter.auth.keys import AuditRecord, KeyRecord
from ccrouter.store import rollups, sqlite_keys
from ccrouter.store.base import RESERVATION_TTL_S, SqlBuilder, Store, crosses, group_rows, narrowed
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
from ccrouter.store.sqlite_keys import KEYS_SQL

__all__ = ["SQLiteStore"]

log = logging.getLogger("ccrouter.store")

T = TypeVar("T")
_STOP = object()
_FINAL_ATTEMPTS = 5


def connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), never implicit.
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    for attempt in range(100):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            # Switching to WAL needs a moment alone with the file; SQLite answers "locked" at once
            # rather than waiting when another connection opens it at the same time.
            if attempt == 99:
                raise
            time.sleep(0.05)
    # NORMAL in WAL mode: a process crash loses nothing committed (only a power loss could).
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    sql = SqlBuilder("sqlite")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(create_migrations_table("sqlite"))
        applied = {row[0] for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
        names = []
        for step in pending(applied):
            for statement in step(sql.dialect):
                conn.execute(statement)
            conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, ?)", (step.__name__, time.time()))
            names.append(step.__name__)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return names


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: Path, *, flush_interval_s: float = 0.2, batch_size: int = 500) -> None:
        self.path = path
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._sql = SqlBuilder("sqlite")
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ccrouter-ledger-read")
        self._read_conn: sqlite3.Connection | None = None
        self._pending: list[UsageRecord] = []

    async def open(self) -> None:
        await self._run(self._open_sync)
        self._writer = threading.Thread(target=self._write_loop, name="ccrouter-ledger-write", daemon=True)
        self._writer.start()

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._read_conn = connect(self.path)
        migrate(self._read_conn)

    def add(self, record: UsageRecord) -> None:
        # Gathered on the loop, handed to the writer once per interval: one thread wake-up per
        # batch instead of one per request (each wake-up makes the loop thread wait for the GIL).
        self._pending.append(record)
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_later(self._interval, self._hand_over)

    def _hand_over(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    async def flush(self) -> None:
        if self._writer is None:
            return
        self._hand_over()
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put(done)
        await asyncio.wrap_future(done)

    async def close(self) -> None:
        if self._writer is not None:
            self._hand_over()
            self._queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._read_conn is not None:
            await self._run(self._read_conn.close)
            self._read_conn = None
        self._reader.shutdown(wait=True)

    # -- the writer thread --------------------------------------------------------------------------

    def _write_loop(self) -> None:
        conn = connect(self.path)
        try:
            stop = False
            while not stop:
                batch, waiters, stop = self._collect()
                if batch:
                    self._commit(conn, batch, final=stop)
                for waiter in waiters:
                    waiter.set_result(None)
        finally:
            conn.close()

    def _collect(self) -> tuple[list[UsageRecord], list[concurrent.futures.Future[None]], bool]:
        """Block for the first item, then gather more until the batch is full or the interval ends."""
        batch: list[UsageRecord] = []
        waiters: list[concurrent.futures.Future[None]] = []
        item = self._queue.get()
        deadline = time.monotonic() + self._interval
        while True:
            if item is _STOP:
                # Everything queued before the stop is already taken: commit it and end.
                return batch, waiters, True
            if isinstance(item, concurrent.futures.Future):
                waiters.append(item)
                return batch, waiters, False
            if isinstance(item, list):
                batch.extend(item)
            else:
                batch.append(item)
            remaining = deadline - time.monotonic()
            if len(batch) >= self._batch_size or remaining <= 0:
                return batch, waiters, False
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                return batch, waiters, False

    def _commit(self, conn: sqlite3.Connection, batch: list[UsageRecord], *, final: bool) -> None:
        rows = [self._sql.usage_row(record) for record in batch]
        tokens = [record.reservation_token() for record in batch]
        for attempt in itertools.count(1):
            try:
                conn.execute("BEGIN IMMEDIATE")
                # The whole batch in one statement step, its rows passed as one JSON array. The
                # sqlite3 module drops and retakes the GIL around every step, and under a busy event
                # loop each retake can wait a whole switch interval (5 ms): row-by-row inserts fell
                # seconds behind under load. And the SQL text is the same for every batch: one
                # multi-row INSERT per batch size filled the module's statement cache with ~30 MB of
                # programs after 50,000 requests (bench/run.py --soak).
                last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM usage").fetchone()[0]
                conn.execute(_INSERT_ROWS, (orjson.dumps(rows),))
                _roll_up(conn, last)
                if tokens:
                    conn.execute(_DELETE_RESERVATIONS, (orjson.dumps(tokens),))
                conn.execute(self._sql.purge_reservations(), (time.time() - RESERVATION_TTL_S,))
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                # Locked or disk trouble: keep the batch and try again rather than drop rows.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if final and attempt >= _FINAL_ATTEMPTS:
                    # Stopping: a stop must end; say exactly what is lost.
                    log.error("ledger write failed (%s): %d usage rows lost at shutdown", exc, len(rows))
                    return
                log.warning("ledger write failed (%s); retrying in 1 s", exc)
                time.sleep(1.0)

    # -- the reader thread --------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn)

    def _conn(self) -> sqlite3.Connection:
        if self._read_conn is None:
            raise RuntimeError("the ledger is not open")
        return self._read_conn

    async def ping(self) -> None:
        await self._run(lambda: self._conn().execute("SELECT 1").fetchone())

    async def report(self, query: UsageQuery) -> list[GroupRow]:
        def run() -> list[Any]:
            conn = self._conn()
            on = _rollups_on(conn)
            ranking = self._sql.ranking(query, rollups=on)
            if ranking is None:
                return conn.execute(*self._sql.report(query, rollups=on)).fetchall()
            top = conn.execute(*ranking).fetchall()
            return conn.execute(*self._sql.report(narrowed(query, top), rollups=on)).fetchall() if top else []

        return group_rows(query.by, await self._run(run))

    async def window_sums(self, windows: Sequence[Window], now: float) -> list[int]:
        def run() -> list[int]:
            conn = self._conn()
            on = _rollups_on(conn)
            return [
                int(conn.execute(*self._sql.window_sum(w, now, rollups=on)).fetchone()[0]) for w in windows
            ]

        return await self._run(run)

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
        def run() -> tuple[list[int], bool]:
            conn = self._conn()
            # IMMEDIATE takes SQLite's write lock: admissions (of any process on this file) are serial.
            conn.execute("BEGIN IMMEDIATE")
            try:
                on = _rollups_on(conn)
                used = [
                    int(conn.execute(*self._sql.window_sum(w, ts, rollups=on)).fetchone()[0]) for w in windows
                ]
                blocked = any(
                    w.blocking and crosses(w, u, amount) for w, u in zip(windows, used, strict=True)
                )
                if not blocked and amount > 0:
                    row = (token, ts, client_key_id, user_name, profile, project, team, amount)
                    conn.execute(self._sql.insert_reservation(), row)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return used, not blocked

        return await self._run(run)

    async def settle(self, token: str, amount: int) -> None:
        sql = self._sql.settle_reservation() if amount > 0 else self._sql.release_reservation()
        # SQLite's ``?`` marks number nothing: the token comes last in the UPDATE, alone in the DELETE.
        args = (amount, token) if amount > 0 else (token,)

        # Autocommit (the connection's isolation_level is None): one statement, one transaction.
        await self._run(lambda: self._conn().execute(sql, args))

    async def spend_by(self, group: str, since: float) -> dict[str, int]:
        def run() -> list[Any]:
            conn = self._conn()
            return conn.execute(*self._sql.spend_by(group, since, rollups=_rollups_on(conn))).fetchall()

        return {str(name): int(total) for name, total in await self._run(run) if name is not None}

    async def session_day(self, session_id: str, since: float, until: float) -> SessionDay:
        def run() -> SessionDay:
            conn = self._conn()
            requests, picos, unpriced = conn.execute(
                self._sql.session_sums(), (session_id, since, until)
            ).fetchone()
            last = conn.execute(self._sql.session_last(), (session_id, until)).fetchone()
            return SessionDay(
                int(requests), int(picos), int(unpriced), None if last is None else record_from_row(last)
            )

        return await self._run(run)

    async def records(self, since: float | None = None) -> list[UsageRecord]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM usage WHERE ts >= ? ORDER BY id"
        rows = await self._run(lambda: self._conn().execute(sql, (since or 0.0,)).fetchall())
        return [record_from_row(row) for row in rows]

    async def requests(self, query: RequestQuery) -> list[tuple[int, UsageRecord]]:
        sql, params = self._sql.requests(query)
        found = await self._run(lambda: self._conn().execute(sql, params).fetchall())
        return [(int(row[0]), record_from_row(row[1:])) for row in found]

    # -- managed keys and the audit trail: on the reader thread (``sqlite_keys``) -------------------

    async def key_insert(self, record: KeyRecord) -> KeyRecord:
        return await self._run(lambda: sqlite_keys.insert(self._conn(), record))

    async def key_get(self, key_id: str) -> KeyRecord | None:
        return await self._run(lambda: sqlite_keys.get(self._conn(), key_id))

    async def key_list(self) -> list[KeyRecord]:
        return await self._run(lambda: sqlite_keys.listing(self._conn()))

    async def key_update(self, key_id: str, changes: Mapping[str, Any]) -> KeyRecord | None:
        return await self._run(lambda: sqlite_keys.update(self._conn(), key_id, changes))

    async def key_changes(self, since_rev: int) -> tuple[int, list[KeyRecord]]:
        return await self._run(lambda: sqlite_keys.changes(self._conn(), since_rev))

    async def key_touch(self, last_used: Mapping[str, float]) -> None:
        if last_used:
            pairs = list(last_used.items())
            await self._run(lambda: sqlite_keys.touch(self._conn(), pairs))

    async def audit_add(self, records: Sequence[AuditRecord]) -> None:
        if records:
            rows = list(records)
            await self._run(lambda: sqlite_keys.audit_add(self._conn(), rows))

    async def audit_list(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        sql, params = KEYS_SQL.audit_list(since=since, until=until, action=action, actor=actor, limit=limit)
        return await self._run(lambda: sqlite_keys.audit_list(self._conn(), sql, params))


# One statement for any number of rows: the rows arrive as a JSON array of arrays (SQLite's JSON
# functions, built in since 3.38 and compiled in by most builds before).
_INSERT_ROWS = (
    f"INSERT INTO usage ({', '.join(COLUMNS)}) SELECT "
    + ", ".join(f"json_extract(value, '$[{index}]')" for index in range(len(COLUMNS)))
    + " FROM json_each(?1) ORDER BY key"
)
_DELETE_RESERVATIONS = "DELETE FROM budget_reservations WHERE token IN (SELECT value FROM json_each(?1))"


def _rollups_on(conn: sqlite3.Connection) -> bool:
    return conn.execute(f"SELECT 1 FROM {rollups.OFF_TABLE} LIMIT 1").fetchone() is None


_ROLL_UP = [rollups.upsert_from_usage("sqlite", rollup, "?1") for rollup in rollups.ROLLUPS]


def _roll_up(conn: sqlite3.Connection, last: int) -> None:
    """Add the rows after id ``last`` (the batch just inserted: the write lock is held) to the
    rollups, in the same transaction."""
    if not _rollups_on(conn):
        return
    conn.execute("SAVEPOINT rollups")
    try:
        for statement in _ROLL_UP:
            conn.execute(statement, (last,))
    except sqlite3.OperationalError as exc:
        if "overflow" not in str(exc):
            raise
        # A sum past 64 bits: the rollups can no longer be exact, so they stop and reads use the rows.
        conn.execute("ROLLBACK TO rollups")
        conn.execute(
            f"INSERT INTO {rollups.OFF_TABLE} VALUES (1, ?, ?) ON CONFLICT DO NOTHING",
            (time.time(), str(exc)),
        )
        log.error("ledger rollups turned off (%s): reports read the raw rows from now on", exc)
    conn.execute("RELEASE rollups")
