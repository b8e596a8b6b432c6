"""Managed keys and the audit trail on a SQLite connection: the work ``SQLiteStore`` runs on its
reader thread (never on the event loop).

Every write runs under BEGIN IMMEDIATE, SQLite's write lock, which every connection to the file (in
any process) takes before it writes: key writes are serial, so each takes the next ``rev`` and revs
commit in order (``keys_sql``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ccrouter.auth.keys import AuditRecord, KeyRecord
from ccrouter.errors import RequestError
from ccrouter.store.base import SqlBuilder, StoreUnavailableError
from ccrouter.store.keys_sql import DUPLICATE_KEY, KeysSql, audit_from_row, audit_row, key_from_row, key_row

__all__ = ["KEYS_SQL", "audit_add", "audit_list", "changes", "get", "insert", "listing", "touch", "update"]

KEYS_SQL = KeysSql(SqlBuilder("sqlite"))


def insert(conn: sqlite3.Connection, record: KeyRecord) -> KeyRecord:
    with _write(conn):
        stored = record.with_changes(rev=_next_rev(conn))
        conn.execute(KEYS_SQL.insert(), key_row(stored))
    return stored


def get(conn: sqlite3.Connection, key_id: str) -> KeyRecord | None:
    with _errors():
        row = conn.execute(KEYS_SQL.get(), (key_id,)).fetchone()
    return None if row is None else key_from_row(row)


def listing(conn: sqlite3.Connection) -> list[KeyRecord]:
    with _errors():
        rows = conn.execute(KEYS_SQL.listing()).fetchall()
    return [key_from_row(row) for row in rows]


def update(conn: sqlite3.Connection, key_id: str, changes: Mapping[str, Any]) -> KeyRecord | None:
    with _write(conn):
        sql, params = KEYS_SQL.update(changes, _next_rev(conn), key_id)
        conn.execute(sql, params)
        row = conn.execute(KEYS_SQL.get(), (key_id,)).fetchone()
    return None if row is None else key_from_row(row)


def changes(conn: sqlite3.Connection, since_rev: int) -> tuple[int, list[KeyRecord]]:
    with _errors():
        # One read transaction: the rows and the highest rev come from the same snapshot (WAL).
        conn.execute("BEGIN")
        try:
            rows = conn.execute(KEYS_SQL.changes(), (since_rev,)).fetchall()
            top = int(conn.execute(KEYS_SQL.max_rev()).fetchone()[0])
        finally:
            conn.execute("COMMIT")
    return top, [key_from_row(row) for row in rows]


def touch(conn: sqlite3.Connection, last_used: Sequence[tuple[str, float]]) -> None:
    with _write(conn):
        conn.executemany(KEYS_SQL.touch(), last_used)


def audit_add(conn: sqlite3.Connection, records: Sequence[AuditRecord]) -> None:
    with _write(conn):
        conn.executemany(KEYS_SQL.audit_insert(), [audit_row(record) for record in records])


def audit_list(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[AuditRecord]:
    with _errors():
        rows = conn.execute(sql, params).fetchall()
    return [audit_from_row(row) for row in rows]


def _next_rev(conn: sqlite3.Connection) -> int:
    return int(conn.execute(KEYS_SQL.next_rev()).fetchone()[0])


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """A duplicate key is the caller's mistake; a locked or broken file is the store being away."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        # The message names the constraint and column (never a value).
        raise RequestError(DUPLICATE_KEY if "UNIQUE" in str(exc) else f"invalid record ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise StoreUnavailableError(f"the usage ledger is unavailable ({exc})") from exc


@contextlib.contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    with _errors():
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
