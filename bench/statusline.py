#!/usr/bin/env python3
"""Wall time of ``ccrouter statusline`` as Claude Code runs it (``make bench-statusline``).

    .venv/bin/python bench/statusline.py             # 60 runs of each
    .venv/bin/python bench/statusline.py --runs 20

Starts ``ccrouter serve`` (the simulated provider, a fresh config folder, a free port), sends one
request under a Claude Code session id, then runs the console script with a sample statusline JSON
on stdin (``tests/fixtures/statusline_stdin.json``), first against the running gateway, then with the
gateway stopped (the ledger fallback). The console script is written the way pip writes it, for the
entry point in pyproject.toml (``ccrouter.cli.launch:main``), so the figure includes Python's start
and the script's own imports. ``python -c pass`` is measured in the same run, interleaved, as the
floor the machine's load sets. Prints p50/p95 of each and the ratios to that floor; exits non-zero
when the gateway path's p50 is over 50 ms or a run printed something other than the expected line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSION = "7d3f5c1e-2a4b-4c8d-9e0f-1a2b3c4d5e6f"
BUDGET_MS = 50.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def console_script(folder: Path) -> Path:
    """The ``ccrouter`` script as pip generates it for the project's entry point."""
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["ccrouter"]
    module, _, function = entry.partition(":")
    path = folder / "ccrouter"
    path.write_text(
        f"#!{sys.executable}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {function}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({function}())\n"
    )
    path.chmod(0o755)
    return path


def timed(argv: list[str], stdin: bytes, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
    return (time.perf_counter() - start) * 1000.0, done.stdout.decode().strip()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(runs: int, script: Path, stdin: bytes, env: dict[str, str]) -> tuple[list[float], list[float], set[str]]:
    base, ours, lines = [], [], set()
    for _ in range(runs):
        base.append(timed([sys.executable, "-c", "pass"], b"", env)[0])
        elapsed, line = timed([str(script), "statusline"], stdin, env)
        ours.append(elapsed)
        lines.add(line)
    return base, ours, lines


def report(name: str, base: list[float], ours: list[float]) -> None:
    b50, b95, o50, o95 = pct(base, 0.5), pct(base, 0.95), pct(ours, 0.5), pct(ours, 0.95)
    print(
        f"{name:<22} p50 {o50:6.1f} ms  p95 {o95:6.1f} ms   | python -c pass p50 {b50:5.1f} ms"
        f" p95 {b95:5.1f} ms | ratio p50 {o50 / b50:4.2f}x p95 {o95 / b95:4.2f}x"
        f" | over the floor p50 {o50 - b50:+.1f} ms (mean {statistics.fmean(ours):.1f} ms)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "cfg" / "config.yaml"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCROUTER_")}
        env.update(
            HOME=str(folder),
            CCROUTER_CONFIG=str(config),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        )
        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "ccrouter.cli.main", "serve", "--port", str(port), "--no-watch"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    opener.open(url + "/health", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or gateway.poll() is not None:
                        print("the gateway did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            body = {"model": "claude-sonnet-4-6", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
            request = urllib.request.Request(
                url + "/v1/messages",
                data=json.dumps(body).encode(),
                headers={"content-type": "application/json", "x-claude-code-session-id": SESSION},
            )
            opener.open(request, timeout=10).close()
            time.sleep(0.5)  # the ledger's writer commits (for the fallback below)
            script = console_script(folder)
            stdin = (ROOT / "tests" / "fixtures" / "statusline_stdin.json").read_bytes()
            timed([str(script), "statusline"], stdin, env)  # warm the page cache and .pyc files
            base, up, up_lines = measure(args.runs, script, stdin, env)
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(20)
        timed([str(script), "statusline"], stdin, env)
        base_down, down, down_lines = measure(args.runs, script, stdin, env)
    print(f"ccrouter statusline, {args.runs} runs each, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    report("gateway running (API)", base, up)
    report("gateway stopped (ledger)", base_down, down)
    print(f"lines: API {sorted(up_lines)}; ledger {sorted(down_lines)}")
    ok = (
        len(up_lines) == 1
        and next(iter(up_lines)).startswith("simulated,")
        and all(line.endswith("(ledger)") for line in down_lines)
        and pct(up, 0.5) <= BUDGET_MS
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
