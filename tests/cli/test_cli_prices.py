"""`ccrouter prices update` with LiteLLM's format, through the console script's entry point
(``ccrouter.cli.launch``) in a child process, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ccrouter

FIXTURE = Path(__file__).parent.parent / "fixtures" / "litellm_prices.json"
CONFIG = """\
providers: [{name: sim, type: simulated, models: [sim-1]}]
router: {default: 'sim,sim-1'}
"""


def ccrouter_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    source = str(Path(ccrouter.__file__).parents[1])
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env.update(HOME=str(tmp_path), NO_COLOR="1", COLUMNS="400")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.launch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_update_converts_litellm_and_show_lists_it(tmp_path: Path) -> None:
    config = tmp_path / "cfg" / "config.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG, encoding="utf-8")
    done = ccrouter_cli(tmp_path, "prices", "update", str(FIXTURE), "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "installed 9 model prices from LiteLLM's format" in done.stdout
    assert "skipped 9 (2 not a text model, 1 not an object, 3 sold under a name already taken" in done.stdout
    installed = (tmp_path / "cfg" / "prices.yaml").read_text(encoding="utf-8")
    assert installed.startswith("# Converted by `ccrouter prices update` from LiteLLM's litellm_prices.json")
    shown = ccrouter_cli(tmp_path, "prices", "show", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split()[1:] for line in shown.stdout.splitlines() if line.strip()}
    assert rows["us.anthropic.claude-haiku-4-5-20251001-v1:0"] == ["1.1", "5.5", "0.11", "1.375"]
    assert rows["gpt-4o"] == ["2.5", "10", "1.25", "2.5"]
    assert "text-embedding-3-small" not in rows


def test_update_refuses_bad_input_and_keeps_the_installed_table(tmp_path: Path) -> None:
    config = tmp_path / "cfg" / "config.yaml"
    assert ccrouter_cli(tmp_path, "prices", "update", str(FIXTURE), "--config", str(config)).returncode == 0
    before = (tmp_path / "cfg" / "prices.yaml").read_text(encoding="utf-8")
    for content in ('{"gpt-4o": {"mode": "chat", ', "[1, 2]"):
        bad = tmp_path / "bad.json"
        bad.write_text(content, encoding="utf-8")
        done = ccrouter_cli(tmp_path, "prices", "update", str(bad), "--config", str(config))
        assert done.returncode == 1, done.stdout
        assert "Traceback" not in done.stderr
        assert "bad.json" in done.stdout + done.stderr
    assert (tmp_path / "cfg" / "prices.yaml").read_text(encoding="utf-8") == before
