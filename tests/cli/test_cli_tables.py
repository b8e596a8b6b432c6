"""Tables keep whole values: piped (rich would assume 80 columns and cut), every cell on one line at
the table's natural width; on an 80-column terminal, `plugins list` keeps names and hooks whole."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

import ccrouter
from ccrouter.store import UsageRecord
from ccrouter.store.sqlite import SQLiteStore

PROVIDER = "a-provider-with-a-rather-long-name-for-tables"
MODEL = "an-extremely-long-model-name-that-must-never-be-cut-when-piped-v1"
CONFIG = f"""\
providers:
  - {{name: {PROVIDER}, type: simulated, models: [{MODEL}, short]}}
router: {{default: '{PROVIDER},{MODEL}', background: '{PROVIDER},short'}}
"""


def _environment(tmp_path: Path, columns: str | None) -> dict[str, str]:
    source = str(Path(ccrouter.__file__).parents[1])
    env = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    env.update(HOME=str(tmp_path), NO_COLOR="1", CCROUTER_CONFIG=str(tmp_path / "config.yaml"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    if columns is not None:
        env["COLUMNS"] = columns
    return env


def piped(tmp_path: Path, *args: str, columns: str | None = None) -> str:
    """Run the CLI with stdout into a pipe, as `ccrouter ... | grep` does."""
    done = subprocess.run(
        [sys.executable, "-m", "ccrouter.cli.main", *args],
        env=_environment(tmp_path, columns),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def on_terminal(tmp_path: Path, columns: int, *args: str) -> str:
    """Run the CLI on a pseudo-terminal ``columns`` wide; what it printed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "ccrouter.cli.main", *args],
        env=_environment(tmp_path, str(columns)),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    try:
        while chunk := os.read(master, 65536):
            chunks.append(chunk)
    except OSError:  # EIO: the child closed the terminal
        pass
    finally:
        os.close(master)
    assert process.wait(timeout=60) == 0
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # NO_COLOR leaves bold and dim


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _line_with(text: str, *values: str) -> str:
    lines = [line for line in text.splitlines() if all(value in line for value in values)]
    assert lines, f"no line holds all of {values}:\n{text}"
    return lines[0]


def test_models_piped_keeps_every_column_and_whole_names(tmp_path: Path, config: Path) -> None:
    for columns in (None, "80"):  # an exported COLUMNS does not cut a pipe either
        out = piped(tmp_path, "models", "--config", str(config), columns=columns)
        _line_with(out, "provider", "model", "context", "max output", "thinking", "routes")
        _line_with(out, PROVIDER, MODEL, "200,000", "default")
        assert "…" not in out


def test_costs_piped_keeps_whole_names(tmp_path: Path, config: Path) -> None:
    async def write() -> None:
        store = SQLiteStore(tmp_path / "usage.db")
        await store.open()
        store.add(
            UsageRecord(
                ts=time.time() - 5,
                request_id="a",
                endpoint="messages",
                status=200,
                provider=PROVIDER,
                model=MODEL,
                session_id="s-1",
                input_tokens=100,
                output_tokens=10,
                cost_picos=450_000_000,
            )
        )
        await store.close()

    asyncio.run(write())
    out = piped(tmp_path, "costs", "--config", str(config))
    _line_with(out, PROVIDER, MODEL, "0.0004", "100", "10")
    out = piped(tmp_path, "costs", "--config", str(config), "--by", "provider,model,session")
    _line_with(out, "provider", "model", "session", "cost USD", "cache read", "cache write")
    _line_with(out, PROVIDER, MODEL, "s-1", "0.0004")


def test_prices_piped_keeps_every_column_and_a_long_override(tmp_path: Path, config: Path) -> None:
    config.write_text(CONFIG + f"prices:\n  {MODEL}: {{input: 1.5, output: 7.25}}\n", encoding="utf-8")
    out = piped(tmp_path, "prices", "show", "--config", str(config))
    _line_with(out, "model", "input", "output", "cache read", "cache write")
    _line_with(out, MODEL, "1.5", "7.25")
    _line_with(out, "claude-sonnet-4-5", "3", "15", "0.3", "3.75")


def test_plugins_list_piped_has_one_line_per_kind(tmp_path: Path) -> None:
    out = piped(tmp_path, "plugins", "list")
    _line_with(out, "ccrouter.builtins.routing", "register_routing_rules, register_strategies")
    _line_with(
        out, "transformer: maxtoken, sampling, cleancache, customparams, reasoning, tooluse, enhancetool"
    )


def test_plugins_list_is_readable_on_an_80_column_terminal(tmp_path: Path) -> None:
    out = on_terminal(tmp_path, 80, "plugins", "list")
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    assert "…" not in out
    for name in ("providers", "vendors", "endpoints", "transformers", "routing", "observers"):
        _line_with(out, f"ccrouter.builtins.{name}")  # each name whole on its line
    for hook in (
        "register_providers",
        "register_transformers",
        "register_routing_rules",
        "register_observers",
    ):
        _line_with(out, hook)
    assert "built-in" in out
    assert "chat_completions" in out
