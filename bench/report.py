"""Figures from the client's tallies, the table with every figure as a ratio to the floor, and the
issue's targets checked against them."""

from __future__ import annotations

import math
from typing import Any

from common import TICK_MS, pct

# (key, header, unit) of the table's columns; ratios are target / floor ("rps" too: higher is better).
COLUMNS = [
    ("added_p50_ms", "+p50", "ms"),
    ("added_p99_ms", "+p99", "ms"),
    ("cpu_ms", "cpu/req", "ms"),
    ("added_ttfb_ms", "+ttfb", "ms"),
    ("added_stream_ms", "+stream", "ms"),
    ("rps16", "rps@16", ""),
    ("rss_mb", "RSS", "MB"),
    ("startup_s", "start", "s"),
]
_NO_RATIO = {"rss_mb", "startup_s"}


def _nan_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value


def summarise(targets: list[dict[str, Any]], tallies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per target: latency percentiles, added latency vs its direct baseline, CPU per request..."""
    out: dict[str, dict[str, Any]] = {}
    for target in targets:
        t = tallies[target["name"]]
        base = tallies[target["baseline"]]
        measured = bool(target["pid"])
        n, sn = len(t["lat_ms"]), len(t["stream_ms"])
        row: dict[str, Any] = {
            "label": target["label"],
            "kind": target["kind"],
            "n": n,
            "errors": t["errors"],
            "warmup_errors": t["warmup_errors"],
            "first_error": t["first_error"],
            "p50_ms": pct(t["lat_ms"], 50),
            "p99_ms": pct(t["lat_ms"], 99),
            "added_p50_ms": pct(t["lat_ms"], 50) - pct(base["lat_ms"], 50),
            # Over the direct call's median, not its p99: one slow direct request would otherwise
            # shrink every target's +p99 and make the ratios to the floor swing from run to run.
            "added_p99_ms": pct(t["lat_ms"], 99) - pct(base["lat_ms"], 50),
            "cpu_ms": t["cpu_ticks"] * TICK_MS / n if measured and n else None,
            "ttfb_p50_ms": pct(t["ttfb_ms"], 50),
            "added_ttfb_ms": pct(t["ttfb_ms"], 50) - pct(base["ttfb_ms"], 50),
            "added_ttfb_p99_ms": pct(t["ttfb_ms"], 99) - pct(base["ttfb_ms"], 50),
            "stream_p50_ms": pct(t["stream_ms"], 50),
            "added_stream_ms": pct(t["stream_ms"], 50) - pct(base["stream_ms"], 50),
            "stream_cpu_ms": t["stream_cpu_ticks"] * TICK_MS / sn if measured and sn else None,
            "rps16": t["tput_n"] / t["tput_s"] if t["tput_s"] else None,
            "tput_p50_ms": pct(t["tput_lat_ms"], 50),
            "tput_p99_ms": pct(t["tput_lat_ms"], 99),
            "tput_cpu_ms": t["tput_cpu_ticks"] * TICK_MS / t["tput_n"] if measured and t["tput_n"] else None,
            "rss_mb": t["rss_end_mb"] if measured else None,
            "rss_start_mb": target.get("rss_start_mb"),
            "startup_s": target.get("startup_s"),
            "pids": t["pids"],
        }
        if target["kind"] == "direct":
            # The baselines themselves: their absolute times, which every "+" figure is measured from.
            row.update(
                added_p50_ms=row["p50_ms"],
                added_p99_ms=row["p99_ms"],
                added_ttfb_ms=row["ttfb_p50_ms"],
                added_stream_ms=row["stream_p50_ms"],
            )
        out[target["name"]] = {k: _nan_none(v) if isinstance(v, float) else v for k, v in row.items()}
    floor = out.get("floor")
    for row in out.values():
        row["ratio"] = {
            key: None if row["kind"] == "direct" else _ratio(row.get(key), floor.get(key) if floor else None)
            for key, _, _ in COLUMNS
            if key not in _NO_RATIO
        }
    return out


def _ratio(value: float | None, floor: float | None) -> float | None:
    # Below 20 us the floor's figure is noise; a ratio to it would mean nothing.
    if value is None or floor is None or floor < 0.02:
        return None
    return value / floor


def _cell(value: float | None, ratio: float | None, key: str) -> str:
    if value is None:
        return "-"
    digits = 0 if key in ("rps16", "rss_mb") else 2
    text = f"{value:.{digits}f}"
    if ratio is not None:
        text += f" ({ratio:.1f}x)" if ratio < 100 else f" ({ratio:.0f}x)"
    return text


def table(summary: dict[str, dict[str, Any]]) -> str:
    name_width = max(len(name) for name in summary) + 1
    widths = [14 if key not in _NO_RATIO else 8 for key, _, _ in COLUMNS]
    head = f"{'target':<{name_width}}" + "".join(
        f"{title + (' ' + unit if unit else ''):>{w}}"
        for (_, title, unit), w in zip(COLUMNS, widths, strict=True)
    )
    lines = [head, "-" * len(head)]
    for name, row in summary.items():
        cells = "".join(
            f"{_cell(row.get(key), row['ratio'].get(key), key):>{w}}"
            for (key, _, _), w in zip(COLUMNS, widths, strict=True)
        )
        flag = f"  !{row['errors']} errors" if row["errors"] else ""
        lines.append(f"{name:<{name_width}}{cells}{flag}")
    return "\n".join(lines)


def checks(summary: dict[str, dict[str, Any]]) -> list[tuple[str, bool | None, str]]:
    """The issue's targets: (what, passed or None when not measured, the figure)."""
    out: list[tuple[str, bool | None, str]] = []
    a2o, a2a = summary.get("ccrouter a2o"), summary.get("ccrouter a2a")

    def ratio_check(what: str, row: dict[str, Any] | None, key: str, limit: float) -> None:
        value = row["ratio"].get(key) if row else None
        out.append(
            (what, None if value is None else value <= limit, "-" if value is None else f"{value:.2f}x")
        )

    ratio_check("a2o +p50 <= 3x floor", a2o, "added_p50_ms", 3.0)
    ratio_check("a2o +p99 <= 3x floor", a2o, "added_p99_ms", 3.0)
    ratio_check("a2o cpu/req <= 3x floor", a2o, "cpu_ms", 3.0)
    ratio_check("a2o +ttfb <= 3x floor", a2o, "added_ttfb_ms", 3.0)
    ratio_check("a2a +p50 <= 1.5x floor", a2a, "added_p50_ms", 1.5)
    ratio_check("a2a cpu/req <= 1.5x floor", a2a, "cpu_ms", 1.5)
    for name in ("ccrouter a2o", "ccrouter a2a", "ccrouter o2o"):
        row = summary.get(name)
        if row is None:
            continue
        start, rss = row.get("startup_s"), row.get("rss_mb")
        out.append(
            (
                f"{name[9:]} startup <= 1.5 s",
                None if start is None else start <= 1.5,
                "-" if start is None else f"{start:.2f} s",
            )
        )
        out.append(
            (
                f"{name[9:]} RSS <= 120 MB",
                None if rss is None else rss <= 120,
                "-" if rss is None else f"{rss:.0f} MB",
            )
        )
    for peer in ("litellm a2o", "ccr a2o"):
        row = summary.get(peer)
        if row is None or a2o is None:
            continue
        for key, what in (("added_p50_ms", "+p50"), ("cpu_ms", "cpu/req")):
            mine, theirs = a2o.get(key), row.get(key)
            if not mine or theirs is None or mine <= 0:
                out.append((f"15x better than {peer} on {what}", None, "-"))
                continue
            factor = theirs / mine
            out.append((f"15x better than {peer} on {what}", factor >= 15, f"{factor:.1f}x"))
    return out


def checks_text(results: list[tuple[str, bool | None, str]]) -> str:
    marks = {True: "PASS", False: "FAIL", None: "n/a "}
    return "\n".join(f"  {marks[ok]}  {what:<36} {figure}" for what, ok, figure in results)
