"""`ccrouter plugins list`, plugins' command groups, and a broken plugin at the command line: one
line naming it, never a traceback (`--help` keeps working)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import ccrouter
from ccrouter.cli.main import app

EXAMPLE = (
    Path(__file__).parents[2] / "examples/plugins/ccrouter-example-header/src/ccrouter_example_header.py"
)
WIDE = {"COLUMNS": "250"}
runner = CliRunner()

CONFIG = """\
providers:
  - {name: sim, type: simulated, models: [sim-1]}
router: {default: 'sim,sim-1'}
plugins:
"""


def _config(tmp_path: Path, *plugins: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + "".join(f"  - {p}\n" for p in plugins), encoding="utf-8")
    return path


def test_plugins_list_shows_the_builtins_and_what_they_provide() -> None:
    result = runner.invoke(app, ["plugins", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    for expected in ("ccrouter.builtins.providers", "built-in", "register_providers", "provider: anthropic"):
        assert expected in result.stdout
    assert "vendor: openai, deepseek, groq, openrouter" in result.stdout


def test_plugins_list_json_includes_the_configs_plugins(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["plugins", "list", "--json", "--config", str(_config(tmp_path, str(EXAMPLE)))]
    )
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in orjson.loads(result.stdout)}
    assert rows[str(EXAMPLE)] == {
        "name": str(EXAMPLE),
        "origin": "config",
        "version": "0.1.0",
        "hooks": ["register_response_hooks"],
        "provides": ["response hook add_header"],
    }
    assert rows["ccrouter.builtins.vendors"]["version"] == ccrouter.__version__


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "import no_such_module_anywhere\n",
            "plugin 'broken.py' failed to load: "
            "ModuleNotFoundError(\"No module named 'no_such_module_anywhere'\")",
        ),
        (
            "from ccrouter.hookspecs import hookimpl\n\n@hookimpl\n"
            "def register_response_hooks(register, settings):\n    raise ValueError('not with these')\n",
            "plugin 'broken.py' failed in register_response_hooks: ValueError('not with these')",
        ),
    ],
    ids=["import", "settings-hook"],
)
def test_serve_with_a_broken_plugin_is_one_line_and_exit_1(
    tmp_path: Path, source: str, expected: str
) -> None:
    (tmp_path / "broken.py").write_text(source, encoding="utf-8")
    config = _config(tmp_path, "broken.py")
    result = runner.invoke(app, ["serve", "--config", str(config), "--port", "0"], env=WIDE)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {config}: {expected}"]
    assert result.stdout == ""  # refused before the banner promises a URL
    assert "Traceback" not in result.output


def _installed(tmp_path: Path, name: str, module: str) -> dict[str, str]:
    """A distribution declaring the ``ccrouter`` entry point ``name`` -> ``module``, on PYTHONPATH:
    what pip leaves behind (its dist-info), written by hand."""
    site = tmp_path / "site"
    info = site / f"{name.replace('-', '_')}-0.2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.2.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[ccrouter]\n{name} = {module}\n", encoding="utf-8")
    source = str(Path(ccrouter.__file__).parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), source]), "COLUMNS": "250"}


def _ccrouter(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ccrouter.cli.main", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_an_installed_plugin_adds_a_command_group(tmp_path: Path) -> None:
    env = _installed(tmp_path, "greeter", "ccr_greeter")
    (tmp_path / "site" / "ccr_greeter.py").write_text(
        "import typer\nfrom ccrouter.hookspecs import hookimpl\n\n"
        "greet = typer.Typer(help='Say hello from a plugin.')\n\n"
        "@greet.command()\ndef hello(name: str = 'world') -> None:\n    print(f'hello {name}')\n\n"
        "@hookimpl\ndef register_commands(cli):\n    cli.add_typer(greet, name='greet')\n",
        encoding="utf-8",
    )
    ran = _ccrouter(env, "greet", "hello", "--name", "plugin")
    assert (ran.returncode, ran.stdout) == (0, "hello plugin\n"), ran.stderr
    assert "Say hello from a plugin." in _ccrouter(env, "--help").stdout
    listed = {row["name"]: row for row in orjson.loads(_ccrouter(env, "plugins", "list", "--json").stdout)}
    assert listed["greeter"]["origin"] == "installed"
    assert listed["greeter"]["version"] == "0.2.0"
    assert listed["greeter"]["hooks"] == ["register_commands"]


def test_a_broken_installed_plugin_keeps_help_working_and_fails_commands(tmp_path: Path) -> None:
    env = _installed(tmp_path, "broken", "ccr_broken")
    (tmp_path / "site" / "ccr_broken.py").write_text(
        "raise RuntimeError('half-installed')\n", encoding="utf-8"
    )
    helped = _ccrouter(env, "--help")
    assert helped.returncode == 0
    assert "serve" in helped.stdout
    assert helped.stderr.startswith("warning: plugin 'broken' (ccr_broken) failed to load")
    for args in (("plugins", "list"), ("status",)):
        ran = _ccrouter(env, *args)
        assert ran.returncode == 1
        assert ran.stderr.splitlines() == [
            "error: plugin 'broken' (ccr_broken) failed to load: RuntimeError('half-installed')"
        ]
        assert "Traceback" not in ran.stdout + ran.stderr
