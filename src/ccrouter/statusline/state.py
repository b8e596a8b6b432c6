"""The state file the gateway writes when it starts: where a local client reaches it.

``<config dir>/statusline.json``, mode 0600 in the config folder (0700): the gateway's URL, the
ledger's SQLite path (None for PostgreSQL), the gateway's pid, and a read token. The token is made
fresh at each start and opens ``GET /api/sessions/{id}`` and ``GET /api/logs`` only (the admin token
opens every /api route): the statusline and ``ccrouter logs`` need no configured secret, and none is
written here, neither provider keys nor client keys nor the admin token. Standard library only: the
statusline reads it on every run.
"""

from __future__ import annotations

import json
import os
import time

__all__ = ["STATE_FILE", "GatewayState", "day_start", "local_url", "read_state", "state_path", "write_state"]

STATE_FILE = "statusline.json"
# A state file is a few hundred bytes; anything much larger is not ours.
_MAX_BYTES = 64 * 1024


class GatewayState:
    # A plain class: dataclasses (and typing) would cost this command ~25 ms of imports.
    __slots__ = ("ledger", "pid", "started_at", "token", "url")

    def __init__(self, url: str, token: str, ledger: str | None, pid: int, started_at: float) -> None:
        self.url = url
        self.token = token
        self.ledger = ledger
        self.pid = pid
        self.started_at = started_at

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "url": self.url,
                "token": self.token,
                "ledger": self.ledger,
                "pid": self.pid,
                "started_at": self.started_at,
            }
        ).encode()


def local_url(host: str, port: int) -> str:
    """The URL a local client uses for a gateway bound to ``host``: a wildcard bind is reached
    through loopback."""
    connect = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{connect}]:{port}" if ":" in connect else f"http://{connect}:{port}"


def state_path(config_dir: str) -> str:
    return os.path.join(config_dir, STATE_FILE)


def write_state(config_dir: str, state: GatewayState) -> str:
    """Write the state file atomically, readable by its owner only; returns its path."""
    os.makedirs(config_dir, mode=0o700, exist_ok=True)
    path = state_path(config_dir)
    temporary = f"{path}.{os.getpid()}.tmp"
    # Created 0600 (O_EXCL: never through a link someone left there), then renamed over the old one.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, state.to_json())
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def read_state(config_dir: str) -> GatewayState | None:
    """The state file of ``config_dir``, or None when it is missing, unreadable or not ours."""
    try:
        with open(state_path(config_dir), "rb") as handle:
            data: object = json.loads(handle.read(_MAX_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    url, token, ledger = data.get("url"), data.get("token"), data.get("ledger")
    pid, started = data.get("pid"), data.get("started_at")
    if not isinstance(url, str) or not isinstance(token, str):
        return None
    return GatewayState(
        url=url,
        token=token,
        ledger=ledger if isinstance(ledger, str) else None,
        pid=pid if isinstance(pid, int) else 0,
        started_at=float(started) if isinstance(started, int | float) else 0.0,
    )


def day_start(now: float) -> float:
    """Local midnight of the day ``now`` falls in: where "today" starts for the spend shown."""
    moment = time.localtime(now)
    return time.mktime((moment.tm_year, moment.tm_mon, moment.tm_mday, 0, 0, 0, 0, 0, -1))
