"""The SQL of managed keys and the audit trail, and their row <-> record conversion, for both dialects.

Rows go in and come out as plain tuples so that SQLite and asyncpg share one conversion: ``models``
is JSON text (NULL: any model), ``detail`` JSON text. A key's ``user`` is the column ``user_name``
(``user`` is reserved in PostgreSQL).

``rev`` is ``MAX(rev) + 1`` taken inside the write's transaction while every key write holds one
lock (SQLite's write lock, a PostgreSQL advisory lock), so revs are unique and commit in increasing
order: a reader that sees rev N sees every rev below it, and ``key_changes`` misses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import orjson

from ccrouter.auth.keys import AuditRecord, KeyRecord
from ccrouter.errors import RequestError
from ccrouter.store.base import SqlBuilder

__all__ = [
    "AUDIT_MAX_LIMIT",
    "KEY_FIELDS",
    "KeysSql",
    "audit_from_row",
    "audit_row",
    "key_from_row",
    "key_row",
    "key_value",
]

KEY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(KeyRecord))
_KEY_COLUMNS: dict[str, str] = {name: "user_name" if name == "user" else name for name in KEY_FIELDS}
_UPDATABLE = frozenset(KEY_FIELDS) - {"id", "rev"}
_AUDIT_FIELDS = ("ts", "actor", "action", "outcome", "target", "address", "detail")
AUDIT_MAX_LIMIT = 10_000
DUPLICATE_KEY = "a key with this id or secret already exists"


def key_value(name: str, value: Any) -> Any:
    """One ``KeyRecord`` field as its column holds it."""
    if name == "models" and value is not None:
        if isinstance(value, str) or not all(isinstance(model, str) for model in value):
            raise RequestError("a key's models: expected a list of names")
        return orjson.dumps(list(value)).decode()
    return value


def key_row(record: KeyRecord) -> tuple[Any, ...]:
    return tuple(key_value(name, getattr(record, name)) for name in KEY_FIELDS)


def key_from_row(row: Sequence[Any]) -> KeyRecord:
    values = dict(zip(KEY_FIELDS, row, strict=True))
    models = values["models"]
    values["models"] = None if models is None else tuple(orjson.loads(models))
    values["rev"] = int(values["rev"])
    return KeyRecord(**values)


def audit_row(record: AuditRecord) -> tuple[Any, ...]:
    detail = None if record.detail is None else orjson.dumps(record.detail).decode()
    return (record.ts, record.actor, record.action, record.outcome, record.target, record.address, detail)


def audit_from_row(row: Sequence[Any]) -> AuditRecord:
    """``row``: the id, then the columns of ``_AUDIT_FIELDS``."""
    ident, ts, actor, action, outcome, target, address, detail = row
    return AuditRecord(
        ts=float(ts),
        actor=actor,
        action=action,
        outcome=outcome,
        target=target,
        address=address,
        detail=None if detail is None else orjson.loads(detail),
        id=int(ident),
    )


class KeysSql:
    """Statements over ``client_keys`` and ``audit_log`` in one dialect's placeholders."""

    def __init__(self, sql: SqlBuilder) -> None:
        self._mark = sql.mark
        self._dialect = sql.dialect
        self._select = "SELECT " + ", ".join(_KEY_COLUMNS.values()) + " FROM client_keys"

    def next_rev(self) -> str:
        return "SELECT COALESCE(MAX(rev), 0) + 1 FROM client_keys"

    def insert(self) -> str:
        marks = ", ".join(self._mark(i + 1) for i in range(len(KEY_FIELDS)))
        return f"INSERT INTO client_keys ({', '.join(_KEY_COLUMNS.values())}) VALUES ({marks})"

    def get(self) -> str:
        return f"{self._select} WHERE id = {self._mark(1)}"

    def listing(self) -> str:
        return f"{self._select} ORDER BY created_at, id"

    def changes(self) -> str:
        return f"{self._select} WHERE rev > {self._mark(1)} ORDER BY rev"

    def max_rev(self) -> str:
        return "SELECT COALESCE(MAX(rev), 0) FROM client_keys"

    def update(self, changes: Mapping[str, Any], rev: int, key_id: str) -> tuple[str, list[Any]]:
        """``UPDATE`` setting ``changes`` and ``rev`` on key ``key_id``; ``RequestError`` for a field
        that is not a key's or may not change."""
        unknown = sorted(set(changes) - _UPDATABLE)
        if unknown:
            raise RequestError(f"a key's {unknown[0]!r} cannot be set")
        params: list[Any] = []
        sets = []
        for name, value in [*changes.items(), ("rev", rev)]:
            params.append(key_value(name, value))
            sets.append(f"{_KEY_COLUMNS[name]} = {self._mark(len(params))}")
        params.append(key_id)
        return f"UPDATE client_keys SET {', '.join(sets)} WHERE id = {self._mark(len(params))}", params

    def touch(self) -> str:
        """Key ``1`` last used at ``2``, unless a later use is already recorded."""
        # Numbered marks in both dialects (SQLite's ``?NNN``): the time is compared and set.
        key, last = ("?1", "?2") if self._dialect == "sqlite" else ("$1", "$2")
        return (
            f"UPDATE client_keys SET last_used_at = {last}"
            f" WHERE id = {key} AND (last_used_at IS NULL OR last_used_at < {last})"
        )

    def audit_insert(self) -> str:
        marks = ", ".join(self._mark(i + 1) for i in range(len(_AUDIT_FIELDS)))
        return f"INSERT INTO audit_log ({', '.join(_AUDIT_FIELDS)}) VALUES ({marks})"

    def audit_list(
        self,
        *,
        since: float | None,
        until: float | None,
        action: str | None,
        actor: str | None,
        limit: int,
    ) -> tuple[str, list[Any]]:
        if not 1 <= limit <= AUDIT_MAX_LIMIT:
            raise RequestError(f"limit: expected 1 to {AUDIT_MAX_LIMIT}, got {limit}")
        params: list[Any] = []
        where: list[str] = []

        def add(condition: str, value: Any) -> None:
            params.append(value)
            where.append(condition.format(self._mark(len(params))))

        if since is not None:
            add("ts >= {}", since)
        if until is not None:
            add("ts < {}", until)
        if action is not None and action.endswith("*"):
            if prefix := action[:-1]:
                # substr, not LIKE: LIKE's wildcards would need escaping, and SQLite's ignores case.
                add(f"substr(action, 1, {len(prefix)}) = {{}}", prefix)
        elif action is not None:
            add("action = {}", action)
        if actor is not None:
            add("actor = {}", actor)
        sql = "SELECT id, " + ", ".join(_AUDIT_FIELDS) + " FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return sql + f" ORDER BY ts DESC, id DESC LIMIT {int(limit)}", params
