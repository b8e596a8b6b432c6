"""``run_checks`` in-process, under blockbuster: no check blocks the event loop; CLAUDE_CONFIG_DIR."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from ccrouter.doctor import DoctorContext, claude_paths, run_checks
from ccrouter.testing import FakeUpstream

KEY = "sk-doctor-inprocess-key-01234"


def write_files(config: Path, document: dict[str, Any], claude_dir: Path) -> None:
    config.write_text(yaml.safe_dump(document))
    claude_dir.mkdir()
    (claude_dir / ".claude.json").write_bytes(orjson.dumps({"hasCompletedOnboarding": True}))
    (claude_dir / "settings.json").write_bytes(orjson.dumps({"env": {"ANTHROPIC_BASE_URL": "http://x:1"}}))


async def test_checks_do_not_block_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    async with FakeUpstream(api_key=KEY) as fake:
        config = tmp_path / "config.yaml"
        document = {
            "server": {"port": 0},
            "providers": [
                {
                    "name": "f",
                    "type": "openai",
                    "base_url": f"{fake.url}/v1",
                    "api_key": "${K}",
                    "models": ["gpt-4o"],
                }
            ],
            "router": {"default": "f,gpt-4o"},
            "state": {"redis_url": "redis://127.0.0.1:6379/0"},
            "store": {"url": "postgresql://postgres@127.0.0.1:5432/test"},
        }
        claude_dir = tmp_path / "claude-config"
        await asyncio.to_thread(write_files, config, document, claude_dir)
        ctx = DoctorContext(
            config=config,
            environ={"K": KEY, "CLAUDE_CONFIG_DIR": str(claude_dir)},
            home=tmp_path,
            timeout_s=3,
        )
        checks = {check.name: check for check in await run_checks(ctx)}
    assert claude_paths(ctx) == (claude_dir / "settings.json", claude_dir / ".claude.json")
    assert checks["provider f"].status == "ok"
    assert checks["Claude Code onboarding"].status == "ok"  # read from CLAUDE_CONFIG_DIR
    assert checks["Claude Code settings"].status == "warn"
    assert "http://x:1, not this gateway" in checks["Claude Code settings"].detail
    assert checks["Claude Code"].status == "warn"
    assert checks["Redis redis://127.0.0.1:6379/0"].status == "ok"
    assert checks["PostgreSQL postgresql://127.0.0.1:5432/test"].status == "ok"
    assert checks["port 127.0.0.1:0"].status == "ok"
