"""Who holds a port: nobody, a ccrouter gateway (which pid), or another program.

A gateway says who it is in ``GET /`` (``name: ccrouter`` and its ``pid``), so the CLI can tell the
gateway it just started from one that was already there (a foreground ``ccrouter serve``, another
config's daemon) and never silently talk to the wrong one.
"""

from __future__ import annotations

import errno
import os
import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson

from ccrouter.errors import CCRouterError

__all__ = [
    "BIND_ERRNOS",
    "Holder",
    "PortInUseError",
    "bind_error_message",
    "in_use_message",
    "listener",
    "probe",
]

# Processes looked at to name the one holding a port.
_MAX_PROCESSES = 10_000
# Errors from binding the listening socket that deserve one line instead of a traceback.
BIND_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


class PortInUseError(CCRouterError):
    """The port the gateway should listen on is taken."""


@dataclass(frozen=True)
class Holder:
    """What answers on a port. ``pid`` is set only for a ccrouter gateway."""

    ccrouter: bool
    pid: int | None = None
    version: str | None = None

    def describe(self) -> str:
        if not self.ccrouter:
            return "another program"
        return f"ccrouter (pid {self.pid})" if self.pid is not None else "a ccrouter of an older version"


def _connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def probe(host: str, port: int, timeout: float = 1.0) -> Holder | None:
    """None when nothing accepts connections on ``host:port``; else who answers ``GET /`` there."""
    target = _connect_host(host)
    try:
        with socket.create_connection((target, port), timeout=timeout):
            pass
    except OSError:
        return None
    url = f"http://[{target}]:{port}/" if ":" in target else f"http://{target}:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local: ignore proxies
    try:
        with opener.open(url, timeout=timeout) as response:
            body = orjson.loads(response.read(65536))
    except (OSError, ValueError):  # not HTTP, not JSON, an error status: someone else's server
        return Holder(ccrouter=False)
    if not isinstance(body, dict) or body.get("name") != "ccrouter":
        return Holder(ccrouter=False)
    pid = body.get("pid")
    version = body.get("version")
    return Holder(
        ccrouter=True,
        pid=pid if isinstance(pid, int) else None,
        version=version if isinstance(version, str) else None,
    )


def _socket_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on TCP ``port`` (Linux: /proc/net/tcp and tcp6)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text(encoding="ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local_address is HEXADDR:HEXPORT; state 0A is LISTEN (include/net/tcp_states.h).
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(fields[9])
    return inodes


def listener(port: int) -> tuple[int, str] | None:
    """(pid, program name) of the process listening on TCP ``port``, when this user may see it
    (Linux /proc; elsewhere, or for another user's process, None). At most ``_MAX_PROCESSES`` are
    looked at: this runs only to word an error."""
    inodes = _socket_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for count, proc in enumerate(Path("/proc").glob("[0-9]*")):
        if count >= _MAX_PROCESSES:
            break
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    name = (proc / "comm").read_text(encoding="utf-8", errors="replace").strip()
                    return int(proc.name), name or "?"
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return None


def in_use_message(host: str, port: int, holder: Holder | None) -> str:
    """``port 3456 on 127.0.0.1 is already in use by nginx (pid 812); use --port or stop it``."""
    by = ""
    if holder is not None and holder.ccrouter:
        by = f" by {holder.describe()}"
    elif holder is not None:
        found = listener(port)
        by = f" by {found[1]} (pid {found[0]})" if found is not None else " by another program"
    return f"port {port} on {host} is already in use{by}; use --port or stop it"


def bind_error_message(host: str, port: int, exc: OSError) -> str:
    """One line for a failed bind; asks who holds the port when it is taken."""
    if exc.errno == errno.EADDRINUSE:
        return in_use_message(host, port, probe(host, port))
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host} port {port}: {reason}"
