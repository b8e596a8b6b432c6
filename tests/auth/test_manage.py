"""KeyManager on a real store (SQLite and PostgreSQL): role rules, audit rows, rotation's grace
period, input validation, the key's view and its spend this period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ccrouter.auth.audit import Auditor
from ccrouter.auth.keys import AuditRecord, hash_secret, looks_like_key
from ccrouter.auth.manage import Actor, KeyChanges, KeyManager, KeySpec, key_view, parse_input
from ccrouter.auth.roles import Principal, Role
from ccrouter.config import KeysConfig
from ccrouter.errors import NotFoundError, PermissionDeniedError, RequestError
from ccrouter.store import UsageRecord
from ccrouter.store.base import Store

# Wednesday 2026-12-02 12:00 UTC.
NOON = datetime(2026, 12, 2, 12, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def actor(role: Role, ident: str | None = None) -> Actor:
    return Actor(Principal(kind="key", id=ident or f"key_{role}", role=role), "10.0.0.7")


ADMIN = actor("admin", "admin")
OPERATOR = actor("operator")
VIEWER = actor("viewer")


class Harness:
    def __init__(self, store: Store, clock: Clock, grace: float = 3600.0) -> None:
        self.store = store
        self.clock = clock
        self.changes = 0
        self.manager = KeyManager(
            store,
            Auditor(store, clock=clock),
            KeysConfig(rotation_grace_s=grace),
            on_change=self._changed,
            clock=clock,
        )

    async def _changed(self) -> None:
        self.changes += 1

    async def audit(self) -> list[AuditRecord]:
        return list(reversed(await self.store.audit_list(limit=1000)))

    async def create(self, who: Actor = ADMIN, **fields: Any) -> tuple[str, str]:
        record, secret = await self.manager.create(KeySpec(**{"name": "laptop", **fields}), who)
        return record.id, secret


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def keys(store: Store, clock: Clock) -> Harness:
    return Harness(store, clock)


def never_secret(rows: list[AuditRecord], *secrets: str) -> None:
    text = repr(rows)
    for secret in secrets:
        assert secret not in text
        assert hash_secret(secret) not in text


async def test_admin_creates_a_key_stored_as_a_hash_and_audited(keys: Harness) -> None:
    record, secret = await keys.manager.create(
        KeySpec(name="ci-bot", user="ana", team="web", models=["up,*"], rpm=60, expires="30d"), ADMIN
    )
    assert looks_like_key(secret)
    stored = await keys.manager.get(record.id)
    assert stored.hash == hash_secret(secret)
    assert secret[:8] == stored.prefix
    assert (stored.name, stored.user, stored.team, stored.models, stored.rpm) == (
        "ci-bot",
        "ana",
        "web",
        ("up,*",),
        60,
    )
    assert stored.created_by == "admin"
    assert stored.expires_at == NOON + 30 * 86_400
    (row,) = await keys.audit()
    assert (row.action, row.actor, row.outcome, row.target, row.address) == (
        "key.created",
        "admin",
        "ok",
        record.id,
        "10.0.0.7",
    )
    assert row.detail == {"name": "ci-bot", "role": "client", "user": "ana", "team": "web"}
    never_secret(await keys.audit(), secret)
    assert keys.changes == 1


async def test_a_viewer_cannot_write_and_the_refusal_is_audited(keys: Harness) -> None:
    key_id, _ = await keys.create()
    with pytest.raises(PermissionDeniedError, match="role viewer cannot change keys"):
        await keys.manager.create(KeySpec(name="mine"), VIEWER)
    with pytest.raises(PermissionDeniedError):
        await keys.manager.revoke(key_id, VIEWER)
    with pytest.raises(PermissionDeniedError):
        await keys.manager.rotate(key_id, actor("client"))
    denied = [row for row in await keys.audit() if row.outcome == "denied"]
    assert [(row.action, row.actor, row.target) for row in denied] == [
        ("key.created", "key_viewer", None),
        ("key.revoked", "key_viewer", key_id),
        ("key.rotated", "key_client", key_id),
    ]
    assert [key.name for key in await keys.manager.list()] == ["laptop"]
    assert (await keys.manager.get(key_id)).revoked_at is None
    assert keys.changes == 1  # the admin's create only


async def test_an_operator_manages_client_keys_only(keys: Harness) -> None:
    client_id, _ = await keys.create(OPERATOR, name="team-key")
    assert (await keys.manager.get(client_id)).created_by == "key_operator"
    with pytest.raises(PermissionDeniedError, match="cannot give a key role admin"):
        await keys.create(OPERATOR, name="escalate", role="admin")
    with pytest.raises(PermissionDeniedError, match="cannot give a key role viewer"):
        await keys.manager.update(client_id, KeyChanges(role="viewer"), OPERATOR)
    admin_id, _ = await keys.create(ADMIN, name="other-admin", role="admin")
    for attempt in (
        keys.manager.revoke(admin_id, OPERATOR),
        keys.manager.rotate(admin_id, OPERATOR),
        keys.manager.update(admin_id, KeyChanges(rpm=1), OPERATOR),
    ):
        with pytest.raises(PermissionDeniedError, match="client only"):
            await attempt
    # What it may do: limits, rotation and revocation of the client key.
    await keys.manager.update(client_id, KeyChanges(rpm=10), OPERATOR)
    await keys.manager.rotate(client_id, OPERATOR)
    await keys.manager.revoke(client_id, OPERATOR)
    admin_key = await keys.manager.get(admin_id)
    assert admin_key.revoked_at is None
    assert admin_key.rpm is None
    outcomes = [(row.action, row.outcome) for row in await keys.audit()]
    assert outcomes.count(("key.created", "denied")) == 1
    assert ("role.changed", "denied") not in outcomes  # refused before anything changed
    assert outcomes.count(("key.updated", "denied")) == 2  # the promotion and the admin key's rpm
    assert ("key.rotated", "ok") in outcomes
    assert ("key.revoked", "ok") in outcomes


async def test_an_admin_may_make_and_manage_admin_keys(keys: Harness) -> None:
    key_id, _ = await keys.create(name="root", role="admin")
    await keys.manager.update(key_id, KeyChanges(role="operator"), ADMIN)
    assert (await keys.manager.get(key_id)).role == "operator"
    rows = await keys.audit()
    assert (rows[-1].action, rows[-1].detail) == ("role.changed", {"from": "admin", "to": "operator"})


async def test_rotation_keeps_the_old_secret_for_the_grace_period(keys: Harness, clock: Clock) -> None:
    key_id, old = await keys.create()
    record, new = await keys.manager.rotate(key_id, ADMIN, grace_s=600)
    assert new != old
    assert looks_like_key(new)
    assert record.hash == hash_secret(new)
    assert record.prefix == new[:8]
    assert record.previous_hash == hash_secret(old)
    assert record.previous_until == NOON + 600
    assert record.status(NOON + 599, previous=True) == "active"
    assert record.status(NOON + 600, previous=True) == "rotated"
    assert record.status(NOON + 600) == "active"
    row = (await keys.audit())[-1]
    assert (row.action, row.detail) == ("key.rotated", {"name": "laptop", "grace_s": 600})
    never_secret(await keys.audit(), old, new)
    # Rotated again: only the latest previous secret is kept; the default grace is the config's.
    clock.now += 60
    again, newest = await keys.manager.rotate(key_id, ADMIN)
    assert again.previous_hash == hash_secret(new)
    assert again.previous_until == NOON + 60 + 3600
    assert again.hash == hash_secret(newest)
    assert keys.changes == 3


async def test_rotation_without_grace_and_bounds(keys: Harness) -> None:
    key_id, _ = await keys.create()
    record, _ = await keys.manager.rotate(key_id, ADMIN, grace_s=0)
    assert record.previous_hash is None
    assert record.previous_until is None
    for bad in (-1.0, 31 * 86_400.0):
        with pytest.raises(RequestError, match="grace_s"):
            await keys.manager.rotate(key_id, ADMIN, grace_s=bad)


async def test_revoked_is_final(keys: Harness, clock: Clock) -> None:
    key_id, _ = await keys.create()
    clock.now += 5
    record = await keys.manager.revoke(key_id, ADMIN)
    assert record.revoked_at == NOON + 5
    assert record.status(clock.now) == "revoked"
    for attempt in (
        keys.manager.revoke(key_id, ADMIN),
        keys.manager.rotate(key_id, ADMIN),
        keys.manager.update(key_id, KeyChanges(rpm=5), ADMIN),
    ):
        with pytest.raises(RequestError, match="revoked") as caught:
            await attempt
        assert caught.value.status == 409
    assert [row.action for row in await keys.audit()] == ["key.created", "key.revoked"]


async def test_unknown_ids_are_not_found(keys: Harness) -> None:
    for attempt in (
        keys.manager.get("key_0000000000000000"),
        keys.manager.revoke("key_missing", ADMIN),
        keys.manager.update("x" * 5000, KeyChanges(rpm=1), ADMIN),
    ):
        with pytest.raises(NotFoundError):
            await attempt
    assert await keys.audit() == []


async def test_updates_are_audited_by_kind(keys: Harness) -> None:
    key_id, secret = await keys.create(rpm=10)
    record = await keys.manager.update(
        key_id,
        parse_input(
            KeyChanges,
            {"role": "viewer", "budget_usd": 5, "budget_period": "daily", "rpm": None, "team": "ops"},
        ),
        ADMIN,
    )
    assert (record.role, record.budget_usd, record.budget_period, record.rpm, record.team) == (
        "viewer",
        5.0,
        "daily",
        None,
        "ops",
    )
    rows = (await keys.audit())[1:]
    assert [(row.action, row.detail) for row in rows] == [
        ("role.changed", {"from": "client", "to": "viewer"}),
        (
            "budget.changed",
            {
                "from": {"budget_usd": None, "budget_period": None},
                "to": {"budget_usd": 5.0, "budget_period": "daily"},
            },
        ),
        ("key.updated", {"fields": ["team", "rpm"], "to": {"team": "ops", "rpm": None}}),
    ]
    # Clearing the budget clears its period; a change to nothing new writes nothing.
    cleared = await keys.manager.update(key_id, parse_input(KeyChanges, {"budget_usd": None}), ADMIN)
    assert (cleared.budget_usd, cleared.budget_period) == (None, None)
    before = len(await keys.audit())
    await keys.manager.update(key_id, KeyChanges(team="ops"), ADMIN)
    assert len(await keys.audit()) == before
    with pytest.raises(RequestError, match="budget_period: required"):
        await keys.manager.update(key_id, KeyChanges(budget_usd=3), ADMIN)
    expiring = await keys.manager.update(key_id, KeyChanges(expires="2027-01-01"), ADMIN)
    assert expiring.expires_at == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    never_secret(await keys.audit(), secret)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "ok", "colour": "red"}, "colour: unknown field"),
        ({"name": "has space"}, "name: String should match pattern"),
        ({"name": "x" * 65}, "name: String should have at most 64 characters"),
        ({"name": "ok", "role": "root"}, "role: Input should be"),
        ({"name": "ok", "rpm": 0}, "rpm: Input should be greater than 0"),
        ({"name": "ok", "tpm": -5}, "tpm: Input should be greater than 0"),
        (
            {"name": "ok", "budget_usd": 0, "budget_period": "daily"},
            "budget_usd: Input should be greater than 0",
        ),
        ({"name": "ok", "budget_usd": 5}, "budget_period: required with budget_usd"),
        ({"name": "ok", "budget_usd": 5, "budget_period": "yearly"}, "budget_period: Input should be"),
        ({"name": "ok", "models": ["up,a", "bad route"]}, "models.1: String should match pattern"),
        ({"name": "ok", "models": ["m"] * 101}, "models: List should have at most 100 items"),
        ({"name": "ok", "expires": "soon"}, "expires: expected a duration (30d, 12h, 90m) or an ISO date"),
        ({"name": "ok", "expires": "99999d"}, "expires: a duration from 1m to 3650d"),
        ({"name": "ok", "user": "a" * 129}, "user: String should have at most 128 characters"),
        ({}, "name: Field required"),
        ({"name": 5}, "name: Input should be a valid string"),
    ],
)
def test_key_specs_are_validated_naming_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_input(KeySpec, data)
    assert caught.value.message.startswith(message), caught.value.message


def test_changes_refuse_clearing_a_name_or_role_and_unknown_fields() -> None:
    for data, message in (
        ({"role": None}, "role: cannot be cleared"),
        ({"name": None}, "name: cannot be cleared"),
        ({"hash": "00"}, "hash: unknown field"),
        ({"id": "key_x"}, "id: unknown field"),
    ):
        with pytest.raises(RequestError) as caught:
            parse_input(KeyChanges, data)
        assert caught.value.message == message


async def test_expiry_forms(keys: Harness) -> None:
    cases = {
        "12h": NOON + 12 * 3600,
        "90m": NOON + 90 * 60,
        "2027-03-01": datetime(2027, 3, 1, tzinfo=UTC).timestamp(),
        "2026-12-03T08:00:00+01:00": datetime(2026, 12, 3, 7, tzinfo=UTC).timestamp(),
    }
    for text, expected in cases.items():
        record, _ = await keys.manager.create(KeySpec(name="e", expires=text), ADMIN)
        assert record.expires_at == expected, text
    for past in ("2026-12-01", "2040-01-01"):
        with pytest.raises(RequestError, match="expires"):
            await keys.manager.create(KeySpec(name="e", expires=past), ADMIN)


async def test_views_show_status_and_spend_this_period_never_the_secret(keys: Harness, clock: Clock) -> None:
    monthly_id, secret = await keys.create(name="monthly")
    daily_id, _ = await keys.create(name="daily", budget_usd=2, budget_period="daily")
    expired_id, _ = await keys.create(name="short", expires="1h")
    yesterday = NOON - 86_400
    for key, ts, picos in (
        (monthly_id, NOON - 10, 1_500_000_000_000),  # $1.50 today
        (monthly_id, yesterday, 250_000_000_000),  # $0.25 yesterday: this month, not today
        (daily_id, NOON - 10, 100_000_000_000),
        (daily_id, yesterday, 900_000_000_000),
        (monthly_id, datetime(2026, 11, 30, tzinfo=UTC).timestamp(), 10**12),  # last month
    ):
        keys.store.add(
            UsageRecord(
                ts=ts,
                request_id=f"r{ts}{key}",
                endpoint="messages",
                status=200,
                client_key_id=key,
                cost_picos=picos,
            )
        )
    await keys.store.flush()
    clock.now = NOON + 7200
    views = {view["name"]: view for view in await keys.manager.views(await keys.manager.list())}
    assert (views["monthly"]["spend_usd"], views["monthly"]["spend_period"]) == (1.75, "monthly")
    assert (views["daily"]["spend_usd"], views["daily"]["spend_period"]) == (0.1, "daily")
    assert views["short"]["spend_usd"] == 0
    assert [views[name]["status"] for name in ("monthly", "daily", "short")] == [
        "active",
        "active",
        "expired",
    ]
    assert views["short"]["id"] == expired_id
    assert views["monthly"]["created_at"] == "2026-12-02T12:00:00Z"
    assert views["monthly"]["last_used_at"] is None
    await keys.manager.revoke(monthly_id, ADMIN)
    one = await keys.manager.view(await keys.manager.get(monthly_id))
    assert one["status"] == "revoked"
    assert one["revoked_at"] == "2026-12-02T14:00:00Z"
    text = repr(views) + repr(one)
    assert secret not in text
    assert hash_secret(secret) not in text
    assert "hash" not in text


async def test_key_view_prefers_the_given_last_use(keys: Harness) -> None:
    key_id, _ = await keys.create()
    record = await keys.manager.get(key_id)
    view = key_view(record, 0.0, NOON + 30, now=NOON + 60)
    assert view["last_used_at"] == "2026-12-02T12:00:30Z"
    assert set(view) >= {"id", "name", "prefix", "role", "user", "team", "models", "rpm", "tpm"}
