"""Every command's ``--help``, found by walking the command tree (so commands added later are covered
too): it renders at 60 and 200 columns, fits them, and shows no ``<bool>``/``BOOLEAN`` type beside a flag."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from ccrouter.cli.help import walk
from ccrouter.cli.main import app

runner = CliRunner()
COMMANDS = [" ".join(path) for path, _ in walk(typer.main.get_command(app))]


def test_the_walk_finds_nested_commands() -> None:
    assert {"", "serve", "config", "config validate", "costs", "plugins list"} <= set(COMMANDS)


@pytest.mark.parametrize("columns", [60, 200])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c or "ccrouter")
def test_help_renders_without_bool_metavars(command: str, columns: int) -> None:
    result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert "--help" in result.stdout
    for line in result.stdout.splitlines():
        assert "<bool>" not in line.lower(), line
        assert "BOOLEAN" not in line, line
        assert len(line) <= columns, line
