"""Each kind of secret reference (``ccrouter.secret_refs``) and its errors: ``${env:...}``, an unknown
kind, ``${keyring:...}`` through a keyring backend of the test's own, ``${vault:...}`` against the
shipped fake Vault over real HTTP (token and AppRole), the fingerprints the refresh compares, and the
scan ``references()`` gives doctor. No error may contain a secret value or a credential."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked, PasswordDeleteError

from ccrouter.config_file import interpolate, references, secret_prints
from ccrouter.errors import ConfigError
from ccrouter.secret_refs import Resolution, fingerprint
from ccrouter.testing.vault import FakeVault

TOKEN = "hvs.root-token-for-tests"
ROLE_ID = "59d6d1ca-47bb-4e7e-a40b-8be3bc5a0ba8"
SECRET_ID = "84896a0c-1347-aa90-a4f6-aca8b7558780"
VALUE = "sk-the-secret-value-123"


def _error(node: Any, environ: Mapping[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        interpolate(node, environ)
    message = caught.value.message
    for secret in (VALUE, TOKEN, SECRET_ID):
        assert secret not in message
    return message


# --- env and unknown kinds --------------------------------------------------------------------------


def test_env_kind_is_the_plain_reference() -> None:
    environ = {"KEY": VALUE}
    assert interpolate({"a": "${env:KEY}", "b": "${KEY}", "c": "$KEY"}, environ) == {
        "a": VALUE,
        "b": VALUE,
        "c": VALUE,
    }


def test_unset_env_kind_is_listed_as_written() -> None:
    message = _error({"providers": [{"api_key": "${env:NOPE}"}]}, {})
    assert "NOPE" in message
    assert "${env:NOPE}" in message
    assert "providers[0].api_key" in message


def test_a_bad_env_name_and_an_unknown_kind_are_errors_not_literals() -> None:
    assert "not an environment variable name" in _error({"k": "${env:1X}"}, {})
    message = _error({"k": "${vualt:a#b}"}, {})
    assert "${vualt:a#b} is not a known reference kind" in message
    assert "env, file, keyring, vault" in message
    assert "a ${file:...} reference over 1024 characters" in _error({"k": "${file:/" + "x" * 2000 + "}"}, {})


def test_references_reports_every_kind_in_order() -> None:
    doc = {
        "a": "${env:A} $B ${C}",
        "b": ["${file:/run/secrets/k}", "${keyring:ccrouter/openai}"],
        "c": {"d": "Bearer ${vault:team/llm#anthropic}", "e": "$$literal"},
    }
    assert references(doc) == [
        (("a",), "env", "A"),
        (("a",), "env", "B"),
        (("a",), "env", "C"),
        (("b", 0), "file", "/run/secrets/k"),
        (("b", 1), "keyring", "ccrouter/openai"),
        (("c", "d"), "vault", "team/llm#anthropic"),
    ]


# --- file fingerprints ----------------------------------------------------------------------------


def test_file_values_leave_a_fingerprint_not_a_copy(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(VALUE + "\n")
    resolution = Resolution({"ENVKEY": "from-env"})
    assert interpolate({"k": f"${{file:{key}}}", "e": "$ENVKEY"}, {}, resolution=resolution) == {
        "k": VALUE,
        "e": "from-env",
    }
    prints = dict(resolution.prints)
    assert prints == {f"file:{key}": fingerprint(VALUE)}  # env is not refreshable: not kept
    assert VALUE not in repr(prints)
    config = tmp_path / "config.yaml"
    config.write_text(f"providers:\n  - api_key: ${{file:{key}}}\n")
    assert secret_prints(config, {}) == prints
    key.write_text("sk-rotated\n")
    assert secret_prints(config, {}) == {f"file:{key}": fingerprint("sk-rotated")}


# --- keyring --------------------------------------------------------------------------------------


class _MemoryKeyring(KeyringBackend):
    """A keyring of the test's own: a dict, or locked (every read fails as a locked keyring does)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, entries: dict[tuple[str, str], str], *, locked: bool = False) -> None:
        super().__init__()
        self.entries = entries
        self.locked = locked

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise KeyringLocked("the collection is locked")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> Iterator[_MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = _MemoryKeyring({("ccrouter", "openai"): VALUE, ("team/a", "anthropic"): "sk-team"})
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_keyring_entries_resolve(memory_keyring: _MemoryKeyring) -> None:
    assert interpolate({"k": "${keyring:ccrouter/openai}"}, {}) == {"k": VALUE}
    # The service is everything before the last slash.
    assert interpolate({"k": "${keyring:team/a/anthropic}"}, {}) == {"k": "sk-team"}


def test_a_missing_keyring_entry_names_the_reference(memory_keyring: _MemoryKeyring) -> None:
    message = _error({"providers": [{"api_key": "${keyring:ccrouter/nope}"}]}, {})
    assert "providers[0].api_key" in message
    assert "no keyring entry for ${keyring:ccrouter/nope}" in message
    assert "must be ${keyring:service/name}" in _error({"k": "${keyring:no-slash}"}, {})


def test_a_locked_keyring_is_an_error_without_values(memory_keyring: _MemoryKeyring) -> None:
    memory_keyring.locked = True
    message = _error({"k": "${keyring:ccrouter/openai}"}, {})
    assert "cannot read the keyring for ${keyring:ccrouter/openai}: KeyringLocked" in message


# --- Vault ----------------------------------------------------------------------------------------


@pytest.fixture
async def vault() -> AsyncIterator[FakeVault]:
    async with FakeVault(token=TOKEN, role_id=ROLE_ID, secret_id=SECRET_ID) as fake:
        fake.put("team/llm", {"anthropic": VALUE, "openai": "sk-openai", "port": 8080})
        yield fake


def _token_env(vault: FakeVault, **extra: str) -> dict[str, str]:
    return {"VAULT_ADDR": vault.url, "VAULT_TOKEN": TOKEN, **extra}


async def _resolve(node: Any, environ: Mapping[str, str]) -> Any:
    # hvac is blocking HTTP: off the loop, as every load of the gateway is.
    return await asyncio.to_thread(interpolate, node, environ)


async def _vault_error(node: Any, environ: Mapping[str, str]) -> str:
    return await asyncio.to_thread(_error, node, environ)


async def test_vault_fields_resolve_with_one_read_per_path(vault: FakeVault) -> None:
    doc = {
        "a": "${vault:team/llm#anthropic}",
        "b": "${vault:/team/llm#openai}",
        "c": "${vault:team/llm#anthropic}",
    }
    assert await _resolve(doc, _token_env(vault)) == {"a": VALUE, "b": "sk-openai", "c": VALUE}
    assert vault.reads("team/llm") == 1


async def test_vault_approle_login_namespace_and_mount(vault: FakeVault) -> None:
    environ = {
        "VAULT_ADDR": vault.url,
        "VAULT_ROLE_ID": ROLE_ID,
        "VAULT_SECRET_ID": SECRET_ID,
        "VAULT_NAMESPACE": "team-a",
    }
    assert await _resolve({"k": "${vault:team/llm#anthropic}"}, environ) == {"k": VALUE}
    assert [(call.method, call.path, call.status) for call in vault.calls] == [
        ("POST", "/v1/auth/approle/login", 200),
        ("GET", "/v1/secret/data/team/llm", 200),
    ]
    assert {call.namespace for call in vault.calls} == {"team-a"}
    async with FakeVault(token=TOKEN, mount="kv") as other:
        other.put("x", {"f": "in-kv"})
        environ = _token_env(other, VAULT_KV_MOUNT="kv")
        assert await _resolve({"k": "${vault:x#f}"}, environ) == {"k": "in-kv"}


async def test_vault_errors_name_the_reference_and_never_a_value(vault: FakeVault) -> None:
    ref = {"providers": [{"api_key": "${vault:team/llm#nope}"}]}
    message = await _vault_error(ref, _token_env(vault))
    assert "providers[0].api_key: ${vault:team/llm#nope}" in message
    assert "has no field 'nope' (fields: anthropic, openai, port)" in message
    assert "no secret at secret/absent" in await _vault_error({"k": "${vault:absent#f}"}, _token_env(vault))
    assert "is not a string" in await _vault_error({"k": "${vault:team/llm#port}"}, _token_env(vault))
    assert "must be ${vault:path#field}" in await _vault_error({"k": "${vault:team/llm}"}, _token_env(vault))
    wrong = {**_token_env(vault), "VAULT_TOKEN": "hvs.wrong"}
    assert "permission denied" in await _vault_error({"k": "${vault:team/llm#openai}"}, wrong)
    bad_role = {"VAULT_ADDR": vault.url, "VAULT_ROLE_ID": ROLE_ID, "VAULT_SECRET_ID": "wrong-" + SECRET_ID}
    message = await _vault_error({"k": "${vault:team/llm#openai}"}, bad_role)
    assert "AppRole login" in message
    assert "invalid role or secret ID" in message


async def test_vault_settings_are_checked(vault: FakeVault) -> None:
    ref = {"k": "${vault:team/llm#openai}"}
    assert "VAULT_ADDR is not set" in await _vault_error(ref, {"VAULT_TOKEN": TOKEN})
    assert "no Vault credentials" in await _vault_error(ref, {"VAULT_ADDR": vault.url})
    bad = _token_env(vault, VAULT_CLIENT_TIMEOUT="forever")
    assert "VAULT_CLIENT_TIMEOUT" in await _vault_error(ref, bad)
    assert "from 1 to 60" in await _vault_error(ref, _token_env(vault, VAULT_CLIENT_TIMEOUT="600"))
    assert await _resolve(ref, _token_env(vault, VAULT_CLIENT_TIMEOUT="2s")) == {"k": "sk-openai"}


async def test_an_unreachable_vault_is_an_error_soon() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {"VAULT_ADDR": f"http://127.0.0.1:{port}", "VAULT_TOKEN": TOKEN, "VAULT_CLIENT_TIMEOUT": "2"}
    message = await _vault_error({"k": "${vault:a#b}", "l": "${vault:c#d}"}, environ)
    assert "cannot reach it (ConnectionError)" in message


async def test_vault_prints_follow_a_new_version(vault: FakeVault, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    text = "providers:\n  - api_key: ${vault:team/llm#anthropic}\n    name: ${vault:team/llm#openai}\n"
    await asyncio.to_thread(config.write_text, text)
    environ = _token_env(vault)
    before = await asyncio.to_thread(secret_prints, config, environ)
    assert before == {
        "vault:team/llm#anthropic": fingerprint(VALUE),
        "vault:team/llm#openai": fingerprint("sk-openai"),
    }
    assert await asyncio.to_thread(secret_prints, config, environ) == before
    vault.put("team/llm", {"anthropic": "sk-rotated", "openai": "sk-openai"})
    after = await asyncio.to_thread(secret_prints, config, environ)
    assert after["vault:team/llm#anthropic"] == fingerprint("sk-rotated")
    assert after["vault:team/llm#openai"] == before["vault:team/llm#openai"]


async def test_the_fake_vault_answers_token_lookup(vault: FakeVault) -> None:
    import hvac

    def lookup(token: str) -> bool:
        client = hvac.Client(url=vault.url, token=token, timeout=2)
        try:
            return bool(client.is_authenticated())
        finally:
            client.adapter.close()

    assert await asyncio.to_thread(lookup, TOKEN)
    assert not await asyncio.to_thread(lookup, "hvs.wrong")
    vault.revoke(TOKEN)
    assert not await asyncio.to_thread(lookup, TOKEN)
