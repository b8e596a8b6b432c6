"""`ccrouter costs`, `costs import-claude-code` and `prices update`, reading a real SQLite ledger."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ccrouter.cli.main import app
from ccrouter.store import UsageRecord
from ccrouter.store.sqlite import SQLiteStore
from ccrouter.store.transcripts import read_transcripts, session_totals

FIXTURE = Path(__file__).parent.parent / "fixtures" / "claude_transcript.jsonl"
SESSION = "5f0c7a52-8d1e-4c55-9a63-0b8f3f2d1a10"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "providers: [{name: up, type: anthropic, models: [claude-sonnet-4-5]}]\n"
        "router: {default: 'up,claude-sonnet-4-5'}\n"
    )
    now = time.time()
    rows = [
        UsageRecord(
            ts=now - 5,
            request_id="a",
            endpoint="messages",
            status=200,
            provider="up",
            model="claude-sonnet-4-5",
            session_id=SESSION,
            input_tokens=100,
            output_tokens=10,
            cost_picos=450_000_000,
        ),
        UsageRecord(
            ts=now - 4,
            request_id="b",
            endpoint="messages",
            status=200,
            provider="up",
            model="deepseek-chat",
            session_id="other",
            input_tokens=1000,
            output_tokens=100,
            cost_picos=322_000_000,
        ),
    ]

    async def write() -> None:
        store = SQLiteStore(tmp_path / "usage.db")
        await store.open()
        for row in rows:
            store.add(row)
        await store.close()

    asyncio.run(write())
    return path


def test_transcript_reader_dedupes_streamed_lines_and_skips_synthetic() -> None:
    items = read_transcripts(FIXTURE)
    assert [(i.model, i.usage.output_tokens) for i in items] == [
        ("claude-sonnet-4-5-20250929", 180),
        ("claude-sonnet-4-5-20250929", 25),
        ("claude-haiku-4-5-20251001", 10),
    ]
    (total,) = session_totals(items)
    assert (total.session_id, total.messages) == (SESSION, 3)
    usage = total.usage
    assert (usage.input_tokens, usage.output_tokens) == (552, 215)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (20000, 20300)


def test_import_claude_code_sets_both_side_by_side(config: Path, tmp_path: Path) -> None:
    folder = tmp_path / "projects" / "-home-dev-project"
    folder.mkdir(parents=True)
    (folder / f"{SESSION}.jsonl").write_bytes(FIXTURE.read_bytes())
    result = CliRunner().invoke(
        app,
        [
            "costs",
            "import-claude-code",
            str(tmp_path / "projects"),
            "--config",
            str(config),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    (row,) = orjson.loads(result.output)
    assert row["session"] == SESSION
    assert row["cc_messages"] == 3
    # Sonnet 4.5: 52*3 + 205*15 + 20000*0.3 + 20300*3.75 = 85,356 per million; Haiku 4.5: 500*1 + 10*5.
    assert row["cc_cost_usd_at_anthropic_prices"] == "0.085906"
    assert (row["gateway_requests"], row["gateway_cost_usd"]) == (1, "0.00045")
    table = CliRunner().invoke(app, ["costs", "import-claude-code", str(FIXTURE), "--config", str(config)])
    assert table.exit_code == 0, table.output
    assert "3 assistant messages in 1 sessions" in table.output


def test_costs_tables_and_formats(config: Path) -> None:
    result = CliRunner().invoke(app, ["costs", "--config", str(config)])
    assert result.exit_code == 0, result.output
    for heading in ("spending", "by provider and model", "top sessions", "today", "this month", SESSION[:8]):
        assert heading in result.output
    csv_out = CliRunner().invoke(app, ["costs", "--config", str(config), "--by", "model", "--format", "csv"])
    assert csv_out.output.splitlines() == [
        "model,requests,errors,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,estimated,"
        "unpriced,cost_usd",
        "claude-sonnet-4-5,1,0,100,10,0,0,0,0,0.00045",
        "deepseek-chat,1,0,1000,100,0,0,0,0,0.000322",
    ]
    bad = CliRunner().invoke(app, ["costs", "--config", str(config), "--by", "colour"])
    assert bad.exit_code == 1
    assert "unknown group 'colour'" in bad.output


def test_prices_update_installs_a_checked_table(tmp_path: Path) -> None:
    config = tmp_path / "cfg" / "config.yaml"
    good = tmp_path / "new.yaml"
    good.write_text("updated: '2027-02-01'\nmodels:\n  m: {input: 1, output: 2}\n")
    result = CliRunner().invoke(app, ["prices", "update", str(good), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cfg" / "prices.yaml").read_text() == good.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m: {input: 1}\n")
    refused = CliRunner().invoke(app, ["prices", "update", str(bad), "--config", str(config)])
    assert refused.exit_code == 1
    assert "needs 'output'" in refused.output
    assert (tmp_path / "cfg" / "prices.yaml").read_text() == good.read_text()
