"""``${file:PATH}`` references (keys ``ccrouter init`` stores) and the reference scan doctor uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrouter.config_file import interpolate, load_settings, references
from ccrouter.errors import ConfigError

CONFIG = """\
providers:
  - name: deepseek
    type: openai
    base_url: https://api.deepseek.com/v1
    api_key: ${{file:{key}}}
    models: [deepseek-chat]
router:
  default: deepseek,deepseek-chat
"""


def test_a_file_reference_reads_the_key(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "deepseek"
    key.parent.mkdir()
    key.write_text("sk-from-a-file-123\n")  # the trailing newline an editor leaves is not the key
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(key=key))
    settings = load_settings(config, {})
    provider = settings.provider("deepseek")
    assert provider is not None
    assert provider.api_key is not None
    assert provider.api_key.get_secret_value() == "sk-from-a-file-123"


def test_a_file_under_home_is_found_with_a_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ccrouter" / "keys").mkdir(parents=True)
    (tmp_path / ".ccrouter" / "keys" / "x").write_text("secret-x-value")
    assert interpolate({"k": "Bearer ${file:~/.ccrouter/keys/x}"}, {}) == {"k": "Bearer secret-x-value"}


def test_a_missing_file_names_the_key_path_not_a_content(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(key=tmp_path / "nope"))
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    assert "providers[0].api_key" in caught.value.message
    assert "cannot read" in caught.value.message
    assert str(tmp_path / "nope") in caught.value.message


def test_relative_and_oversized_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="absolute path"):
        interpolate({"k": "${file:keys/x}"}, {})
    big = tmp_path / "big"
    big.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(ConfigError, match="not a key file") as caught:
        interpolate({"k": f"${{file:{big}}}"}, {})
    assert "xxxx" not in caught.value.message


def test_dollar_escapes_and_env_references_still_work(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("filekey")
    text = f"$$HOME ${{A}} $B ${{file:{key}}}"
    assert interpolate({"v": text}, {"A": "a", "B": "b"}) == {"v": "$HOME a b filekey"}


def test_references_lists_every_variable_and_file_in_order() -> None:
    data = {
        "providers": [{"api_key": "${ONE}", "headers": {"x": "$TWO and $$NOT"}}, {"api_key": "${file:/k}"}],
        "state": {"redis_url": "redis://${ONE}@h"},
    }
    assert references(data) == [
        (("providers", 0, "api_key"), "env", "ONE"),
        (("providers", 0, "headers", "x"), "env", "TWO"),
        (("providers", 1, "api_key"), "file", "/k"),
        (("state", "redis_url"), "env", "ONE"),
    ]
