"""What every ledger backend offers, and the SQL they share (only placeholders and dates differ)."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ccrouter.auth.keys import AuditRecord, KeyRecord
from ccrouter.errors import CCRouterError, RequestError
from ccrouter.store.migrations import Dialect
from ccrouter.store.records import (
    COLUMNS,
    GROUPS,
    REQUEST_FILTERS,
    GroupRow,
    RequestQuery,
    SessionDay,
    UsageQuery,
    UsageRecord,
    Window,
)
from ccrouter.store.rollups import COST, RAW_SUMS, SUM_COLUMNS, TIME_GROUPS, Segment, segments, usable

__all__ = [
    "RESERVATION_TTL_S",
    "SPEND_COLUMNS",
    "SqlBuilder",
    "Store",
    "StoreUnavailableError",
    "crosses",
    "group_rows",
    "narrowed",
]

# A reservation whose request never reached the ledger (its instance crashed) stops counting after this.
RESERVATION_TTL_S = 1800.0


class StoreUnavailableError(CCRouterError):
    """The ledger's database cannot be reached. 503: clients retry it, and budgets fail closed."""

    status = 503
    error_type = "api_error"


class SqlBuilder:
    """Statements for one dialect: SQLite numbers nothing (``?``), PostgreSQL numbers (``$1``)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def mark(self, index: int) -> str:
        return "?" if self.dialect == "sqlite" else f"${index}"

    def insert_usage(self) -> str:
        marks = ", ".join(self.mark(i + 1) for i in range(len(COLUMNS)))
        return f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({marks})"

    def usage_row(self, record: UsageRecord) -> tuple[Any, ...]:
        values = tuple(getattr(record, name) for name in COLUMNS)
        if self.dialect == "sqlite":
            return tuple(int(v) if isinstance(v, bool) else v for v in values)
        return values

    def purge_reservations(self) -> str:
        return f"DELETE FROM budget_reservations WHERE ts < {self.mark(1)}"

    def insert_reservation(self) -> str:
        marks = ", ".join(self.mark(i) for i in range(1, 9))
        return (
            "INSERT INTO budget_reservations (token, ts, client_key_id, user_name, profile, project,"
            " team, cost_picos)"
            f" VALUES ({marks})"
        )

    def settle_reservation(self) -> str:
        return f"UPDATE budget_reservations SET cost_picos = {self.mark(2)} WHERE token = {self.mark(1)}"

    def release_reservation(self) -> str:
        return f"DELETE FROM budget_reservations WHERE token = {self.mark(1)}"

    def window_sum(self, window: Window, now: float, *, rollups: bool = True) -> tuple[str, list[Any]]:
        """Spent plus reserved in ``window``: one statement, so a concurrent ledger write (which
        inserts the row and drops its reservation together) is seen wholly or not at all."""
        params: list[Any] = []
        filters = [
            ("client_key_id", window.client_key_id),
            ("user_name", window.user_name),
            ("profile", window.profile),
            ("project", window.project),
            ("team", window.team),
        ]

        def where(since: float) -> str:
            # Each value gets its own placeholder: SQLite's ``?`` cannot be referred to twice.
            params.append(since)
            parts = [f"ts >= {self.mark(len(params))}"]
            for column, value in filters:
                if value is not None:
                    params.append(value)
                    parts.append(f"{column} = {self.mark(len(params))}")
            return " AND ".join(parts)

        present = [(column, value) for column, value in filters if value is not None]
        spent, _ = self.summed((), window.since, None, present, (COST,), rollups=rollups, params=params)
        since = max(window.since, now - RESERVATION_TTL_S)
        reserved = f"SELECT COALESCE(SUM(cost_picos), 0) FROM budget_reservations WHERE {where(since)}"
        sql = f"SELECT ({spent}) + ({reserved})"
        return sql, params

    def day(self) -> str:
        if self.dialect == "sqlite":
            return "strftime('%Y-%m-%d', ts, 'unixepoch')"
        return "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def hour(self) -> str:
        """The UTC hour, ``2026-12-03T08``: a day's spend hour by hour (the dashboard's Costs page)."""
        if self.dialect == "sqlite":
            return "strftime('%Y-%m-%dT%H', ts, 'unixepoch')"
        return "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"

    def group_expr(self, name: str) -> str:
        if name == "day":
            return self.day()
        if name == "hour":
            return self.hour()
        return GROUPS[name]

    def report(self, query: UsageQuery, *, rollups: bool = True) -> tuple[str, list[Any]]:
        """The report's statement: from the rollups where they cover the range (``rollups``: they are
        on), from the raw rows elsewhere."""
        sql, params = self.summed(
            query.by, query.since, query.until, self._among(query), range(len(SUM_COLUMNS)), rollups=rollups
        )
        return sql + self._order(query, len(query.by) + 1 + COST), params

    def ranking(self, query: UsageQuery, *, rollups: bool = True) -> tuple[str, list[Any]] | None:
        """A limited report's first step: the top groups by spend alone. Summing one column per group
        instead of nine is what makes the top 50 of 48,000 sessions fast (PostgreSQL's nine numeric
        sums per group spill to disk); ``narrowed`` then sums everything for those groups only.
        None: the report needs no first step (no limit, or time groups alone)."""
        if not query.limit or all(name in TIME_GROUPS for name in query.by):
            return None
        sql, params = self.summed(
            query.by, query.since, query.until, self._among(query), (COST,), rollups=rollups
        )
        return sql + self._order(query, len(query.by) + 1), params

    def _among(self, query: UsageQuery) -> list[tuple[str, Any]]:
        unknown = [name for name in (*query.by, *(name for name, _ in query.among)) if name not in GROUPS]
        if unknown:
            raise RequestError(f"unknown group {unknown[0]!r}: use any of {', '.join(GROUPS)}")
        timed = [name for name, _ in query.among if name in TIME_GROUPS]
        if timed:
            raise RequestError(f"{timed[0]!r} is a time group: filter on a time range instead")
        return [(GROUPS[name], tuple(values)) for name, values in query.among]

    @staticmethod
    def _order(query: UsageQuery, cost: int) -> str:
        sql = ""
        if query.by:
            order = [f"{cost} DESC"] if query.limit else []
            sql += " ORDER BY " + ", ".join([*order, *(str(i + 1) for i in range(len(query.by)))])
        if query.limit:
            sql += f" LIMIT {int(query.limit)}"
        return sql

    def summed(
        self,
        by: Sequence[str],
        since: float | None,
        until: float | None,
        filters: Sequence[tuple[str, Any]],
        sums: Sequence[int],
        *,
        rollups: bool,
        params: list[Any] | None = None,
    ) -> tuple[str, list[Any]]:
        """``SELECT <groups>, <sums> ... GROUP BY <groups>`` over ``[since, until)`` where each
        ``filters`` column equals its value; ``sums`` picks from ``RAW_SUMS``. Reads the rollups for
        whole buckets and the raw rows for the rest, so the answer equals the raw rows' exactly."""
        params = [] if params is None else params
        columns = [GROUPS[name] for name in by if name not in TIME_GROUPS]
        times = [name for name in by if name in TIME_GROUPS]
        found = usable([*columns, *(column for column, _ in filters)], times) if rollups else []
        pieces = segments(since, until, found)
        exprs = [self.group_expr(name) for name in by]
        if len(pieces) == 1 and pieces[0].rollup is None:
            return self._branch(pieces[0], exprs, filters, sums, params, alias=False), params
        branches = [self._branch(piece, exprs, filters, sums, params, alias=True) for piece in pieces]
        outer = [
            *(f"g{i}" for i in range(len(exprs))),
            *(f"COALESCE(SUM(s{i}), 0)" for i in range(len(sums))),
        ]
        sql = f"SELECT {', '.join(outer)} FROM ({' UNION ALL '.join(branches)}) AS u"
        if exprs:
            sql += " GROUP BY " + ", ".join(f"g{i}" for i in range(len(exprs)))
        return sql, params

    def _branch(
        self,
        piece: Segment,
        exprs: Sequence[str],
        filters: Sequence[tuple[str, Any]],
        sums: Sequence[int],
        params: list[Any],
        *,
        alias: bool,
    ) -> str:
        where: list[str] = []
        for condition, value in (("ts >= {}", piece.since), ("ts < {}", piece.until)):
            if value is not None:
                params.append(value)
                where.append(condition.format(self.mark(len(params))))
        for column, value in filters:
            where.append(self._match(column, value, params))
        # A rollup's rows go to the outer sums as they are: one aggregation, not two. PostgreSQL: the
        # raw sums as bigint, like the rollups' columns (its SUM of bigint is a slow numeric).
        rolled = piece.rollup is not None
        if piece.rollup is not None:
            table, picked = piece.rollup.table, [SUM_COLUMNS[i] for i in sums]
        elif alias and self.dialect == "postgres":
            table, picked = "usage", [f"CAST({RAW_SUMS[i]} AS BIGINT)" for i in sums]
        else:
            table, picked = "usage", [RAW_SUMS[i] for i in sums]
        names = [f" AS g{i}" if alias else "" for i in range(len(exprs))]
        selected = [f"{expr}{name}" for expr, name in zip(exprs, names, strict=True)]
        selected += [f"{expr} AS s{i}" if alias else expr for i, expr in enumerate(picked)]
        sql = f"SELECT {', '.join(selected)} FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if exprs and not rolled:
            sql += " GROUP BY " + ", ".join(exprs)
        return sql

    def _match(self, column: str, value: Any, params: list[Any]) -> str:
        """``column = value``; for a tuple, ``column`` is one of its values (None: has none)."""
        if not isinstance(value, tuple):
            params.append(value)
            return f"{column} = {self.mark(len(params))}"
        marks = []
        for item in value:
            if item is not None:
                params.append(int(item) if isinstance(item, bool) and self.dialect == "sqlite" else item)
                marks.append(self.mark(len(params)))
        parts = [f"{column} IN ({', '.join(marks)})"] if marks else []
        if None in value:
            parts.append(f"{column} IS NULL")
        return "(" + " OR ".join(parts) + ")" if parts else "1 = 0"

    def session_sums(self) -> str:
        """Requests, spend and unpriced rows of session ``$1`` in ``[$2, $3)``."""
        return (
            "SELECT COUNT(*), COALESCE(SUM(cost_picos), 0),"
            " COALESCE(SUM(CASE WHEN cost_picos IS NULL THEN 1 ELSE 0 END), 0)"
            f" FROM usage WHERE session_id = {self.mark(1)} AND ts >= {self.mark(2)} AND ts < {self.mark(3)}"
        )

    def session_last(self) -> str:
        """The last request of session ``$1`` before ``$2`` that a provider served."""
        return (
            f"SELECT {', '.join(COLUMNS)} FROM usage"
            f" WHERE session_id = {self.mark(1)} AND ts < {self.mark(2)} AND status < 400"
            " AND provider IS NOT NULL ORDER BY ts DESC, id DESC LIMIT 1"
        )

    def requests(self, query: RequestQuery) -> tuple[str, list[Any]]:
        """The request log's page for ``query``: ``id`` and every column, newest first."""
        params: list[Any] = []
        where: list[str] = []

        def add(condition: str, value: Any) -> None:
            params.append(value)
            where.append(condition.format(self.mark(len(params))))

        if query.since is not None:
            add("ts >= {}", query.since)
        if query.until is not None:
            add("ts < {}", query.until)
        for name, value in query.equals:
            add(f"{REQUEST_FILTERS[name]} = {{}}", value)
        status = query.status
        if isinstance(status, int):
            add("status = {}", status)
        elif status == "error":
            where.append("(status >= 400 OR error_type IS NOT NULL)")
        elif status is not None:
            low = int(status[0]) * 100
            # ``+`` keeps the planner off the status index: a class can hold most rows, and sorting
            # them all by time is far slower than reading the time index's newest rows.
            add("+status >= {}", low)
            add("+status < {}", low + 100)
        if query.before_id is not None:
            # The rows after row ``before_id`` in the page order (ts, then id). Ids follow the
            # writes and ts the starts, so ``id <`` alone would repeat or skip rows across pages.
            last = "(SELECT ts FROM usage WHERE id = {})"
            add(f"ts <= {last}", query.before_id)
            add(f"(ts < {last}", query.before_id)
            add("id < {})", query.before_id)
            where[-2:] = [f"{where[-2]} OR {where[-1]}"]
        sql = f"SELECT id, {', '.join(COLUMNS)} FROM usage"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # ts then id: the time index serves the order; id keeps pages apart within one timestamp.
        sql += f" ORDER BY ts DESC, id DESC LIMIT {int(query.limit)}"
        return sql, params

    def spend_by(self, group: str, since: float, *, rollups: bool = True) -> tuple[str, list[Any]]:
        """Spent per value of ``group`` since ``since`` (the NULL group too: callers drop it)."""
        return self.summed((group,), since, None, [], (COST,), rollups=rollups)


