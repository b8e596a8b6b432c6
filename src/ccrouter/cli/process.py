"""The background gateway: spawn it detached, find it through its pid file, probe it, stop it.

The pid file (``<config dir>/ccrouter.pid``) is JSON: pid, host, port, start time, config path. A pid
file whose process is gone, or whose pid now belongs to another program, is stale and removed.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from ccrouter.errors import CCRouterError

__all__ = [
    "DaemonError",
    "PidInfo",
    "base_url",
    "format_duration",
    "get_health",
    "is_alive",
    "log_path",
    "pid_path",
    "running",
    "spawn_gateway",
    "stop_gateway",
]

START_TIMEOUT_S = 10.0
# Past server.drain_s's default (30 s): a gateway finishing a stream is not killed mid-way.
STOP_TIMEOUT_S = 40.0


class DaemonError(CCRouterError):
    """The background gateway could not be started or stopped."""


@dataclass(frozen=True)
class PidInfo:
    pid: int
    host: str
    port: int
    started_at: float
    config: str

    @property
    def url(self) -> str:
        return base_url(self.host, self.port)


def pid_path(config_dir: Path) -> Path:
    return config_dir / "ccrouter.pid"


def log_path(config_dir: Path) -> Path:
    return config_dir / "ccrouter.log"


def base_url(host: str, port: int) -> str:
    """The URL a local client uses: a wildcard bind is reached through loopback."""
    from ccrouter.statusline.state import local_url

    return local_url(host, port)


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def is_alive(pid: int) -> bool:
    if pid <= 0:  # 0 and negatives name process groups for waitpid/kill, never one process
        return False
    try:
        # Reap it first if it is our own exited child (a zombie still answers kill(pid, 0)).
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _is_ours(pid: int) -> bool:
    """Whether ``pid`` runs ccrouter (guards against a recycled pid); assumed so without /proc."""
    try:
        return b"ccrouter" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except PermissionError:
        return True


def _read_pid_file(path: Path) -> PidInfo | None:
    try:
        data = orjson.loads(path.read_bytes())
        return PidInfo(
            pid=int(data["pid"]),
            host=str(data["host"]),
            port=int(data["port"]),
            started_at=float(data["started_at"]),
            config=str(data.get("config", "")),
        )
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return PidInfo(pid=0, host="", port=0, started_at=0.0, config="")  # unreadable: treated as stale


def running(config_dir: Path) -> PidInfo | None:
    """The live gateway recorded in ``config_dir``'s pid file; a stale pid file is removed."""
    path = pid_path(config_dir)
    info = _read_pid_file(path)
    if info is None:
        return None
    if info.pid > 0 and is_alive(info.pid) and _is_ours(info.pid):
        return info
    path.unlink(missing_ok=True)
    return None


def get_health(
    url: str, timeout: float = 2.0, path: str = "/health", *, token: str | None = None
) -> dict[str, Any] | None:
    """GET ``url`` + ``path`` (``/health``, ``/health/providers``); the parsed body on 200, else None.
    ``token``: sent as ``Authorization: Bearer`` (the admin token, which ``/health/providers`` needs
    when the gateway protects it). Ignores proxy variables: it is local."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    headers = {"authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{url}{path}", headers=headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            if response.status != 200:
                return None
            body = orjson.loads(response.read())
    except (OSError, orjson.JSONDecodeError):  # URLError and timeouts are OSErrors
        return None
    return body if isinstance(body, dict) else None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _spawn(argv: list[str], log: Path) -> int:
    # posix_spawn with setsid: detached from our terminal and session, and no Popen object whose
    # finalizer would warn that the child is "still running" (it is meant to).
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"--- ccrouter start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)


def spawn_gateway(config: Path, host: str, port: int, *, timeout: float = START_TIMEOUT_S) -> PidInfo:
    """Start ``ccrouter serve`` in the background and wait until it answers ``GET /`` as itself (its
    own pid, not another gateway already on the port)."""
    from ccrouter.cli.port import PortInUseError, in_use_message, probe

    if not hasattr(os, "posix_spawn"):
        raise DaemonError("background mode needs a POSIX system; run `ccrouter serve` instead")
    config_dir = config.parent
    port = port or _free_port(host)
    argv = [sys.executable, "-m", "ccrouter.cli.main", "serve", "--config", str(config)]
    argv += ["--host", host, "--port", str(port)]
    pid = _spawn(argv, log_path(config_dir))
    info = PidInfo(pid=pid, host=host, port=port, started_at=time.time(), config=str(config))
    pid_file = pid_path(config_dir)
    pid_file.write_bytes(orjson.dumps(asdict(info)))
    deadline = time.monotonic() + timeout
    holder = None
    while time.monotonic() < deadline:
        if not is_alive(pid):
            pid_file.unlink(missing_ok=True)
            holder = probe(host, port, timeout=0.5)
            if holder is not None:  # the port was taken: that is why it exited
                raise PortInUseError(f"the gateway could not start: {in_use_message(host, port, holder)}")
            tail = _log_tail(log_path(config_dir))
            raise DaemonError(f"the gateway exited during startup; end of {log_path(config_dir)}:\n{tail}")
        holder = probe(host, port, timeout=0.5)
        if holder is not None and holder.pid == pid:
            return info
        time.sleep(0.1)
    stop_gateway(info, config_dir)
    if holder is not None:
        raise PortInUseError(f"the gateway could not start: {in_use_message(host, port, holder)}")
    log = log_path(config_dir)
    raise DaemonError(f"the gateway did not answer on {info.url} within {timeout:g} s; see {log}")


def stop_gateway(info: PidInfo, config_dir: Path, *, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, wait, SIGKILL after ``timeout``; remove the pid file. True if it had to be killed."""
    killed = False
    try:
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if is_alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
            killed = True
            deadline = time.monotonic() + 2.0
            while is_alive(info.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    except ProcessLookupError:
        pass
    pid_path(config_dir).unlink(missing_ok=True)
    return killed
