"""``ccrouter statusline``: read Claude Code's statusline JSON on stdin, print one line, exit 0.

Where it looks, in order: ``--url``, ``$CCROUTER_URL``, else the URL in the gateway's state file
(``ccrouter.statusline.state``, in the config folder of ``--config``, ``$CCROUTER_CONFIG`` or
``~/.ccrouter``), with the state file's read token (or ``$CCROUTER_TOKEN``, e.g. a remote gateway's
admin token); the API gets 25 ms (``$CCROUTER_STATUSLINE_TIMEOUT_MS``). When it does not answer,
the ledger file is read (the state file's path, else ``usage.db`` in the config folder). Whatever
goes wrong, the command prints one short line and exits 0: Claude Code blanks the status bar on a
non-zero exit, and a broken statusline must not get in the way. Standard library only
(see ``ccrouter.statusline``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence

from ccrouter.statusline.fetch import FetchError, from_gateway, from_ledger
from ccrouter.statusline.line import DEFAULT_FORMAT, TemplateError, fields_for, render
from ccrouter.statusline.state import day_start, read_state
from ccrouter.statusline.summary import valid_session_id

__all__ = [
    "API_TIMEOUT_S",
    "LEDGER_TIMEOUT_S",
    "USAGE",
    "Options",
    "UsageError",
    "config_dir",
    "main",
    "parse_args",
    "read_stdin",
    "status_line",
]

API_TIMEOUT_S = 0.025
LEDGER_TIMEOUT_S = 0.02
# Claude Code writes its JSON at once and closes stdin; this bounds a writer that does not.
STDIN_TIMEOUT_S = 0.1
MAX_STDIN_BYTES = 1024 * 1024
USAGE = "usage: ccrouter statusline [--format TEMPLATE] [--url URL] [--config PATH]"


class UsageError(Exception):
    """Bad command-line arguments."""


class Options:
    __slots__ = ("config", "format", "url")

    def __init__(
        self, format: str = DEFAULT_FORMAT, url: str | None = None, config: str | None = None
    ) -> None:
        self.format = format
        self.url = url
        self.config = config


def parse_args(argv: Sequence[str]) -> Options:
    """``--format T``, ``--url U``, ``--config P`` (also as ``--name=value``); argparse would cost more
    to import than the rest of the command takes to run."""
    options = Options()
    names = {"--format": "format", "--url": "url", "--config": "config"}
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name not in names:
            raise UsageError(f"unknown argument {arg!r}")
        if not eq:
            if not args:
                raise UsageError(f"{name} needs a value")
            value = args.pop(0)
        setattr(options, names[name], value)
    return options


def config_dir(option: str | None, environ: Mapping[str, str]) -> str:
    """The config folder (as ``ccrouter.config_file.default_config_path`` finds the file)."""
    path = option or environ.get("CCROUTER_CONFIG") or os.path.join("~", ".ccrouter", "config.yaml")
    return os.path.dirname(os.path.abspath(os.path.expanduser(path)))


def read_stdin(fd: int, timeout: float = STDIN_TIMEOUT_S) -> bytes:
    """What Claude Code wrote on stdin, read until EOF, at most ``MAX_STDIN_BYTES`` and ``timeout``;
    nothing from a terminal."""
    import select

    try:
        if os.isatty(fd):
            return b""
    except OSError:
        return b""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + timeout
    while size <= MAX_STDIN_BYTES:
        remaining = deadline - time.monotonic()
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
            if not ready:
                break
            chunk = os.read(fd, 65536)
        except (OSError, ValueError):
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _parse_stdin(raw: bytes) -> dict[str, object] | None:
    import json

    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _api_timeout(environ: Mapping[str, str]) -> float:
    """``$CCROUTER_STATUSLINE_TIMEOUT_MS`` (a busy machine, a remote gateway), else 25 ms."""
    try:
        return max(1.0, float(environ.get("CCROUTER_STATUSLINE_TIMEOUT_MS", ""))) / 1000.0
    except ValueError:
        return API_TIMEOUT_S


def status_line(options: Options, raw_stdin: bytes, environ: Mapping[str, str], now: float) -> str:
    """The line to print (never raises on bad input: the line says what is wrong)."""
    try:
        render(options.format, fields_for(None, {}))  # a bad template is told before anything is asked
    except TemplateError as exc:
        return f"ccrouter statusline: {exc}"
    stdin = _parse_stdin(raw_stdin)
    if stdin is None:
        return "ccrouter: no statusline JSON on stdin"
    session = stdin.get("session_id")
    if not isinstance(session, str) or not valid_session_id(session):
        return "ccrouter: no session id on stdin"
    folder = config_dir(options.config, environ)
    state = read_state(folder)
    url = options.url or environ.get("CCROUTER_URL") or (state.url if state is not None else None)
    token = environ.get("CCROUTER_TOKEN") or (state.token if state is not None else None)
    summary: dict[str, object] | None = None
    refused: int | None = None
    if url and token:
        try:
            status, body = from_gateway(url, session, token, _api_timeout(environ))
        except FetchError:
            status, body = 0, {}
        if status == 200:
            summary = body
        elif status == 404:  # the gateway answered: it (and its ledger) has nothing of this session
            return "ccrouter: no request of this session through the gateway yet"
        elif status:
            refused = status
    if summary is None:
        ledger = state.ledger if state is not None and state.ledger else os.path.join(folder, "usage.db")
        summary = from_ledger(ledger, session, day_start(now), LEDGER_TIMEOUT_S)
    if summary is None:
        if refused is not None:
            return f"ccrouter: the gateway refused the session API ({refused}): see CCROUTER_TOKEN"
        return "ccrouter: gateway not running"
    try:
        return render(options.format, fields_for(summary, stdin))
    except TemplateError as exc:
        return f"ccrouter statusline: {exc}"


def main(argv: Sequence[str]) -> int:
    """``ccrouter statusline`` with ``argv`` (the arguments after ``statusline``): print the line;
    always 0."""
    try:
        options = parse_args(argv)
    except UsageError as exc:
        print(f"ccrouter statusline: {exc} ({USAGE})")
        return 0
    try:
        line = status_line(options, read_stdin(sys.stdin.fileno()), os.environ, time.time())
    except Exception as exc:  # the boundary: a statusline prints a line, never a traceback
        line = f"ccrouter statusline: internal error ({type(exc).__name__})"
    print(line)
    return 0
