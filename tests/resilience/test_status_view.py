"""``ccrouter status`` renders the live routing state that ``/health/providers`` returns."""

from __future__ import annotations

from rich.console import Console

from ccrouter.cli.daemon import provider_state_table


def test_provider_state_table() -> None:
    body = {
        "strategy": "intelligent",
        "providers": [
            {
                "provider": "a",
                "model": "m",
                "state": "down",
                "breaker": "open",
                "headroom": 0.25,
                "cooldown_s": 12.5,
                "requests_per_minute": 40.0,
                "limits": {"rpm": 50, "tpm": None, "rpd": None},
                "latency_ewma_s": 1.234,
                "health_score": 0.0,
            },
            {
                "provider": "b",
                "model": "m",
                "state": "ok",
                "breaker": "closed",
                "headroom": 1.0,
                "cooldown_s": 0.0,
                "requests_per_minute": 3.0,
                "limits": {},
                "latency_ewma_s": None,
                "health_score": 0.91,
            },
        ],
    }
    console = Console(record=True, width=160, color_system=None)
    console.print(provider_state_table(body))
    text = console.export_text()
    assert "routing: intelligent" in text
    lines = [line.split() for line in text.splitlines() if line.strip().startswith(("a,m", "b,m"))]
    assert lines == [
        ["a,m", "down", "open", "25%", "12.5s", "40", "rpm=50", "1.23s", "0.00"],
        ["b,m", "ok", "closed", "100%", "0.0s", "3", "-", "-", "0.91"],
    ]
