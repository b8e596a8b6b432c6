"""The durable usage ledger: one row per request, SQLite by default, PostgreSQL when configured.

``open_store(config, config_dir)`` picks the backend from ``store.url``; ``LedgerObserver`` feeds it
from the finished exchanges; ``Store.report`` answers the usage reports and ``Store.reserve`` the
budget admissions.
"""

from __future__ import annotations

from pathlib import Path

from ccrouter.config import StoreConfig
from ccrouter.errors import ConfigError
from ccrouter.store.base import Store
from ccrouter.store.ledger import DurableLedgerObserver, InputEstimates, LedgerObserver
from ccrouter.store.records import (
    GROUPS,
    REQUEST_FILTERS,
    GroupRow,
    RequestQuery,
    SessionDay,
    UsageQuery,
    UsageRecord,
    Window,
    record_from_exchange,
)

__all__ = [
    "DEFAULT_DB_NAME",
    "GROUPS",
    "REQUEST_FILTERS",
    "DurableLedgerObserver",
    "GroupRow",
    "InputEstimates",
    "LedgerObserver",
    "RequestQuery",
    "SessionDay",
    "Store",
    "UsageQuery",
    "UsageRecord",
    "Window",
    "describe_store",
    "make_store",
    "record_from_exchange",
    "sqlite_path",
]

DEFAULT_DB_NAME = "usage.db"


def _sqlite_path(url: str | None, config_dir: Path) -> Path | None:
    if url is None:
        return config_dir / DEFAULT_DB_NAME
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        # sqlite:///relative.db is relative to the config folder; sqlite:////abs.db is absolute.
        return path if path.is_absolute() else config_dir / path
    return None


def sqlite_path(config: StoreConfig, config_dir: Path) -> Path | None:
    """The SQLite ledger's file, or None when the ledger is PostgreSQL."""
    return _sqlite_path(None if config.url is None else config.url.get_secret_value(), config_dir)


def make_store(config: StoreConfig, config_dir: Path) -> Store:
    """The backend ``config.url`` names (not opened yet)."""
    url = None if config.url is None else config.url.get_secret_value()
    path = _sqlite_path(url, config_dir)
    if path is not None:
        from ccrouter.store.sqlite import SQLiteStore

        return SQLiteStore(path, flush_interval_s=config.flush_interval_s, batch_size=config.batch_size)
    if url is not None and url.startswith(("postgresql://", "postgres://")):
        from ccrouter.store.postgres import PostgresStore

        return PostgresStore(
            url,
            schema=config.schema_name,
            flush_interval_s=config.flush_interval_s,
            batch_size=config.batch_size,
        )
    raise ConfigError("store.url: expected sqlite:///path or postgresql://... (the URL is not shown)")


def describe_store(config: StoreConfig, config_dir: Path) -> str:
    """Where the ledger lives, without credentials."""
    url = None if config.url is None else config.url.get_secret_value()
    path = _sqlite_path(url, config_dir)
    if path is not None:
        return f"SQLite {path}"
    return "PostgreSQL" + (f" (schema {config.schema_name})" if config.schema_name else "")
