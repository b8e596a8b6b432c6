"""The config file's editor through the real app over real HTTP: ``GET /api/config/source`` (every
secret masked), ``POST /api/config/validate`` (problems at key paths), ``PUT /api/config/source``
(If-Match, the markers put back, the live reload, the rollback when it refuses, the audit row), and
who may call them."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp.test_utils import TestServer

from ccrouter.app import create_app
from ccrouter.config import Settings
from ccrouter.config_file import load_settings
from ccrouter.errors import ConfigError
from ccrouter.testing import FakeUpstream

ADMIN = "admin-token-for-editor-tests"
KEYS = {role: f"{role}-key-0123456789abcdef" for role in ("client", "viewer", "operator", "admin")}
MODEL = "claude-sonnet-4-6"
SECRETS = (
    ADMIN,
    *KEYS.values(),
    "sk-alpha-upstream-secret-0001",
    "sk-alpha-pool-secret-0002",
    "org-header-secret-0003",
    "sk-beta-upstream-secret-0004",
    "ui-session-secret-0123456789abcdef",
)
Call = Callable[..., Awaitable[tuple[int, Any]]]


def _text(tmp_path: Path, fakes: tuple[FakeUpstream, FakeUpstream]) -> str:
    a, b = fakes
    keys = "\n".join(f"    - {{name: {role}-key, key: {key}, role: {role}}}" for role, key in KEYS.items())
    return f"""# The editor's test gateway. A comment naming a key: sk-beta-upstream-secret-0004
server:
  admin_token: "{ADMIN}"   # quoted on purpose
  api_keys:
{keys}
  ui:
    session_secret: ui-session-secret-0123456789abcdef
providers:
  - name: a
    type: anthropic
    base_url: {a.url}
    api_key: sk-alpha-upstream-secret-0001
    api_keys: [sk-alpha-pool-secret-0002]
    headers:
      x-org: org-header-secret-0003
      x-team: "${{EDITOR_TEAM_HEADER}}"
    models: [{MODEL}]
  - name: b
    type: anthropic
    base_url: {b.url}
    api_key: |-
      sk-beta-upstream-secret-0004
    models: [{MODEL}]
router:
  default: a,{MODEL}
store:
  url: sqlite:///{tmp_path / "usage.db"}
alerts:
  enabled: false
