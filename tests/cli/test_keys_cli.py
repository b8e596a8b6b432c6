"""``ccrouter keys`` and ``ccrouter audit`` both ways: on the configured store directly (as
``cli:<os user>``), and through a served gateway's admin API with ``CCROUTER_ADMIN_KEY``."""

from __future__ import annotations

import asyncio
import getpass
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis
from aiohttp.test_utils import TestServer
from redis.driver_info import DriverInfo
from typer.testing import CliRunner

from ccrouter.app import create_app
from ccrouter.auth.directory import channel
from ccrouter.auth.keys import looks_like_key
from ccrouter.cli.main import app
from ccrouter.config_file import load_settings

ADMIN = "admin-token-for-the-keys-cli"
runner = CliRunner()


PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def write_config(tmp_path: Path, store: dict[str, Any] | None = None, **server: Any) -> Path:
    path = tmp_path / "config.yaml"
    body = {
        "server": {"admin_token": ADMIN, **server},
        "providers": [{"name": "up", "type": "anthropic", "models": ["claude-sonnet-4-6"]}],
        "router": {"default": "up,claude-sonnet-4-6"},
        "store": store or {"url": f"sqlite:///{tmp_path / 'usage.db'}", "flush_interval_s": 0.05},
    }
    path.write_bytes(orjson.dumps(body))  # JSON is YAML
    return path


def cli(config: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, [*args, "--config", str(config)], env={"CCROUTER_ADMIN_KEY": "", **(env or {})})


def ok_json(result: Any) -> Any:
    assert result.exit_code == 0, (result.output, result.stderr)
    return orjson.loads(result.stdout)


