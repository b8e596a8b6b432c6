"""`ccrouter --version`, `config validate`, `config import-ccr`, `models` through typer's CliRunner."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from ccrouter import __version__
from ccrouter.ccr_import import import_ccr, parse_ccr_json
from ccrouter.cli.main import app

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ccr_config.json"
WIDE = {"COLUMNS": "250"}  # rich wraps at 80 columns without a terminal

CONFIG = """\
providers:
  - name: deepseek
    type: openai
    base_url: https://api.deepseek.com/v1
    api_key: ${DEEPSEEK_KEY}
    models: [deepseek-chat, deepseek-reasoner]
  - name: local
    type: openai
    vendor: ollama
    base_url: http://localhost:11434/v1
    models:
      - qwen2.5-coder:7b
      - {name: my-own-model, context_window: 4096, tools: false}
router:
  default: deepseek,deepseek-chat
  think: deepseek,deepseek-reasoner
  background: local,qwen2.5-coder:7b
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME and config location: tests never touch the real ~/.ccrouter."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CCROUTER_CONFIG", str(tmp_path / "cfg" / "config.yaml"))
    monkeypatch.setenv("DEEPSEEK_KEY", "sk-test")
    return tmp_path


@pytest.fixture
def config(home: Path) -> Path:
    path = home / "cfg" / "config.yaml"
    path.parent.mkdir()
    path.write_text(CONFIG, encoding="utf-8")
    return path


def flat(text: str) -> str:
    return " ".join(text.split())


runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"ccrouter {__version__}\n"


