"""Loading, interpolating, validating and creating the YAML configuration."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from ccrouter.config_file import (
    default_config_path,
    detect_providers,
    load_or_create,
    load_settings,
    uses_simulated,
    write_default_config,
)
from ccrouter.errors import ConfigError

GOOD = """\
server:
  host: 127.0.0.1
  port: 4000
  api_keys: ["${CLIENT_KEY}"]
providers:
  - name: deepseek
    type: openai
    base_url: https://api.deepseek.com/v1
    api_key: ${DEEPSEEK_KEY}
    models: [deepseek-chat, deepseek-reasoner]
  - name: anthropic
    type: anthropic
    api_key: $ANTHROPIC_KEY
    headers: {x-note: "costs $$5 for $USER_NAME"}
    models:
      - name: claude-sonnet-4-5
        max_output_tokens: 32000
router:
  default: deepseek,deepseek-chat
  think: deepseek,deepseek-reasoner
  long_context: anthropic,claude-sonnet-4-5
  long_context_threshold: 90000
"""
ENV = {"CLIENT_KEY": "ck-1", "DEEPSEEK_KEY": "sk-ds", "ANTHROPIC_KEY": "sk-ant", "USER_NAME": "ada"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ if environ is not None else ENV)
    return info.value.message


def test_good_file_loads_with_interpolation(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), ENV)
    assert settings.server.port == 4000
    assert [key.get_secret_value() for key in settings.server.api_keys] == ["ck-1"]
    deepseek, anthropic = settings.providers
    assert deepseek.api_key is not None
    assert deepseek.api_key.get_secret_value() == "sk-ds"
    assert anthropic.api_key is not None
    assert anthropic.api_key.get_secret_value() == "sk-ant"
    assert anthropic.headers == {"x-note": "costs $5 for ada"}  # $$ is a literal dollar
    assert [m.name for m in deepseek.models] == ["deepseek-chat", "deepseek-reasoner"]
    assert anthropic.models[0].max_output_tokens == 32000
    assert settings.router.think == "deepseek,deepseek-reasoner"
    assert settings.router.long_context_threshold == 90000


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), ENV)
    with pytest.raises(ValidationError):
        settings.server.port = 1
    with pytest.raises(ValidationError):
        settings.router.default = "anthropic,claude-sonnet-4-5"


def test_missing_variable_names_variable_and_key_path(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD), {k: v for k, v in ENV.items() if k != "ANTHROPIC_KEY"})
    assert "providers[1].api_key: environment variable ANTHROPIC_KEY is not set" in message
    message = error_of(write(tmp_path, GOOD), {k: v for k, v in ENV.items() if k != "CLIENT_KEY"})
    assert "server.api_keys[0]: environment variable CLIENT_KEY is not set" in message


def test_unknown_provider_in_route_names_the_route(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("think: deepseek,deepseek-reasoner", "think: nope,some-model"))
    message = error_of(path)
    assert str(path) in message
    assert "router.think: unknown provider 'nope'" in message


def test_unknown_model_in_route(tmp_path: Path) -> None:
    message = error_of(
        write(tmp_path, GOOD.replace("default: deepseek,deepseek-chat", "default: deepseek,gpt-9"))
    )
    assert "router.default: provider 'deepseek' has no model 'gpt-9'" in message


def test_field_errors_list_every_key_path(tmp_path: Path) -> None:
    text = GOOD.replace("port: 4000", "port: 99999\n  colour: red").replace(
        "type: anthropic", "type: antropic"
    )
    lines = error_of(write(tmp_path, text)).splitlines()[1:]
    assert lines == [
        "  server.port: Input should be less than or equal to 65535 (got 99999)",
        "  server.colour: unknown key (known keys here: admin_token, api_keys, auth_throttle_burst,"
        " auth_throttle_per_minute, backlog, body_timeout_s, drain_grace_s, drain_s, header_timeout_s,"
        " host, jwt, keys, log_level, max_body_bytes, max_stream_s, port, protect_observability,"
        " require_auth, ui)",
        "  providers[1].type: Input should be 'anthropic', 'openai', 'gemini', 'simulated', 'vertex',"
        " 'bedrock', 'azure' or 'openai_responses' (got 'antropic')",
    ]


def test_missing_base_url_and_required_keys(tmp_path: Path) -> None:
    text = "providers:\n  - name: x\n    type: openai\n  - type: anthropic\nrouter: {default: 'x,m'}\n"
    message = error_of(write(tmp_path, text))
    assert "providers[0]: an openai-format provider needs base_url" in message
    assert "providers[1].name: required key is missing" in message


@pytest.mark.parametrize("value", ["{oops: sk-secret-123}", "987654321"])
def test_secret_values_are_never_echoed(tmp_path: Path, value: str) -> None:
    message = error_of(write(tmp_path, GOOD.replace("api_key: ${DEEPSEEK_KEY}", f"api_key: {value}")))
    assert "providers[0].api_key: Input should be a valid string" in message
    assert "sk-secret-123" not in message
    assert "987654321" not in message


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  - name: a\n    models: [x, y\nrouter:\n  default: a,x\n")
    message = error_of(path)
    assert message.startswith(f"{path}: YAML syntax error at line 4, column ")
    assert "expected ',' or ']'" in message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    assert "the top level must be a mapping" in error_of(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in error_of(tmp_path / "absent.yaml")


def test_default_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CCROUTER_CONFIG", raising=False)
    assert default_config_path() == tmp_path / ".ccrouter" / "config.yaml"
    monkeypatch.setenv("CCROUTER_CONFIG", str(tmp_path / "elsewhere.yaml"))
    assert default_config_path() == tmp_path / "elsewhere.yaml"
    assert default_config_path({"CCROUTER_CONFIG": "/x/y.yaml"}) == Path("/x/y.yaml")


DETECTED = [
    ("ANTHROPIC_API_KEY", "anthropic", "anthropic", "anthropic", None),
    ("OPENAI_API_KEY", "openai", "openai", "openai", "https://api.openai.com/v1"),
    ("DEEPSEEK_API_KEY", "deepseek", "openai", "deepseek", "https://api.deepseek.com/v1"),
    ("GROQ_API_KEY", "groq", "openai", "groq", "https://api.groq.com/openai/v1"),
    ("OPENROUTER_API_KEY", "openrouter", "openai", "openrouter", "https://openrouter.ai/api/v1"),
    ("GEMINI_API_KEY", "gemini", "gemini", "gemini", None),
    ("GITHUB_TOKEN", "github", "openai", "github", "https://models.github.ai/inference"),
]


@pytest.mark.parametrize(("var", "name", "wire", "vendor", "base_url"), DETECTED)
def test_detect_each_provider(var: str, name: str, wire: str, vendor: str, base_url: str | None) -> None:
    (provider,) = detect_providers({var: "secret-value"}, ollama_probe=lambda: False)
    assert provider["name"] == name
    assert provider["type"] == wire
    assert provider["vendor"] == vendor
    assert provider.get("base_url") == base_url
    assert provider["api_key"] == "${" + var + "}"
    assert provider["models"]
    assert all(isinstance(m, str) for m in provider["models"])
    assert "secret-value" not in repr(provider)


def test_detect_ollama_and_order() -> None:
    environ = {"GEMINI_API_KEY": "g", "ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": ""}  # empty = unset
    found = detect_providers(environ, ollama_probe=lambda: True)
    assert [p["name"] for p in found] == ["anthropic", "gemini", "ollama"]
    ollama = found[-1]
    assert ollama["base_url"] == "http://localhost:11434/v1"
    assert (ollama["type"], ollama["vendor"]) == ("openai", "ollama")
    assert "api_key" not in ollama
    assert detect_providers({}, ollama_probe=lambda: False) == []


def test_write_default_config_with_keys(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "config.yaml"
    environ = {"DEEPSEEK_API_KEY": "sk-deepseek-secret", "GEMINI_API_KEY": "gm-secret"}
    settings, simulated = write_default_config(path, environ, ollama_probe=lambda: False)
    assert simulated is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "sk-deepseek-secret" not in text
    assert "gm-secret" not in text
    assert "${DEEPSEEK_API_KEY}" in text
    assert "${GEMINI_API_KEY}" in text
    assert text.startswith("# ccrouter configuration")
    assert [p.name for p in settings.providers] == ["deepseek", "gemini"]
    assert settings.router.default == "deepseek,deepseek-chat"
    deepseek = settings.provider("deepseek")
    assert deepseek is not None
    assert deepseek.api_key is not None
    assert deepseek.api_key.get_secret_value() == "sk-deepseek-secret"
    assert not uses_simulated(settings)


def test_write_default_config_without_keys_is_simulated(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    settings, simulated = write_default_config(path, {}, ollama_probe=lambda: False)
    assert simulated is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (provider,) = settings.providers
    assert (provider.name, provider.type, [m.name for m in provider.models]) == (
        "simulated",
        "simulated",
        ["sim-1"],
    )
    assert settings.router.default == "simulated,sim-1"
    assert uses_simulated(settings)
    assert "No API key was found" in path.read_text()
    assert load_settings(path, {}) == settings  # the written file reloads to the same settings


def test_load_or_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CCROUTER_CONFIG", str(tmp_path / "cfg" / "config.yaml"))
    environ = {"CCROUTER_CONFIG": str(tmp_path / "cfg" / "config.yaml"), "GROQ_API_KEY": "gq"}
    settings, path, created = load_or_create(None, environ)
    assert created is True
    assert path == tmp_path / "cfg" / "config.yaml"
    assert settings.router.default.startswith("groq,")
    path.write_text(path.read_text().replace("port: 3456", "port: 3999"))
    again, same_path, created_again = load_or_create(path, environ)
    assert (same_path, created_again, again.server.port) == (path, False, 3999)


def test_unquoted_off_is_the_word_not_a_boolean(tmp_path: Path) -> None:
    # YAML 1.1 reads `off` as false; the README writes `routing.auto_fallback: off` unquoted.
    path = tmp_path / "config.yaml"
    path.write_text(
        "providers: [{name: sim, type: simulated}]\nrouter: {default: 'sim,m'}\n"
        "routing:\n  auto_fallback: off\n"
    )
    assert load_settings(path, {}).routing.auto_fallback == "off"
    path.write_text(path.read_text().replace("auto_fallback: off", "auto_fallback: yes"))
    with pytest.raises(ConfigError, match=r"routing\.auto_fallback: Input should be"):
        load_settings(path, {})  # `yes` (true) names none of its words: still an error


def test_every_literal_with_a_yaml_boolean_word_is_covered() -> None:
    """Any config Literal offering on/off/yes/no/true/false gets the word back from YAML's boolean, and
    a field that also takes a real bool keeps it."""
    from typing import Literal

    from ccrouter.config import _Frozen

    class Probe(_Frozen):
        mode: Literal["on", "off", "auto"] = "auto"
        answer: Literal["yes", "no"] | None = None
        flag: bool | Literal["off", "auto"] = "auto"

    probe = Probe.model_validate({"mode": False, "answer": True, "flag": False})
    assert (probe.mode, probe.answer, probe.flag) == ("off", "yes", False)
    assert Probe.model_validate({"mode": True}).mode == "on"


def test_every_missing_variable_is_listed_at_once(tmp_path: Path) -> None:
    environ = {"USER_NAME": "ada"}  # CLIENT_KEY, DEEPSEEK_KEY and ANTHROPIC_KEY are all unset
    lines = error_of(write(tmp_path, GOOD), environ).splitlines()
    assert lines[0].endswith(
        "3 environment variables are not set: CLIENT_KEY, DEEPSEEK_KEY, ANTHROPIC_KEY (export them)"
    )
    assert lines[1:] == [
        "  server.api_keys[0]: environment variable CLIENT_KEY is not set (used as ${CLIENT_KEY})",
        "  providers[0].api_key: environment variable DEEPSEEK_KEY is not set (used as ${DEEPSEEK_KEY})",
        "  providers[1].api_key: environment variable ANTHROPIC_KEY is not set (used as $ANTHROPIC_KEY)",
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("default: deepseek,deepseek-chat", "defualt: deepseek,deepseek-chat"),
         "router.defualt: unknown key; did you mean 'default'?"),
        (("base_url: https://api.deepseek.com/v1", "base_ur: https://api.deepseek.com/v1"),
         "providers[0].base_ur: unknown key; did you mean 'base_url'?"),
        (("max_output_tokens: 32000", "max_output_token: 32000"),
         "providers[1].models[0].max_output_token: unknown key; did you mean 'max_output_tokens'?"),
        (("port: 4000", "port: 4000\n  admin_tokn: t"),
         "server.admin_tokn: unknown key; did you mean 'admin_token'?"),
        (("server:", "servr:"), "servr: unknown key; did you mean 'server'?"),
        # No close match, and more keys there than a message lists: just the key.
        (("base_url: https://api.deepseek.com/v1", "base_url: https://api.deepseek.com/v1\n    zzqqxx: 1"),
         "providers[0].zzqqxx: unknown key"),
    ],
    ids=["router", "provider", "model", "server", "top", "no-close-match"],
)  # fmt: skip
def test_unknown_keys_suggest_the_closest_known_key(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    assert f"  {expected}" in error_of(write(tmp_path, GOOD.replace(*edit))).splitlines()


def test_unknown_key_in_a_client_key_object_suggests_its_fields(tmp_path: Path) -> None:
    text = GOOD.replace('api_keys: ["${CLIENT_KEY}"]', "api_keys: [{name: bob, key: k-1, usr: bob}]")
    assert "did you mean 'user'?" in error_of(write(tmp_path, text))


def test_provider_keys_lose_the_newline_of_a_block_scalar(tmp_path: Path) -> None:
    text = GOOD.replace(
        "api_key: ${DEEPSEEK_KEY}", "api_key: |\n      sk-ds-block\n    api_keys:\n      - ' sk-two '"
    )
    settings = load_settings(write(tmp_path, text), ENV)
    keys = [k.get_secret_value() if k else None for k in settings.providers[0].credentials()]
    assert keys == ["sk-ds-block", "sk-two"]