def one_error_line(result: Any, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert text in lines[0], result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A config whose store is a SQLite file, or a fresh schema on the local PostgreSQL."""
    if request.param == "sqlite":
        yield write_config(tmp_path)
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield write_config(tmp_path, {"url": PG_URL, "schema_name": schema, "flush_interval_s": 0.05})
    finally:
        asyncio.run(_drop_schema(schema))


def test_keys_on_the_store_directly(any_store_config: Path) -> None:
    config = any_store_config
    actor = f"cli:{getpass.getuser()}"
    created = ok_json(
        cli(
            config,
            "keys",
            "create",
            "--name",
            "ana",
            "--user",
            "ana",
            "--models",
            "up,*",
            "--rpm",
            "10",
            "--json",
        )
    )
    key_id, secret = created["id"], created["key"]
    assert looks_like_key(secret)
    assert created["created_by"] == actor
    assert created["models"] == ["up,*"]

    listed = ok_json(cli(config, "keys", "list", "--json"))
    assert [view["id"] for view in listed] == [key_id]
    assert "key" not in listed[0]
    table = cli(config, "keys", "list")
    assert table.exit_code == 0
    assert key_id in table.stdout
    assert "10 rpm" in table.stdout
    assert secret not in table.stdout
    assert "never" in table.stdout
    shown = cli(config, "keys", "show", key_id)
    assert shown.exit_code == 0
    assert "user:           ana" in shown.stdout
    assert secret not in shown.stdout

    updated = ok_json(
        cli(
            config,
            "keys",
            "update",
            key_id,
            "--budget-usd",
            "3",
            "--period",
            "daily",
            "--clear",
            "rpm",
            "--json",
        )
    )
    assert (updated["budget_usd"], updated["budget_period"], updated["rpm"]) == (3.0, "daily", None)

    rotated = cli(config, "keys", "rotate", key_id, "--grace", "1h")
    assert rotated.exit_code == 0, rotated.output
    new_secret = rotated.stdout.splitlines()[2]
    assert looks_like_key(new_secret)
    assert new_secret != secret
    assert "the old secret works until" in rotated.stdout

    revoked = cli(config, "keys", "revoke", key_id)
    assert revoked.exit_code == 0
    assert f"revoked key {key_id} (ana)" in revoked.stdout
    assert ok_json(cli(config, "keys", "show", key_id, "--json"))["status"] == "revoked"

    trail = ok_json(cli(config, "audit", "--json"))
    assert [(e["action"], e["actor"], e["target"]) for e in trail] == [
        ("key.revoked", actor, key_id),
        ("key.rotated", actor, key_id),
        ("key.updated", actor, key_id),
        ("budget.changed", actor, key_id),
        ("key.created", actor, key_id),
    ]
    assert [e["action"] for e in ok_json(cli(config, "audit", "--action", "key.created", "--json"))] == [
        "key.created"
    ]
    assert len(ok_json(cli(config, "audit", "--since", "1h", "--limit", "2", "--json"))) == 2
    shown_trail = cli(config, "audit")
    assert shown_trail.exit_code == 0
    assert "key.revoked" in shown_trail.stdout
    assert secret not in shown_trail.stdout
    assert new_secret not in shown_trail.stdout


def test_the_secret_is_printed_once_and_the_auth_note(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    plain = cli(config, "keys", "create", "--name", "bob")
    assert plain.exit_code == 0, plain.output
    lines = plain.stdout.splitlines()
    assert lines[0].startswith("created key key_")
    assert "(bob), role client" in lines[0]
    assert looks_like_key(lines[2])
    assert "requests without a key are accepted too; set server.require_auth: true" in plain.stderr
    required = write_config(tmp_path, require_auth=True)
    quiet = cli(required, "keys", "create", "--name", "carol", "--json")
    assert quiet.exit_code == 0
    assert quiet.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("keys", "revoke", "key_0000000000000000"), "no key 'key_0000000000000000'"),
        (("keys", "create", "--name", "x", "--expires", "soon"), "expires: expected a duration"),
        (("keys", "create", "--name", "x", "--budget-usd", "5"), "budget_period: required with budget_usd"),
        (("keys", "create", "--name", "bad name"), "name: String should match pattern"),
        (("keys", "create", "--name", "x", "--role", "root"), "role: Input should be"),
        (("keys", "update", "key_x"), "nothing to change"),
        (("keys", "update", "key_x", "--clear", "colour"), "--clear: unknown setting 'colour'"),
        (("keys", "rotate", "key_x", "--grace", "soon"), "--grace: expected a duration"),
        (("keys", "list", "--url", "http://127.0.0.1:9"), "--url needs the admin key in $CCROUTER_ADMIN_KEY"),
        (("audit", "--since", "yesterday"), "--since: expected unix seconds or an ISO date"),
    ],
)
def test_errors_are_one_line_and_exit_1(config: Path, args: tuple[str, ...], message: str) -> None:
    one_error_line(cli(config, *args), message)


class ServedGateway:
    """The real app for ``config`` served from a thread (the CLI runs its own event loop)."""

    def __init__(self, config: Path) -> None:
        self._settings = load_settings(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="keys-cli-gateway", daemon=True)
        self._server: TestServer | None = None
        self.url = ""

    async def _start(self) -> str:
        self._server = TestServer(create_app(self._settings, simulated=True), host="127.0.0.1", port=0)
        await self._server.start_server()
        return str(self._server.make_url("")).rstrip("/")

    async def _stop(self) -> None:
        if self._server is not None:
            await self._server.close()

    def __enter__(self) -> ServedGateway:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


@pytest.fixture
def served(config: Path) -> Iterator[ServedGateway]:
    with ServedGateway(config) as gateway:
        yield gateway


def test_keys_through_a_served_gateway(config: Path, served: ServedGateway) -> None:
    env = {"CCROUTER_ADMIN_KEY": ADMIN, "CCROUTER_URL": served.url}
    created = ok_json(cli(config, "keys", "create", "--name", "api-made", "--tpm", "1000", "--json", env=env))
    key_id = created["id"]
    assert looks_like_key(created["key"])
    assert created["created_by"] == "admin"
    assert [view["id"] for view in ok_json(cli(config, "keys", "list", "--json", env=env))] == [key_id]
    assert (
        ok_json(cli(config, "keys", "update", key_id, "--role", "viewer", "--json", env=env))["role"]
        == "viewer"
    )
    rotated = ok_json(cli(config, "keys", "rotate", key_id, "--grace", "0", "--json", env=env))
    assert rotated["key"] != created["key"]
    assert rotated["rotated_until"] is None
    assert ok_json(cli(config, "keys", "revoke", key_id, "--json", env=env))["status"] == "revoked"
    trail = ok_json(cli(config, "audit", "--json", env=env))
    assert [(e["action"], e["actor"], e["address"]) for e in trail] == [
        ("key.revoked", "admin", "127.0.0.1"),
        ("key.rotated", "admin", "127.0.0.1"),
        ("role.changed", "admin", "127.0.0.1"),
        ("key.created", "admin", "127.0.0.1"),
    ]
    # The API and the store show the same key: the CLI without the admin key reads the same ledger.
    direct = ok_json(cli(config, "keys", "show", key_id, "--json"))
    assert direct == ok_json(cli(config, "keys", "show", key_id, "--json", env=env))
    # --url wins over $CCROUTER_URL; the gateway's refusals and an unreachable one are one line.
    listed = cli(
        config, "keys", "list", "--json", "--url", served.url, env={**env, "CCROUTER_URL": "http://x"}
    )
    assert listed.exit_code == 0, listed.output
    one_error_line(
        cli(config, "keys", "show", "key_missing", env=env), "the gateway refused (404): no key 'key_missing'"
    )
    one_error_line(
        cli(config, "keys", "list", env={**env, "CCROUTER_ADMIN_KEY": "wrong"}),
        "the gateway refused (401): admin endpoint: invalid API key",
    )
    one_error_line(
        cli(config, "keys", "create", "--name", "x", "--rpm", "0", env=env),
        "the gateway refused (400): rpm: Input should be greater than 0",
    )
    # The trail shows the failed admin login too (the wrong key above, never the key itself).
    failed = ok_json(cli(config, "audit", "--action", "auth.*", "--json", env=env))
    assert [(e["action"], e["outcome"], e["address"]) for e in failed] == [
        ("auth.failed", "denied", "127.0.0.1")
    ]
    assert "wrong" not in repr(failed)
    table = cli(config, "audit", env=env)
    assert table.exit_code == 0
    assert "auth.failed" in table.stdout
    assert "key.created" in table.stdout


def test_the_gateway_url_comes_from_the_config_without_one_given(tmp_path: Path) -> None:
    first = write_config(tmp_path)
    with ServedGateway(first) as served:
        port = served.url.rsplit(":", 1)[1]
        config = write_config(tmp_path, port=int(port))
        created = ok_json(
            cli(config, "keys", "create", "--name", "by-port", "--json", env={"CCROUTER_ADMIN_KEY": ADMIN})
        )
        assert created["created_by"] == "admin"  # made through the API, not as cli:<user>


def test_an_unreachable_gateway_is_one_line(config: Path) -> None:
    env = {"CCROUTER_ADMIN_KEY": ADMIN, "CCROUTER_URL": "http://127.0.0.1:9"}
    one_error_line(cli(config, "keys", "list", env=env), "cannot reach the gateway at http://127.0.0.1:9")


def test_a_change_on_the_store_is_announced_to_the_gateways(tmp_path: Path) -> None:
    """With state.redis_url the CLI publishes on the key directory's channel after each write, so
    running gateways refresh at once; Redis unreachable, the change still lands (they poll)."""
    prefix = f"ccrouter-test-{uuid.uuid4().hex[:12]}"
    config = write_config(tmp_path)
    data = orjson.loads(config.read_bytes())
    config.write_bytes(orjson.dumps({**data, "state": {"redis_url": REDIS_URL, "key_prefix": prefix}}))
    client = redis.Redis.from_url(REDIS_URL, driver_info=DriverInfo(lib_version=redis.__version__))
    listener = client.pubsub()
    try:
        listener.subscribe(channel(prefix))
        assert listener.get_message(timeout=5)["type"] == "subscribe"
        created = ok_json(cli(config, "keys", "create", "--name", "announced", "--json"))
        message = listener.get_message(timeout=5)
        assert message is not None
        assert (message["type"], message["channel"].decode()) == ("message", channel(prefix))
        ok_json(cli(config, "keys", "revoke", created["id"], "--json"))
        assert listener.get_message(timeout=5) is not None
        # Reads announce nothing.
        ok_json(cli(config, "keys", "list", "--json"))
        assert listener.get_message(timeout=0.5) is None
    finally:
        listener.close()
        client.close()
    config.write_bytes(orjson.dumps({**data, "state": {"redis_url": "redis://127.0.0.1:9/0"}}))
    assert ok_json(cli(config, "keys", "create", "--name", "unheard", "--json"))["name"] == "unheard"
