"""Sample a running ccrouter with py-spy while the load runs, and summarise where its CPU goes.

py-spy's ``raw`` format is one collapsed stack per line (``frame;frame;... count``), each frame
``function (file:line)``. Idle samples (the loop waiting in epoll) are left out by py-spy, so the
percentages are of the time the gateway was busy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 400) -> subprocess.Popen[bytes]:
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    argv = [
        tool,
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(rate),
        "--duration",
        str(int(seconds)),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
        "--threads",
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(raw: Path, top: int = 25) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *rest = stack.split(";")  # --threads puts the thread first
        frames = [_short(f) for f in rest] or [thread]
        total += count
        threads[thread] += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples (is the process busy? is ptrace allowed?)"
    lines = [f"{total} samples while busy; by thread:"]
    lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in threads.most_common(6)]
    lines.append(f"-- top {top} by own time")
    lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append(f"-- top {top} by inclusive time (ccrouter frames)")
    ours = [(name, n) for name, n in inclusive.most_common() if "ccrouter/" in name]
    lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in ours[:top]]
    return "\n".join(lines)
