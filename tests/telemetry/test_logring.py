"""The in-memory ring of recent log records: its bounds and paging, and what ``setup_logging`` puts
in it (the redacted JSON records, in both log formats)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from ccrouter.config import Settings
from ccrouter.telemetry.logring import LogRing

KEY = "sk-provider-ring-0123456789abcdef"

Capture = Callable[..., io.StringIO]


def _line(n: int, level: str = "info", request_id: str | None = None, pad: int = 0) -> str:
    return orjson.dumps(
        {"event": f"e{n}", "level": level, "request_id": request_id, "pad": "x" * pad}
    ).decode()


def _events(ring: LogRing, **query: Any) -> list[str]:
    return [record["event"] for _, record in ring.read(**query).records]


def test_bounded_in_count_and_in_characters() -> None:
    ring = LogRing(max_records=3, max_chars=10_000)
    for n in range(5):
        ring.add(_line(n))
    assert len(ring) == 3
    assert _events(ring, limit=10) == ["e2", "e3", "e4"]
    big = LogRing(max_records=100, max_chars=2_500)
    for n in range(10):
        big.add(_line(n, pad=1_000))
    assert len(big) == 2
    assert _events(big, limit=10) == ["e8", "e9"]
    big.add(_line(99, pad=5_000))  # one record larger than the bound: kept alone
    assert _events(big, limit=10) == ["e99"]


def test_paging_and_filters() -> None:
    ring = LogRing()
    for n in range(1, 11):
        ring.add(_line(n, "warning" if n % 3 == 0 else "info", f"r{n % 2}"))
    ring.add("not json")
    page = ring.read(limit=2)
    assert [seq for seq, _ in page.records] == [9, 10]
    assert page.next_seq == 12
    page = ring.read(since=4, limit=3)
    assert [seq for seq, _ in page.records] == [4, 5, 6]
    assert page.next_seq == 7
    assert ring.read(since=12, limit=5).records == []
    assert ring.read(since=12, limit=5).next_seq == 12
    assert _events(ring, level="warning", limit=100) == ["e3", "e6", "e9"]
    assert _events(ring, request_id="r1", level="warning", limit=100) == ["e3", "e9"]
    # a filter scans past what it skips: the next poll starts after the records looked at
    page = ring.read(since=1, limit=100, request_id="none")
    assert page.records == []
    assert page.next_seq == 12
    # since past the end (a seq of the gateway before a restart): from the end on
    assert ring.read(since=500, limit=5).next_seq == 12
    # since older than the oldest kept: from the oldest
    small = LogRing(max_records=2)
    for n in range(5):
        small.add(_line(n))
    assert [seq for seq, _ in small.read(since=1, limit=10).records] == [4, 5]
    assert ring.read(limit=0).records == []
    assert ring.read(limit=0).next_seq == 12


def _settings(log_format: str) -> Settings:
    return Settings.model_validate(
        {
            "providers": [{"name": "up", "type": "anthropic", "api_key": KEY}],
            "router": {"default": "up,m"},
            "logging": {"format": log_format},
        }
    )


def _log_some() -> None:
    structlog.stdlib.get_logger("ccrouter.test").info(
        "upstream said", detail=f"bad key {KEY}", request_id="r-1"
    )
    try:
        raise ValueError(f"echoed {KEY}")
    except ValueError:
        logging.getLogger("ccrouter.test").exception("failed")


def test_setup_logging_keeps_redacted_json_records_in_both_formats(log_capture: Capture) -> None:
    for log_format in ("json", "console"):
        ring = LogRing()
        out = log_capture(_settings(log_format), ring=ring)
        _log_some()
        records = [record for _, record in ring.read(limit=10).records]
        assert [r["event"] for r in records] == ["upstream said", "failed"], log_format
        first, second = records
        assert first["request_id"] == "r-1"
        assert first["level"] == "info"
        assert "timestamp" in first
        assert first["detail"].startswith("bad key ")
        assert KEY not in first["detail"]
        assert second["level"] == "error"
        assert "ValueError: echoed" in second["exception"]
        text = orjson.dumps(records).decode()
        assert KEY not in text
        assert KEY not in out.getvalue()
        if log_format == "json":  # the very lines the stream got
            assert [orjson.loads(line) for line in out.getvalue().splitlines()] == records