"""


async def _read(path: Path) -> bytes:
    return await asyncio.to_thread(path.read_bytes)


async def _write(path: Path, data: bytes) -> None:
    await asyncio.to_thread(path.write_bytes, data)


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    async with FakeUpstream() as a, FakeUpstream() as b:
        yield a, b


@pytest.fixture
async def served(
    tmp_path: Path, fakes: tuple[FakeUpstream, FakeUpstream], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Path]]:
    """The real app started from the config file (not watching it: only the API reloads here)."""
    monkeypatch.setenv("EDITOR_TEAM_HEADER", "team-header-from-env")
    path = tmp_path / "config.yaml"
    await _write(path, _text(tmp_path, fakes).encode())
    await asyncio.to_thread(path.chmod, 0o640)
    server = TestServer(
        create_app(load_settings(path), config_path=path, watch=False), host="127.0.0.1", port=0
    )
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), path
    await server.close()


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    async with aiohttp.ClientSession() as session:

        async def send(
            url: str,
            method: str,
            path: str,
            body: Any = None,
            *,
            token: str | None = ADMIN,
            headers: dict[str, str] | None = None,
            raw: bytes | None = None,
        ) -> tuple[int, Any]:
            sent = dict(headers or {})
            if token is not None:
                sent["authorization"] = f"Bearer {token}"
            data = raw if raw is not None else (None if body is None else orjson.dumps(body))
            if data is not None:
                sent.setdefault("content-type", "application/json")
            payload = None if data is None else io.BytesIO(data)
            async with session.request(method, url + path, data=payload, headers=sent) as response:
                text = await response.read()
                for secret in SECRETS:  # never a secret in any answer
                    assert secret.encode() not in text, (path, secret)
                return response.status, orjson.loads(text) if text else None

        yield send


async def _source(call: Call, url: str) -> tuple[str, str]:
    status, body = await call(url, "GET", "/api/config/source")
    assert status == 200, body
    return body["source"], body["version"]


async def test_the_source_is_masked_and_an_edit_keeps_every_secret(
    served: tuple[str, Path], call: Call, fakes: tuple[FakeUpstream, FakeUpstream]
) -> None:
    url, path = served
    original = await _read(path)
    status, body = await call(url, "GET", "/api/config/source")
    assert status == 200
    assert body["path"] == str(path)
    source = body["source"]
    # Each literal secret is a marker (the comment's copy too); a reference stays as written, and
    # so do the comments and the quoting around them.
    assert body["masked"] == 12
    assert 'x-team: "${EDITOR_TEAM_HEADER}"' in source
    assert "admin_token: __ccrouter_secret_2__   # quoted on purpose" in source
    assert "# The editor's test gateway. A comment naming a key: __ccrouter_secret_1__\n" in source
    assert "api_key: __ccrouter_secret_" in source
    # The text sent back unchanged changes nothing: the file keeps its bytes.
    status, applied = await call(
        url, "PUT", "/api/config/source", {"source": source}, headers={"if-match": body["version"]}
    )
    assert status == 200, applied
    assert await _read(path) == original
    assert applied["version"] == body["version"]
    assert applied["reload"]["status"] == "unchanged"
    # An edit of the masked text moves the default route; every secret survives it.
    edited = source.replace(f"default: a,{MODEL}", f"default: b,{MODEL}")
    status, applied = await call(
        url, "PUT", "/api/config/source", {"source": edited}, headers={"if-match": f'"{body["version"]}"'}
    )
    assert status == 200, applied
    assert applied["ok"] is True
    assert applied["previous_version"] == body["version"]
    assert applied["version"] != body["version"]
    assert applied["reload"]["status"] == "reloaded"
    assert await _read(path) == original.replace(
        f"default: a,{MODEL}".encode(), f"default: b,{MODEL}".encode()
    )
    assert (await asyncio.to_thread(path.stat)).st_mode & 0o777 == 0o640
    assert not [p for p in await asyncio.to_thread(list, path.parent.iterdir()) if p.name.endswith(".tmp")]
    loaded = load_settings(path)
    assert loaded.providers[0].api_key is not None
    assert loaded.providers[0].api_key.get_secret_value() == "sk-alpha-upstream-secret-0001"
    assert loaded.providers[0].headers["x-org"] == "org-header-secret-0003"
    # The gateway serves the new configuration: the default route goes to b.
    status, shown = await call(url, "GET", "/api/config")
    assert shown["version"] == applied["reload"]["version"]
    assert shown["settings"]["router"]["default"] == f"b,{MODEL}"
    assert (await _source(call, url))[1] == applied["version"]
    _, b = fakes
    before = len(b.requests)
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    status, answer = await call(url, "POST", "/v1/messages", body, token=KEYS["client"])
    assert status == 200, answer
    assert len(b.requests) == before + 1
    # The audit trail has the apply with both versions, and no text of the file.
    status, trail = await call(url, "GET", "/api/audit?action=config.applied")
    rows = trail["entries"]
    assert [row["outcome"] for row in rows] == ["ok", "ok"]
    newest = rows[0]
    assert newest["actor"] == "admin"
    assert newest["detail"]["previous_version"] == body_version(original)
    assert newest["detail"]["version"] == applied["version"]
    assert "source" not in newest["detail"]
    assert "router" not in orjson.dumps(newest).decode()


def body_version(data: bytes) -> str:
    from ccrouter.api.config_edit import source_version

    return source_version(data)


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        (
            "admin_token:",
            "port: 99999\n  admin_token:",
            "server.port",
            "less than or equal to 65535 (got 99999)",
        ),
        (f"default: a,{MODEL}", f"default: nope,{MODEL}", "router.default", "unknown provider 'nope'"),
        (f"default: a,{MODEL}", "default: a,gpt-x", "router.default", "provider 'a' has no model 'gpt-x'"),
        ("admin_token:", "prot: 1\n  admin_token:", "server.prot", "did you mean 'port'?"),
        ("type: anthropic\n    base_url", "type: telegraph\n    base_url", "providers[0].type", "telegraph"),
        (
            "__ccrouter_secret_2__",
            "__ccrouter_secret_77__",
            "server.admin_token",
            "not a secret of the current file",
        ),
        ("name: b", "name: __ccrouter_secret_3__", "providers[1].name", "is a masked secret"),
        (
            '"${EDITOR_TEAM_HEADER}"',
            '"${EDITOR_UNSET_VARIABLE}"',
            "providers[0].headers.x-team",
            "is not set",
        ),
        ("alerts:", "plugins: [no_such_plugin_module_x]\nalerts:", "plugins", "no_such_plugin_module_x"),
        ("server:\n", "server:\n  - [\n", "(top level)", "YAML syntax error at line 5"),
    ],
)
async def test_validate_names_each_problem_at_its_key_path(
    served: tuple[str, Path], call: Call, old: str, new: str, path: str, message: str
) -> None:
    url, _ = served
    source, _ = await _source(call, url)
    assert old in source
    status, body = await call(url, "POST", "/api/config/validate", {"source": source.replace(old, new, 1)})
    assert status == 200, body
    assert body["ok"] is False
    assert [error["path"] for error in body["errors"]] == [path], body
    assert message in body["errors"][0]["message"]


async def test_validate_accepts_a_good_edit_and_names_what_needs_a_restart(
    served: tuple[str, Path], call: Call
) -> None:
    url, path = served
    before = await _read(path)
    source, _ = await _source(call, url)
    status, body = await call(url, "POST", "/api/config/validate", {"source": source})
    assert (status, body) == (200, {"ok": True, "restart_required": []})
    edited = source.replace("admin_token:", "port: 4567\n  admin_token:")
    status, body = await call(url, "POST", "/api/config/validate", {"source": edited})
    assert (status, body) == (200, {"ok": True, "restart_required": ["server.port"]})
    assert await _read(path) == before  # validating writes nothing


async def test_apply_needs_the_version_and_refuses_a_stale_or_invalid_edit(
    served: tuple[str, Path], call: Call
) -> None:
    url, path = served
    original = await _read(path)
    source, version = await _source(call, url)
    status, body = await call(url, "PUT", "/api/config/source", {"source": source})
    assert status == 428
    assert "If-Match" in body["error"]["message"]
    # Someone else changed the file: the edit made on the old text is refused.
    await _write(path, original + b"# edited on disk\n")
    status, body = await call(
        url, "PUT", "/api/config/source", {"source": source}, headers={"if-match": version}
    )
    assert status == 409
    assert "reload the page" in body["error"]["message"]
    assert body["version"] != version
    # So is a validation of it that names its version (without one, it is checked as it is).
    status, body = await call(
        url, "POST", "/api/config/validate", {"source": source}, headers={"if-match": version}
    )
    assert status == 409
    assert (await call(url, "POST", "/api/config/validate", {"source": source}))[1]["ok"] is True
    assert await _read(path) == original + b"# edited on disk\n"
    source, version = await _source(call, url)
    # An invalid edit: 422 with the problems, nothing written, the gateway on the same version.
    status, shown = await call(url, "GET", "/api/config")
    running = shown["version"]
    bad = source.replace("admin_token:", "port: 99999\n  admin_token:")
    status, body = await call(
        url, "PUT", "/api/config/source", {"source": bad}, headers={"if-match": version}
    )
    assert status == 422
    assert body["ok"] is False
    assert body["errors"][0]["path"] == "server.port"
    assert await _read(path) == original + b"# edited on disk\n"
    assert (await call(url, "GET", "/api/config"))[1]["version"] == running
    # Bodies: too large (413), not JSON or without a source (400).
    huge = {"source": "#" * (1024 * 1024 + 1)}
    for method, route in (("POST", "/api/config/validate"), ("PUT", "/api/config/source")):
        status, body = await call(url, method, route, huge, headers={"if-match": version})
        assert status == 413, body
        status, body = await call(url, method, route, raw=b"not json", headers={"if-match": version})
        assert status == 400, body
        status, body = await call(url, method, route, {"text": "x"}, headers={"if-match": version})
        assert status == 400, body
    status, trail = await call(url, "GET", "/api/audit?action=config.applied")
    assert [(row["outcome"], row["detail"]["stage"]) for row in trail["entries"]] == [
        ("failed", "validation")
    ]


async def test_a_refused_reload_puts_the_old_file_back(
    served: tuple[str, Path], call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, path = served
    original = await _read(path)
    source, version = await _source(call, url)
    running = (await call(url, "GET", "/api/config"))[1]["version"]

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConfigError(
            "providers[1].base_url: the provider cannot be opened (sk-beta-upstream-secret-0004)"
        )

    # What the checks before the write cannot know (a provider that fails to open, say).
    monkeypatch.setattr("ccrouter.reload.build_services", refuse)
    edited = source.replace(f"default: a,{MODEL}", f"default: b,{MODEL}")
    status, body = await call(
        url, "PUT", "/api/config/source", {"source": edited}, headers={"if-match": version}
    )
    assert status == 422, body
    assert body["errors"] == [
        {"path": "providers[1].base_url", "message": "the provider cannot be opened ([redacted])"}
    ]
    assert body["reload"]["status"] == "refused"
    assert await _read(path) == original
    assert (await call(url, "GET", "/api/config"))[1]["version"] == running
    assert (await _source(call, url))[1] == version
    status, trail = await call(url, "GET", "/api/audit?action=config.applied")
    (row,) = trail["entries"]
    assert (row["outcome"], row["detail"]["stage"], row["detail"]["previous_version"]) == (
        "failed",
        "reload",
        version,
    )


async def test_only_an_admin_may_read_validate_or_apply_the_source(
    served: tuple[str, Path], call: Call
) -> None:
    url, _ = served
    source, version = await _source(call, url)
    routes = (
        ("GET", "/api/config/source", None),
        ("POST", "/api/config/validate", {"source": source}),
        ("PUT", "/api/config/source", {"source": source}),
    )
    for role in ("client", "viewer", "operator"):
        for method, route, body in routes:
            status, answer = await call(
                url, method, route, body, token=KEYS[role], headers={"if-match": version}
            )
            assert status == 403, (role, route, answer)
            assert "needs role admin" in answer["error"]["message"]
    assert (await call(url, "GET", "/api/config", token=KEYS["viewer"]))[0] == 200
    for method, route, body in routes:
        status, answer = await call(
            url, method, route, body, token=KEYS["admin"], headers={"if-match": version}
        )
        assert status == 200, (route, answer)
        assert (await call(url, method, route, body, token=None))[0] == 401


async def test_without_a_config_file_there_is_nothing_to_edit(
    call: Call, fakes: tuple[FakeUpstream, FakeUpstream], tmp_path: Path
) -> None:
    data = yaml.safe_load(_text(tmp_path, fakes).replace("${EDITOR_TEAM_HEADER}", "x"))
    app = create_app(Settings.model_validate(data))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        for method, route in (
            ("GET", "/api/config/source"),
            ("POST", "/api/config/validate"),
            ("PUT", "/api/config/source"),
        ):
            status, body = await call(url, method, route, {"source": "x"}, headers={"if-match": "v"})
            assert status == 409, body
            assert "not started from a config file" in body["error"]["message"]
    finally:
        await server.close()
