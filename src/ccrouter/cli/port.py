"""Who holds a port: nobody, a ccrouter gateway (which pid), or another program.

A gateway says who it is in ``GET /`` (``name: ccrouter`` and its ``pid``), so the CLI can tell the
gateway it just started from one that was already there (a foreground ``ccrouter serve``, another
config's daemon) and never silently talk to the wrong one.
"""

from __future__ import annotations

import errno
import socket
import urllib.request
from dataclasses import dataclass

import orjson

from ccrouter.errors import CCRouterError

__all__ = ["BIND_ERRNOS", "Holder", "PortInUseError", "bind_error_message", "in_use_message", "probe"]

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
        return f"ccrouter pid {self.pid}" if self.pid is not None else "a ccrouter of an older version"


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


def in_use_message(host: str, port: int, holder: Holder | None) -> str:
    by = f" (by {holder.describe()})" if holder is not None else ""
    return f"port {port} on {host} is already in use{by}; use --port or stop it"


def bind_error_message(host: str, port: int, exc: OSError) -> str:
    """One line for a failed bind; asks who holds the port when it is taken."""
    if exc.errno == errno.EADDRINUSE:
        return in_use_message(host, port, probe(host, port))
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host} port {port}: {reason}"
