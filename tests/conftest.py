"""Suite-wide fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real ~/.ccrouter: the default config (and the ledger beside it)
    live in the test's own temporary directory."""
    monkeypatch.setenv("CCROUTER_CONFIG", str(tmp_path / "ccrouter-home" / "config.yaml"))