def test_validate_ok(config: Path) -> None:
    result = runner.invoke(app, ["config", "validate"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert f"OK {config}" in result.stdout
    assert "provider deepseek (openai): deepseek-chat, deepseek-reasoner" in result.stdout
    assert "route think: deepseek,deepseek-reasoner" in result.stdout


def test_validate_explicit_path_with_errors(config: Path) -> None:
    config.write_text(CONFIG.replace("think: deepseek,", "think: nowhere,"), encoding="utf-8")
    result = runner.invoke(app, ["config", "validate", str(config)], env=WIDE)
    assert result.exit_code == 1
    assert "router.think: unknown provider 'nowhere'" in flat(result.stderr)
    assert result.stdout == ""


def test_validate_missing_variable(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_KEY")
    result = runner.invoke(app, ["config", "validate"], env=WIDE)
    assert result.exit_code == 1
    assert "providers[0].api_key: environment variable DEEPSEEK_KEY is not set" in flat(result.stderr)


def test_validate_missing_file(home: Path) -> None:
    result = runner.invoke(app, ["config", "validate"], env=WIDE)
    assert result.exit_code == 1
    assert "no such file" in flat(result.stderr)


def test_import_ccr_prints_yaml_and_warnings(home: Path) -> None:
    result = runner.invoke(app, ["config", "import-ccr", str(FIXTURE)], env=WIDE)
    assert result.exit_code == 0, result.output
    expected, warnings = import_ccr(parse_ccr_json(FIXTURE.read_text()))
    assert result.stdout.startswith("# Converted from ccr_config.json")
    assert yaml.safe_load(result.stdout) == expected
    errors = flat(result.stderr)
    assert errors.count("warning:") == len(warnings)
    # The report names what was kept as another setting, and what truly has no equivalent.
    assert "kept: Providers[1] (deepseek): transformer 'deepseek' is built in" in errors
    assert "tooluse" not in errors  # kept as a transformer: nothing to report
    assert "CUSTOM_ROUTER_PATH" in errors
    assert "router.custom" in errors


def test_import_ccr_writes_private_file(home: Path) -> None:
    output = home / "converted.yaml"
    result = runner.invoke(app, ["config", "import-ccr", str(FIXTURE), "--output", str(output)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert yaml.safe_load(output.read_text())["router"]["default"] == "deepseek,deepseek-chat"
    again = runner.invoke(app, ["config", "import-ccr", str(FIXTURE), "-o", str(output)], env=WIDE)
    assert again.exit_code == 1
    assert "exists; pass --force" in flat(again.stderr)
    forced = runner.invoke(
        app, ["config", "import-ccr", str(FIXTURE), "-o", str(output), "--force"], env=WIDE
    )
    assert forced.exit_code == 0


def test_import_ccr_reports_an_invalid_result(home: Path) -> None:
    source = home / "ccr.json"
    source.write_text('{"Providers": [{"name": "a", "api_base_url": "https://x/v1/chat/completions"}],}')
    result = runner.invoke(app, ["config", "import-ccr", str(source)], env=WIDE)
    assert result.exit_code == 0
    errors = flat(result.stderr)
    assert "Router.default is missing" in errors
    assert "the result does not validate yet" in errors
    assert "router.default: required key is missing" in errors


def test_import_ccr_bad_json(home: Path) -> None:
    source = home / "ccr.json"
    source.write_text('{"Providers": [\n  {"name" "a"}\n]}')
    result = runner.invoke(app, ["config", "import-ccr", str(source)], env=WIDE)
    assert result.exit_code == 1
    assert "not valid JSON at line 2" in flat(result.stderr)


def test_models_table(config: Path) -> None:
    result = runner.invoke(app, ["models"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in result.stdout.splitlines() if line.strip()}
    # Figures from the shipped catalog (deepseek-chat: 128K context, 8K output, tools, no vision).
    assert rows[("deepseek", "deepseek-chat")] == ["128,000", "8,192", "yes", "-", "-", "default"]
    assert rows[("deepseek", "deepseek-reasoner")] == ["128,000", "65,536", "yes", "-", "yes", "think"]
    assert rows[("local", "qwen2.5-coder:7b")][-1] == "background"
    # Config overrides win over the catalog's default for an unknown model.
    assert rows[("local", "my-own-model")][:3] == ["4,096", "8,192", "-"]


def test_models_without_config(home: Path) -> None:
    result = runner.invoke(app, ["models"], env=WIDE)
    assert result.exit_code == 1
    assert "no such file" in flat(result.stderr)


def test_validate_checks_transformer_names(config: Path) -> None:
    config.write_text(
        CONFIG.replace(
            "models: [deepseek-chat, deepseek-reasoner]",
            "models: [deepseek-chat, deepseek-reasoner]\n    transformers: [tooluse, nope]",
        )
    )
    result = runner.invoke(app, ["config", "validate"], env=WIDE)
    assert result.exit_code == 1
    assert "providers[0] (deepseek).transformers[1]: unknown transformer 'nope'" in flat(result.stderr)


SECRET_CONFIG = """\
server:
  admin_token: ${ADMIN}
  api_keys: ["${CLIENT}", {name: bob, key: ck-bob-0123456789abcdef}]
providers:
  - name: deepseek
    type: openai
    base_url: https://user:pw-0123456789abc@api.example.test/v1?key=q-0123456789abc
    api_key: ${DEEPSEEK_KEY}
    headers: {x-extra-auth: hdr-0123456789abcdef}
    models: [deepseek-chat]
router: {default: 'deepseek,deepseek-chat'}
state: {redis_url: 'redis://:redis-0123456789abc@127.0.0.1:6379/0'}
"""
SECRETS = ("sk-test", "adm-0123456789abcdef", "ck-0123456789abcdef", "ck-bob-0123456789abcdef",
           "pw-0123456789abc", "q-0123456789abc", "hdr-0123456789abcdef", "redis-0123456789abc")  # fmt: skip


@pytest.mark.parametrize("as_json", [False, True], ids=["yaml", "json"])
def test_config_show_masks_every_secret(config: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool) -> None:
    monkeypatch.setenv("DEEPSEEK_KEY", "sk-test-0123456789abcdef")
    monkeypatch.setenv("ADMIN", "adm-0123456789abcdef")
    monkeypatch.setenv("CLIENT", "ck-0123456789abcdef")
    config.write_text(SECRET_CONFIG, encoding="utf-8")
    result = runner.invoke(app, ["config", "show", "--config", str(config), *(["--json"] if as_json else [])])
    assert result.exit_code == 0, result.output
    for secret in SECRETS:
        assert secret not in result.stdout
    data = orjson.loads(result.stdout) if as_json else yaml.safe_load(result.stdout)
    provider = data["providers"][0]
    assert provider["api_key"] == "********"
    assert provider["headers"] == {"x-extra-auth": "********"}
    assert provider["base_url"] == "https://user:********@api.example.test/v1?key=********"
    assert data["server"]["admin_token"] == "********"
    assert data["server"]["api_keys"][1] == {
        "name": "bob",
        "key": "********",
        "user": None,
        "user_header": False,
        "team": None,
        "role": "client",
        "rpm": None,
        "tpm": None,
        "models": None,
    }
    # The effective configuration: defaults filled in.
    assert data["server"]["port"] == 3456
    assert provider["timeouts"]["connect"] == 10.0
    assert data["router"]["long_context_threshold"] == 60000


def test_config_show_lists_every_missing_variable(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_KEY")
    config.write_text(SECRET_CONFIG, encoding="utf-8")
    result = runner.invoke(app, ["config", "show"], env=WIDE)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "3 environment variables are not set: ADMIN, CLIENT, DEEPSEEK_KEY" in flat(result.stderr)
