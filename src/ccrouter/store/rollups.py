"""Rollups: the ledger summed per hour and per day, so the dashboard's reports read thousands of rows
instead of millions.

Each rollup table holds, per time bucket (its start, unix seconds) and distinct combination of its
dimensions, the same sums a report computes from raw rows. The writer maintains them in the
transaction that inserts the rows (an upsert per bucket), so a rollup never disagrees with the ledger.
A query reads the rollups for the whole buckets inside its range and the raw rows for the partial
edges (``segments``), so its answer is exact, equal to the raw one.

Each rollup sums over a few columns that go together (``ROLLUPS``): crossing every column multiplies
the combinations until a rollup is nearly as long as the ledger. Sessions are many, so they get
rollups of their own. A bucket's combination is also kept as one text key (``dims``, a JSON array):
unique indexes treat NULLs as distinct, so the key is what an upsert conflicts on.

If a sum would pass 64 bits (no real ledger; a test's), the rollups turn off for good
(``usage_rollups_off``) and every query reads the raw rows again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ccrouter.store.migrations import Dialect
    from ccrouter.store.records import UsageRecord

__all__ = [
    "OFF_TABLE",
    "RAW_SUMS",
    "ROLLUPS",
    "SUM_COLUMNS",
    "TIME_GROUPS",
    "Rollup",
    "Segment",
    "backfill",
    "batch_columns",
    "create_tables",
    "segments",
    "upsert_batch",
    "upsert_from_usage",
    "usable",
]

# The report's sums over raw rows, in ``GroupRow`` order, and the rollup column holding each.
RAW_SUMS = (
    "COUNT(*)",
    "COALESCE(SUM(CASE WHEN status >= 400 OR error_type IS NOT NULL THEN 1 ELSE 0 END), 0)",
    "COALESCE(SUM(input_tokens), 0)",
    "COALESCE(SUM(output_tokens), 0)",
    "COALESCE(SUM(cache_read_tokens), 0)",
    "COALESCE(SUM(cache_write_tokens), 0)",
    "COALESCE(SUM(CASE WHEN estimated THEN 1 ELSE 0 END), 0)",
    "COALESCE(SUM(cost_picos), 0)",
    "COALESCE(SUM(CASE WHEN cost_picos IS NULL THEN 1 ELSE 0 END), 0)",
)
SUM_COLUMNS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "estimated",
    "cost_picos",
    "unpriced",
)
COST = SUM_COLUMNS.index("cost_picos")
OFF_TABLE = "usage_rollups_off"
# A time group -> its width in seconds: a rollup answers it when its buckets nest in the group's.
TIME_GROUPS: dict[str, int] = {"day": 86_400, "hour": 3_600}
_INT64 = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Rollup:
    table: str
    width: int  # seconds; buckets start at multiples of it (UTC)
    dims: tuple[str, ...]  # ledger columns


# Every column a report groups by or a budget filters on, except the session.
_ALL = (
    "endpoint",
    "provider",
    "model",
    "client_key_id",
    "user_name",
    "team",
    "scenario",
    "project",
    "profile",
    "subagent",
)
# Narrow sets of columns that go together (few combinations a day: a key has one user and team, a
# model one provider), so the common reports read a few thousand rows. Crossing them all multiplies:
# on 1,000,000 rows shaped like a team's gateway (bench/ledger_queries.py) a daily rollup of every
# column kept 278,000 rows, an hourly one 453,000 (too slow to read, and it halved PostgreSQL's write
# rate). A query across the sets (by key and model) reads the raw rows.
_ROUTES = ("endpoint", "scenario", "provider", "model", "subagent", "profile")
_PEOPLE = ("client_key_id", "user_name", "team", "profile")
_PROJECTS = ("project", "team")
_SESSIONS = ("session_id",)
# In order of preference: a query reads, for each width, the first rollup with every column it needs.
# A new dimension needs a new table (and a migration that fills it), never an edit of these.
ROLLUPS = (
    Rollup("usage_daily_routes", 86_400, _ROUTES),
    Rollup("usage_daily_people", 86_400, _PEOPLE),
    Rollup("usage_daily_projects", 86_400, _PROJECTS),
    Rollup("usage_daily_sessions", 86_400, _SESSIONS),
    Rollup("usage_hourly_routes", 3_600, _ROUTES),
    Rollup("usage_hourly_people", 3_600, _PEOPLE),
    Rollup("usage_hourly_projects", 3_600, _PROJECTS),
    Rollup("usage_hourly_sessions", 3_600, _SESSIONS),
)


@dataclass(frozen=True, slots=True)
class Segment:
    """Rows with ``since <= ts < until`` (None: unbounded), read from ``rollup`` (None: raw rows)."""

    rollup: Rollup | None
    since: float | None
    until: float | None


def usable(columns: Iterable[str], time_groups: Iterable[str]) -> list[Rollup]:
    """The rollups that can answer a query grouping or filtering on ``columns`` (ledger columns) and
    grouping by ``time_groups``, widest buckets first."""
    needed = set(columns)
    widths = [TIME_GROUPS[name] for name in time_groups]
    chosen: dict[int, Rollup] = {}
    for rollup in ROLLUPS:
        if needed <= set(rollup.dims) and all(width % rollup.width == 0 for width in widths):
            chosen.setdefault(rollup.width, rollup)
    return sorted(chosen.values(), key=lambda rollup: -rollup.width)


def segments(since: float | None, until: float | None, rollups: Sequence[Rollup]) -> list[Segment]:
    """``[since, until)`` cut into pieces: the widest rollup's whole buckets, then narrower ones'
    whole buckets on the edges, then raw rows for what is left. Never empty."""
    if since is not None and until is not None and since >= until:
        return [Segment(None, since, until)]
    out = _cover(since, until, rollups)
    return out or [Segment(None, since, until)]


def _cover(since: float | None, until: float | None, rollups: Sequence[Rollup]) -> list[Segment]:
    if since is not None and until is not None and since >= until:
        return []
    if not rollups:
        return [Segment(None, since, until)]
    rollup, rest = rollups[0], rollups[1:]
    low = None if since is None else _edge(since, rollup.width, up=True)
    high = None if until is None else _edge(until, rollup.width, up=False)
    if low is not None and high is not None and low >= high:
        return _cover(since, until, rest)
    head = [] if since is None or low is None else _cover(since, low, rest)
    tail = [] if until is None or high is None else _cover(high, until, rest)
    return [*head, Segment(rollup, low, high), *tail]


def _edge(moment: float, width: int, *, up: bool) -> float:
    """The first bucket start at or after ``moment`` (``up``), or the last at or before it. The
    division rounds: step when it rounded across ``moment``."""
    if up:
        edge = float(math.ceil(moment / width) * width)
        return edge + width if edge < moment else edge
    edge = float(math.floor(moment / width) * width)
    return edge - width if edge > moment else edge


def bucket(dialect: Dialect, width: int) -> str:
    """The start of ``ts``'s bucket. Dividing a float can round up onto the next bucket's start for
    a ts a hair below it: step back then, so the bucket agrees with comparisons on ``ts``."""
    start = (
        f"(floor(ts / {width}) * {width})"
        if dialect == "postgres"
        else f"(CAST(ts / {width} AS INTEGER) * {width})"
    )
    return f"(CASE WHEN {start} > ts THEN {start} - {width} ELSE {start} END)"


def _key(dialect: Dialect, dims: Sequence[str]) -> str:
    return (
        f"json_array({', '.join(dims)})"
        if dialect == "sqlite"
        else f"json_build_array({', '.join(dims)})::text"
    )


def create_tables(dialect: Dialect) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgres" else "REAL"
    boolean = "BOOLEAN" if dialect == "postgres" else "INTEGER"
    # SQLite: WITHOUT ROWID keeps the rows in (ts, dims) order, so a time range is one sweep.
    tail = "" if dialect == "postgres" else " WITHOUT ROWID"
    out = []
    for rollup in ROLLUPS:
        dims = [f"{name} {boolean if name == 'subagent' else 'TEXT'}" for name in rollup.dims]
        sums = [f"{name} BIGINT NOT NULL" for name in SUM_COLUMNS]
        out.append(
            f"CREATE TABLE {rollup.table} (ts {real} NOT NULL, {', '.join(dims)}, dims TEXT NOT NULL,"
            f" {', '.join(sums)}, PRIMARY KEY (ts, dims)){tail}"
        )
    out.append(f"CREATE TABLE {OFF_TABLE} (id INTEGER PRIMARY KEY, ts {real} NOT NULL, reason TEXT NOT NULL)")
    return out


def _on_conflict(rollup: Rollup) -> str:
    updates = ", ".join(f"{name} = {rollup.table}.{name} + excluded.{name}" for name in SUM_COLUMNS)
    return f" ON CONFLICT (ts, dims) DO UPDATE SET {updates}"


def upsert_from_usage(dialect: Dialect, rollup: Rollup, mark: str) -> str:
    """Add the ledger rows with ``id > mark`` to ``rollup`` (the batch just inserted, or all)."""
    return _upsert(dialect, rollup, f"usage WHERE id > {mark}")


def _upsert(dialect: Dialect, rollup: Rollup, source: str) -> str:
    dims = ", ".join(rollup.dims)
    columns = ", ".join(["ts", *rollup.dims, "dims", *SUM_COLUMNS])
    start = bucket(dialect, rollup.width)
    # In key order: concurrent writers then lock the rows they share in the same order (no deadlock).
    return (
        f"INSERT INTO {rollup.table} ({columns})"
        f" SELECT {start} AS b, {dims}, {_key(dialect, rollup.dims)}, {', '.join(RAW_SUMS)}"
        f" FROM {source} GROUP BY b, {dims} ORDER BY 1, {len(rollup.dims) + 2}" + _on_conflict(rollup)
    )


def backfill(dialect: Dialect) -> list[str]:
    """Fill the rollups from the rows already written: each from the smallest table that has its
    columns at a finer bucket (a daily rollup from the hourly one), so the ledger's millions of rows
    are read once per hourly rollup, not once per rollup."""
    statements: list[str] = []
    done: list[Rollup] = []
    for rollup in sorted(ROLLUPS, key=lambda r: (r.width, -len(r.dims))):
        sources = [
            other for other in done if set(rollup.dims) <= set(other.dims) and rollup.width % other.width == 0
        ]
        if sources:
            source = min(sources, key=lambda other: (-other.width, len(other.dims)))
            statements.append(_derive(dialect, rollup, source.table))
        else:
            statements.append(upsert_from_usage(dialect, rollup, "0"))
        done.append(rollup)
    return statements


def _derive(dialect: Dialect, rollup: Rollup, source: str) -> str:
    dims = ", ".join(rollup.dims)
    columns = ", ".join(["ts", *rollup.dims, "dims", *SUM_COLUMNS])
    sums = ", ".join(f"SUM({name})" for name in SUM_COLUMNS)
    return (
        f"INSERT INTO {rollup.table} ({columns})"
        f" SELECT {bucket(dialect, rollup.width)} AS b, {dims}, {_key(dialect, rollup.dims)}, {sums}"
        f" FROM {source} GROUP BY b, {dims}" + _on_conflict(rollup)
    )


# What a rollup reads of a row, and its PostgreSQL type.
_BATCH = {
    "ts": "float8",
    **{name: "boolean" if name == "subagent" else "text" for name in (*_ALL, *_SESSIONS)},
    "status": "int4",
    "error_type": "text",
    "input_tokens": "int8",
    "output_tokens": "int8",
    "cache_read_tokens": "int8",
    "cache_write_tokens": "int8",
    "estimated": "boolean",
    "cost_picos": "int8",
}


def upsert_batch() -> str:
    """PostgreSQL: add a batch of rows, one array per ``batch_columns`` column, to every rollup, in
    one statement (one round trip: its data-modifying WITH parts each run once)."""
    arrays = ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(_BATCH.values(), start=1))
    parts = [f"batch AS (SELECT * FROM unnest({arrays}) AS u({', '.join(_BATCH)}))"]
    for i, rollup in enumerate(ROLLUPS):
        parts.append(f"r{i} AS ({_upsert('postgres', rollup, 'batch')} RETURNING 1)")
    return f"WITH {', '.join(parts)} SELECT 1"


def batch_columns(records: Sequence[UsageRecord]) -> list[list[Any]]:
    return [[getattr(record, name) for record in records] for name in _BATCH]
