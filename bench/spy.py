"""Sample a running ccrouter with py-spy while the load runs, and summarise where its CPU goes.

py-spy's ``raw`` format is one collapsed stack per line (``frame;frame;... count``), each frame
``function (file:line)``.

Without ``native``, py-spy samples without stopping the process and sees Python frames only. It
cannot tell uvloop's wait in epoll (C code under ``run_app``) from work, so ``run_app``'s own time
is mostly the loop waiting. With ``native``, py-spy stops the process for each sample (slower, a
little distorting) and sees C frames too; samples waiting (in epoll, on a lock or queue, for the
GIL) are left out here, so the percentages are of CPU actually spent, and the summary adds the time
under each innermost Python frame (its own code plus the C it called: msgspec, orjson, syscalls).
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


def record(
    pid: int, seconds: float, out: Path, rate: int = 400, *, native: bool = False
) -> subprocess.Popen[bytes]:
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
    if native:  # py-spy reads native stacks only with the process stopped
        argv.remove("--nonblocking")
        argv.append("--native")
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


# Native frames where a sampled thread waits rather than works.
_WAITS = frozenset(
    {
        "epoll_pwait",
        "epoll_wait",
        "poll",
        "select",
        "PyThread_acquire_lock_timed",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "sem_wait",
        "sem_timedwait",
        "take_gil",
    }
)


def _waiting(frames: list[str]) -> bool:
    for frame in reversed(frames):
        name = frame.split(" (", 1)[0]
        if name.startswith("0x"):  # an unnamed libc frame: look at its caller
            continue
        return name in _WAITS
    return False


def summarise(raw: Path, top: int = 25, *, native: bool = False) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    under_python: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *rest = stack.split(";")  # --threads puts the thread first
        if native and _waiting(rest):
            continue
        frames = [_short(f) for f in rest] or [thread]
        total += count
        python = [f for f in rest if ".py:" in f]
        if python:
            under_python[_short(python[-1])] += count
        threads[thread] += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples (is the process busy? is ptrace allowed?)"
    busy = "busy, waits left out (native)" if native else "busy"
    lines = [f"{total} samples while {busy}; by thread:"]
    lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in threads.most_common(6)]
    lines.append(f"-- top {top} by own time")
    lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in own.most_common(top)]
    if native:
        lines.append(f"-- top {top} by innermost Python frame (its code and the C it called)")
        lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in under_python.most_common(top)]
    lines.append(f"-- top {top} by inclusive time (ccrouter frames)")
    ours = [(name, n) for name, n in inclusive.most_common() if "ccrouter/" in name]
    lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in ours[:top]]
    return "\n".join(lines)
