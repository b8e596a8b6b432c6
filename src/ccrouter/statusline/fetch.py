"""Where the statusline gets a session's summary: the gateway's session API, else the ledger file.

The API is asked over a raw socket (``http.client`` would cost ~20 ms of imports) with one deadline
for connect, send and read; the ledger (SQLite, the gateway's default) is opened read-only with a
short busy timeout. Both give the JSON of ``ccrouter.statusline.summary``, or None. Standard library
only; ``sqlite3`` is imported only when the gateway did not answer.
"""

from __future__ import annotations

import json
import socket
import time

from ccrouter.statusline.summary import last_request, today

__all__ = ["MAX_RESPONSE_BYTES", "FetchError", "from_gateway", "from_ledger", "parse_url"]

# A session summary is under 2 KB; the reader stops well past that.
MAX_RESPONSE_BYTES = 256 * 1024


class FetchError(Exception):
    """The gateway did not give a usable answer (refused, timed out, malformed)."""


def parse_url(url: str) -> tuple[str, int, str]:
    """``http://host:port/prefix`` -> (host, port, prefix). Plain HTTP only: the gateway is local."""
    rest = url.strip()
    if rest.startswith("http://"):
        rest = rest[len("http://") :]
    elif "://" in rest:
        raise ValueError(f"{url!r}: only http:// URLs are supported")
    hostport, slash, path = rest.partition("/")
    prefix = ("/" + path).rstrip("/") if slash else ""
    if hostport.startswith("["):  # [::1]:3456
        host, _, tail = hostport[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise ValueError(f"{url!r}: no host")
    try:
        port = int(port_text) if port_text else 80
    except ValueError:
        raise ValueError(f"{url!r}: bad port {port_text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"{url!r}: bad port {port}")
    return host, port, prefix


def from_gateway(url: str, session_id: str, token: str, timeout: float) -> tuple[int, dict[str, object]]:
    """GET ``/api/sessions/{session_id}``: (status, JSON body). Raises ``FetchError``."""
    try:
        host, port, prefix = parse_url(url)
    except ValueError as exc:
        raise FetchError(str(exc)) from None
    deadline = time.monotonic() + timeout
    head = (
        f"GET {prefix}/api/sessions/{session_id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(head.encode("latin-1"))
            raw = _read_response(sock, deadline)
    except (OSError, UnicodeError) as exc:  # refused, timed out, reset: the gateway is not answering
        raise FetchError(type(exc).__name__) from None
    return _parse_response(raw)


def _read_response(sock: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    head_seen = False
    # The whole response's size once its head says (Content-Length); else read until the gateway
    # closes (the request asked for Connection: close).
    expected: int | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise FetchError("response too large")
        if not head_seen:
            data = b"".join(chunks)
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                head_seen = True
                length = _content_length(data[:end])
                expected = None if length is None else end + 4 + length
        if expected is not None and size >= expected:
            break
    return b"".join(chunks)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def _parse_response(raw: bytes) -> tuple[int, dict[str, object]]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        raise FetchError("not an HTTP response")
    try:
        status = int(status_line[1])
        data = json.loads(body) if body else {}
    except ValueError:
        raise FetchError("not a JSON answer") from None
    if not isinstance(data, dict):
        raise FetchError("not a JSON object")
    return status, data


_COLUMNS = "ts, provider, model, scenario, status, fallbacks, output_tokens, latency_ms, ttfb_ms, estimated"
_LAST = (
    f"SELECT {_COLUMNS} FROM usage WHERE session_id = ? AND status < 400 AND provider IS NOT NULL"
    " ORDER BY ts DESC, id DESC LIMIT 1"
)
_SUMS = (
    "SELECT COUNT(*), COALESCE(SUM(cost_picos), 0),"
    " COALESCE(SUM(CASE WHEN cost_picos IS NULL THEN 1 ELSE 0 END), 0)"
    " FROM usage WHERE session_id = ? AND ts >= ?"
)


def from_ledger(path: str, session_id: str, since: float, timeout: float) -> dict[str, object] | None:
    """The session's summary from the SQLite ledger at ``path`` (None when the file is missing or
    unreadable, or holds nothing of the session). No cooling state: only a running gateway knows it."""
    import sqlite3

    # A URI, so that the file is opened read-only and never created; ?, # and % must be escaped in it.
    quoted = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    try:
        conn = sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error:
        return None
    try:
        last = conn.execute(_LAST, (session_id,)).fetchone()
        requests, picos, unpriced = conn.execute(_SUMS, (session_id, since)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if last is None and not requests:
        return None
    return {
        "session_id": session_id,
        "source": "ledger",
        "last_request": None if last is None else _last_from_row(last),
        "today": today(since, int(requests), int(picos), int(unpriced)),
        "cooling": [],
    }


def _last_from_row(row: tuple[object, ...]) -> dict[str, object]:
    ts, provider, model, scenario, status, fallbacks, output, latency_ms, ttfb_ms, estimated = row
    passed: list[str] = []
    if isinstance(fallbacks, str):
        try:
            failed = json.loads(fallbacks)
        except ValueError:
            failed = []
        if isinstance(failed, list):
            passed = [f"{f.get('provider')},{f.get('model')}" for f in failed if isinstance(f, dict)]
    return last_request(
        ts=float(ts) if isinstance(ts, int | float) else 0.0,
        provider=str(provider),
        model=str(model),
        scenario=scenario if isinstance(scenario, str) else None,
        status=status if isinstance(status, int) else 0,
        passed_over=passed,
        output_tokens=output if isinstance(output, int) else 0,
        duration_s=latency_ms / 1000.0 if isinstance(latency_ms, int | float) else None,
        first_byte_s=ttfb_ms / 1000.0 if isinstance(ttfb_ms, int | float) else None,
        estimated=bool(estimated),
    )