def group_rows(by: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[GroupRow]:
    out = []
    for row in rows:
        groups = {name: _group_value(name, row[i]) for i, name in enumerate(by)}
        n = len(by)
        out.append(GroupRow(groups, *(int(value) for value in row[n : n + len(SUM_COLUMNS)])))
    return out


def _group_value(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if name == "subagent":  # SQLite keeps 0/1, PostgreSQL a boolean: one spelling for both
        return "true" if value else "false"
    return str(value)


class Store(abc.ABC):
    """The ledger. ``add`` never blocks the event loop; a background writer commits in batches."""

    dialect: Dialect

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, apply pending migrations, start the writer."""

    @abc.abstractmethod
    def add(self, record: UsageRecord) -> None:
        """Queue a row for the writer (never blocks)."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Return once every row queued before the call is committed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush everything queued, stop the writer, close connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """One trivial query: returns when the ledger answers, raises (a ``StoreError`` or an
        ``OSError``) when it cannot (``GET /health/ready``)."""

    @abc.abstractmethod
    async def report(self, query: UsageQuery) -> list[GroupRow]:
        """Sums per group (see ``UsageQuery``)."""

    @abc.abstractmethod
    async def window_sums(self, windows: Sequence[Window], now: float) -> list[int]:
        """Spent plus reserved pico-dollars in each window."""

    @abc.abstractmethod
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
        """Atomically (across every instance sharing the store): sum each window; unless a blocking
        window would be crossed by ``amount``, record a reservation of ``amount`` under ``token``.
        Returns the sums seen before the reservation and whether it was made."""

    @abc.abstractmethod
    async def settle(self, token: str, amount: int) -> None:
        """Set the reservation under ``token`` to ``amount`` (the actual cost; 0 drops it). A no-op
        once the ledger row that replaces it is written."""

    @abc.abstractmethod
    async def spend_by(self, group: str, since: float) -> dict[str, int]:
        """Spent pico-dollars since ``since`` per key id (``key``), user (``user``), team (``team``),
        profile (``profile``) or project (``project``)."""

    @abc.abstractmethod
    async def session_day(self, session_id: str, since: float, until: float) -> SessionDay:
        """Session ``session_id``'s requests and spend in ``[since, until)`` and its last served
        request before ``until`` (the statusline's session API)."""

    @abc.abstractmethod
    async def records(self, since: float | None = None) -> list[UsageRecord]:
        """Raw rows, oldest first (tests and exports)."""

    @abc.abstractmethod
    async def requests(self, query: RequestQuery) -> list[tuple[int, UsageRecord]]:
        """The request log: (row id, row) newest first, as ``query`` selects (``GET /api/requests``)."""

    # -- managed keys and the audit trail (issue 14, ``ccrouter.auth``) -----------------------------
    # Key writes are serialized across every instance sharing the store (SQLite's write lock, a
    # PostgreSQL advisory lock), so ``rev`` grows in commit order and ``key_changes`` misses nothing.

    @abc.abstractmethod
    async def key_insert(self, record: KeyRecord) -> KeyRecord:
        """Store a new key; returns it with its ``rev``. A duplicate id or hash is a ``RequestError``."""

    @abc.abstractmethod
    async def key_get(self, key_id: str) -> KeyRecord | None:
        """The key with id ``key_id``, None when there is none."""

    @abc.abstractmethod
    async def key_list(self) -> list[KeyRecord]:
        """Every key, revoked and expired ones included, oldest first."""

    @abc.abstractmethod
    async def key_update(self, key_id: str, changes: Mapping[str, Any]) -> KeyRecord | None:
        """Set ``changes`` (``KeyRecord`` field names, never ``id`` or ``rev``) on the key and give it
        a new ``rev``; returns the updated key, None when there is no such key."""

    @abc.abstractmethod
    async def key_changes(self, since_rev: int) -> tuple[int, list[KeyRecord]]:
        """The keys written after ``since_rev`` (0: all), and the highest ``rev`` now stored (the
        ``since_rev`` of the next call)."""

    @abc.abstractmethod
    async def key_touch(self, last_used: Mapping[str, float]) -> None:
        """Record when each key was last used (key id -> unix time; a later time only). Does not
        change ``rev`` (it is not a change other instances must see)."""

    @abc.abstractmethod
    async def audit_add(self, records: Sequence[AuditRecord]) -> None:
        """Append audit records (committed before it returns)."""

    @abc.abstractmethod
    async def audit_list(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Audit records, newest first, at most ``limit``; ``action`` may end in ``*`` (a prefix)."""


SPEND_COLUMNS = {
    "key": "client_key_id",
    "user": "user_name",
    "team": "team",
    "profile": "profile",
    "project": "project",
}


def narrowed(query: UsageQuery, top: Sequence[Sequence[Any]]) -> UsageQuery:
    """``query`` kept to the group values of ``top`` (the rows ``SqlBuilder.ranking`` found): every
    top group is among the combinations of those values, so the limited report over them is the
    limited report over everything, and it sums only a few groups."""
    among = dict(query.among)
    for index, name in enumerate(query.by):
        if name not in TIME_GROUPS:
            among[name] = tuple(dict.fromkeys(row[index] for row in top))
    return dataclasses.replace(query, among=tuple(among.items()))


def crosses(window: Window, used: int, amount: int) -> bool:
    """True when a blocking ``window`` must refuse a request costing ``amount``."""
    return used >= window.limit_picos or used + amount > window.limit_picos
