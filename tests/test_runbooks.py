"""The runbooks in docs/runbooks name only what exists: every `ccrouter <command>` in their code is a
command of the CLI (and its subcommand, for a group), every `ccr_*` name a series the gateway's
/metrics exports; each runbook has its parts, and the README links them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup

from ccrouter.cli.main import app
from ccrouter.telemetry.metrics import GatewayMetrics

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "docs" / "runbooks"
EXPECTED = (
    "high-latency.md",
    "memory-growth.md",
    "provider-connectivity.md",
    "rate-limit-storms.md",
    "budget-exhausted.md",
    "redis-postgres-down.md",
    "deployment-checklist.md",
    "upgrade-rollback.md",
)
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
_COMMAND = re.compile(r"\bccrouter ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
_METRIC = re.compile(r"\bccr_[a-z0-9_]+")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def _pages() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(RUNBOOKS.glob("*.md"))}


def exported_series() -> set[str]:
    """The sample names /metrics can show: each family's name with its type's suffixes."""
    names = set()
    for family in GatewayMetrics().registry.collect():
        suffixes = _SUFFIXES.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def commands_in(text: str) -> set[tuple[str, str | None]]:
    found = set()
    for code in _CODE.findall(text):
        for name, sub in _COMMAND.findall(code):
            found.add((name, sub or None))
    return found


def unknown_commands(text: str) -> list[str]:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    wrong = []
    for name, sub in sorted(commands_in(text), key=str):
        command = root.commands.get(name)
        if command is None:
            wrong.append(f"ccrouter {name}")
        elif isinstance(command, TyperGroup) and sub is not None and sub not in command.commands:
            wrong.append(f"ccrouter {name} {sub}")
    return wrong


def test_every_runbook_is_there_and_linked_from_the_readme() -> None:
    pages = _pages()
    assert set(EXPECTED) <= set(pages)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/runbooks/README.md" in readme
    index = pages["README.md"]
    for name in EXPECTED:
        assert f"]({name})" in index, f"docs/runbooks/README.md does not link {name}"


@pytest.mark.parametrize("name", EXPECTED)
def test_a_runbook_has_symptoms_a_query_commands_and_a_fix(name: str) -> None:
    text = _pages()[name]
    if name != "deployment-checklist.md":
        for heading in ("## Symptoms", "## Diagnose", "## Fix"):
            assert heading in text or name == "upgrade-rollback.md", f"{name}: no {heading}"
    assert _METRIC.search(text) or "ccrouter logs" in text, f"{name}: no metric or log query"
    assert commands_in(text), f"{name}: no ccrouter command"


@pytest.mark.parametrize("name", [*EXPECTED, "README.md"])
def test_the_commands_a_runbook_names_exist(name: str) -> None:
    assert unknown_commands(_pages()[name]) == []


@pytest.mark.parametrize("name", [*EXPECTED, "README.md"])
def test_the_metrics_a_runbook_names_are_exported(name: str) -> None:
    exported = exported_series()
    assert sorted(set(_METRIC.findall(_pages()[name])) - exported) == []


def test_the_checks_catch_what_does_not_exist() -> None:
    assert unknown_commands("run `ccrouter frobnicate` then `ccrouter keys explode`") == [
        "ccrouter frobnicate",
        "ccrouter keys explode",
    ]
    assert unknown_commands("`ccrouter costs --by key` and `ccrouter keys list`") == []
    assert "ccr_requests_total" in exported_series()
    assert "ccr_requests" not in exported_series()  # a counter's series end in _total
    assert "ccr_provider_breaker_state" in exported_series()
