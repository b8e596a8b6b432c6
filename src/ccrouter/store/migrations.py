"""Schema migrations: an ordered list of named functions, each applied once and recorded in a table.

The idea is simonw/llm's ``migrations.py``; here each step returns its SQL for the dialect, so one list
serves SQLite and PostgreSQL. Append new steps at the end; never edit or reorder an applied one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from ccrouter.store import rollups

__all__ = ["MIGRATIONS", "MIGRATIONS_TABLE", "Dialect", "Migration", "pending"]

Dialect = Literal["sqlite", "postgres"]
Migration = Callable[[Dialect], list[str]]

MIGRATIONS_TABLE = "ccrouter_migrations"
MIGRATIONS: list[Migration] = []


def migration(step: Migration) -> Migration:
    MIGRATIONS.append(step)
    return step


def pending(applied: set[str]) -> list[Migration]:
    return [step for step in MIGRATIONS if step.__name__ not in applied]


def create_migrations_table(dialect: Dialect) -> str:
    applied_type = "DOUBLE PRECISION" if dialect == "postgres" else "REAL"
    return f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_at {applied_type})"


@migration
def m001_usage(dialect: Dialect) -> list[str]:
    if dialect == "postgres":
        ident, real, boolean = (
            "id BIGSERIAL PRIMARY KEY",
            "DOUBLE PRECISION",
            "BOOLEAN NOT NULL DEFAULT FALSE",
        )
    else:
        ident, real, boolean = "id INTEGER PRIMARY KEY AUTOINCREMENT", "REAL", "INTEGER NOT NULL DEFAULT 0"
    return [
        f"""CREATE TABLE usage (
            {ident},
            ts {real} NOT NULL,
            request_id TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            status INTEGER NOT NULL,
            session_id TEXT,
            client_key_id TEXT,
            user_name TEXT,
            scenario TEXT,
            provider TEXT,
            model TEXT,
            error_type TEXT,
            latency_ms {real},
            ttfb_ms {real},
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            cache_read_tokens BIGINT NOT NULL DEFAULT 0,
            cache_write_tokens BIGINT NOT NULL DEFAULT 0,
            estimated {boolean},
            cost_picos BIGINT,
            attempts INTEGER NOT NULL DEFAULT 0,
            fallbacks TEXT
        )""",
        "CREATE INDEX usage_ts ON usage (ts)",
        "CREATE INDEX usage_key_ts ON usage (client_key_id, ts)",
        "CREATE INDEX usage_user_ts ON usage (user_name, ts)",
        "CREATE INDEX usage_session ON usage (session_id)",
    ]


@migration
def m002_budget_reservations(dialect: Dialect) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgres" else "REAL"
    # A request admitted under a budget holds its estimated cost here until its ledger row is written
    # (in the same transaction), so concurrent admissions on any instance see it.
    return [
        f"""CREATE TABLE budget_reservations (
            token TEXT PRIMARY KEY,
            ts {real} NOT NULL,
            client_key_id TEXT,
            user_name TEXT,
            cost_picos BIGINT NOT NULL
        )"""
    ]


@migration
def m003_usage_project(dialect: Dialect) -> list[str]:
    # Claude Code (issue 13): the project and profile a request came with (x-ccrouter-project /
    # -profile), and whether one of Claude Code's subagents sent it.
    boolean = "BOOLEAN NOT NULL DEFAULT FALSE" if dialect == "postgres" else "INTEGER NOT NULL DEFAULT 0"
    return [
        "ALTER TABLE usage ADD COLUMN project TEXT",
        "ALTER TABLE usage ADD COLUMN profile TEXT",
        f"ALTER TABLE usage ADD COLUMN subagent {boolean}",
        "CREATE INDEX usage_project_ts ON usage (project, ts)",
    ]


@migration
def m004_reservation_profile(dialect: Dialect) -> list[str]:
    # Budgets per profile and per project (issue 13): a reservation records both, so requests in flight
    # count against those budgets as they do against key and user ones.
    return [
        "ALTER TABLE budget_reservations ADD COLUMN profile TEXT",
        "ALTER TABLE budget_reservations ADD COLUMN project TEXT",
        "CREATE INDEX usage_profile_ts ON usage (profile, ts)",
    ]


@migration
def m005_keys_audit_team(dialect: Dialect) -> list[str]:
    # Issue 14: managed client keys (``ccrouter.auth.keys.KeyRecord``; ``user`` is the column
    # user_name, ``models`` JSON text, NULL: any), the audit trail, and the team a request and a
    # reservation were made for (budgets and reports per team).
    if dialect == "postgres":
        real, ident = "DOUBLE PRECISION", "id BIGSERIAL PRIMARY KEY"
    else:
        real, ident = "REAL", "id INTEGER PRIMARY KEY AUTOINCREMENT"
    return [
        f"""CREATE TABLE client_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL,
            prefix TEXT NOT NULL,
            created_at {real} NOT NULL,
            role TEXT NOT NULL,
            user_name TEXT,
            team TEXT,
            models TEXT,
            rpm BIGINT,
            tpm BIGINT,
            budget_usd {real},
            budget_period TEXT,
            created_by TEXT,
            expires_at {real},
            revoked_at {real},
            previous_hash TEXT,
            previous_until {real},
            last_used_at {real},
            rev BIGINT NOT NULL
        )""",
        "CREATE UNIQUE INDEX client_keys_hash ON client_keys (hash)",
        "CREATE INDEX client_keys_previous_hash ON client_keys (previous_hash)",
        # key_changes reads the rows after a rev, and each write reads the highest.
        "CREATE INDEX client_keys_rev ON client_keys (rev)",
        f"""CREATE TABLE audit_log (
            {ident},
            ts {real} NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            target TEXT,
            address TEXT,
            detail TEXT
        )""",
        "CREATE INDEX audit_log_ts ON audit_log (ts)",
        "CREATE INDEX audit_log_action_ts ON audit_log (action, ts)",
        "ALTER TABLE usage ADD COLUMN team TEXT",
        "CREATE INDEX usage_team_ts ON usage (team, ts)",
        "ALTER TABLE budget_reservations ADD COLUMN team TEXT",
    ]


@migration
def m006_request_log(dialect: Dialect) -> list[str]:
    # The dashboard (issue 15): each row's route explanation for the request log, and indexes for its
    # filters (each with the time, as the log pages newest first) on a ledger of millions of rows.
    return [
        "ALTER TABLE usage ADD COLUMN route_reason TEXT",
        "CREATE INDEX usage_provider_ts ON usage (provider, ts)",
        "CREATE INDEX usage_model_ts ON usage (model, ts)",
        "CREATE INDEX usage_scenario_ts ON usage (scenario, ts)",
        "CREATE INDEX usage_status_ts ON usage (status, ts)",
        "CREATE INDEX usage_session_ts ON usage (session_id, ts)",
    ]


@migration
def m007_rollups(dialect: Dialect) -> list[str]:
    # Speed (issue 15): hourly and daily sums for the dashboard's reports and the budgets' windows
    # (``rollups``), filled from the rows already written; and the request log's last filter index.
    return [
        *rollups.create_tables(dialect),
        *rollups.backfill(dialect),
        "CREATE INDEX usage_endpoint_ts ON usage (endpoint, ts)",
    ]
