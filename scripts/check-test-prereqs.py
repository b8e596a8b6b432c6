#!/usr/bin/env python3
"""Check, before `make test` builds anything, that this machine has what the suite needs.

Run by the Makefile with the system Python (stdlib only, and no syntax newer than 3.6, so that an old
interpreter still gets to say it is too old). Prints one message listing everything that is missing,
with how to get it, and exits 1; prints nothing and exits 0 when all is there. Nothing is skipped: the
suite needs every service below, in CI too.

The addresses are the ones the tests use; CCROUTER_TEST_REDIS and CCROUTER_TEST_POSTGRES (host:port)
override them for this check only (its own tests point them at a closed port). Chromium is looked for at
CCROUTER_TEST_CHROMIUM, else /usr/bin/chromium (Debian's package), Firefox at CCROUTER_TEST_FIREFOX, else
/usr/bin/firefox-esr, nginx at CCROUTER_TEST_NGINX, else /usr/sbin/nginx. The Claude Code CLI
is looked for where tests/integration/test_claude_code_real.py looks (CCROUTER_TEST_CLAUDE, else
node_modules/.bin/claude, else .cache/claude-code/node_modules/.bin/claude) and, when it is nowhere,
installed into .cache/claude-code with npm (pinned version).
"""

import os
import shutil
import socket
import struct
import subprocess
import sys

REDIS = os.environ.get("CCROUTER_TEST_REDIS", "127.0.0.1:6379")
POSTGRES = os.environ.get("CCROUTER_TEST_POSTGRES", "127.0.0.1:5432")
PG_USER, PG_DATABASE = "postgres", "test"  # tests/integration/test_ledger.py, test_budget.py
TIMEOUT_S = 2.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _address(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def check_python():
    if sys.version_info < (3, 11):
        version = "%d.%d" % sys.version_info[:2]
        return (
            "Python 3.11 or newer (this is %s at %s): install python3.11 and run `make test PY=python3.11`"
            % (version, sys.executable)
        )
    try:
        import ensurepip  # noqa: F401  (Debian/Ubuntu ship venv without it)
        import venv  # noqa: F401
    except ImportError:
        minor = "%d.%d" % sys.version_info[:2]
        return "the venv module with ensurepip: apt-get install -y python%s-venv" % minor
    return None


def check_promtool():
    if shutil.which("promtool"):
        return None
    return (
        "promtool (validates deploy/prometheus rules): apt-get install -y --no-install-recommends "
        "prometheus, or brew install prometheus, or the release archive from "
        "https://prometheus.io/download/ (promtool is in it), on PATH"
    )


def _connect(where):
    return socket.create_connection(_address(where), timeout=TIMEOUT_S)


def check_redis():
    how = (
        "start it: `redis-server --daemonize yes` (install: apt-get install -y redis-server, "
        "or brew install redis), or `docker run -d -p 6379:6379 redis:7`"
    )
    try:
        with _connect(REDIS) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return "Redis at %s (%s): %s" % (REDIS, _reason(exc), how)
    if not reply.startswith(b"+PONG"):
        return "Redis at %s: something else answers there (%r); %s" % (REDIS, reply[:40], how)
    return None


def _startup_message():
    params = b"user\0%s\0database\0%s\0\0" % (PG_USER.encode(), PG_DATABASE.encode())
    return struct.pack("!ii", 8 + len(params), 196608) + params  # protocol 3.0


def _pg_error(body):
    # ErrorResponse: (field type byte, NUL-terminated text)*; 'M' is the human-readable message.
    for field in body.split(b"\0"):
        if field[:1] == b"M":
            return field[1:].decode("utf-8", "replace")
    return "error"


def check_postgres():
    how = (
        "the suite connects as user %s, without a password (trust auth), to database %s: "
        "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=%s postgres:16`, "
        "or apt-get install -y postgresql && service postgresql start, then trust for 127.0.0.1 in "
        "pg_hba.conf and `createdb -U %s %s`" % (PG_USER, PG_DATABASE, PG_DATABASE, PG_USER, PG_DATABASE)
    )
    try:
        with _connect(POSTGRES) as sock:
            sock.sendall(_startup_message())
            head = sock.recv(5)
            kind = head[:1]
            length = struct.unpack("!i", head[1:5])[0] if len(head) == 5 else 4
            body = sock.recv(max(0, min(length - 4, 4096)))
    except OSError as exc:
        return "PostgreSQL at %s (%s): %s" % (POSTGRES, _reason(exc), how)
    if kind == b"R" and body[:4] == b"\0\0\0\0":  # AuthenticationOk: trust auth, database exists
        return None
    if kind == b"R":
        return "PostgreSQL at %s asks user %s for a password; %s" % (POSTGRES, PG_USER, how)
    if kind == b"E":
        return "PostgreSQL at %s refused: %s; %s" % (POSTGRES, _pg_error(body), how)
    return "PostgreSQL at %s: something else answers there; %s" % (POSTGRES, how)


def _reason(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: not running"
    if isinstance(exc, socket.timeout):
        return "no answer within %g s" % TIMEOUT_S
    return exc.strerror or str(exc)


# tests/integration/test_claude_code_real.py runs the real CLI; the version is the one it was checked with.
CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.332"
CLAUDE_CACHE = os.path.join(ROOT, ".cache", "claude-code")
CLAUDE_PLACES = (
    os.path.join(ROOT, "node_modules", ".bin", "claude"),
    os.path.join(CLAUDE_CACHE, "node_modules", ".bin", "claude"),
)
# tests/integration/test_codex_real.py runs the real Codex CLI (an npm package with a native binary).
CODEX = "@openai/codex@0.171.0"
CODEX_CACHE = os.path.join(ROOT, ".cache", "codex")
CODEX_PLACES = (
    os.path.join(ROOT, "node_modules", ".bin", "codex"),
    os.path.join(CODEX_CACHE, "node_modules", ".bin", "codex"),
)


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _npm_cli(what, package, variable, cache, places):
    """A CLI the tests run, found where they look (``variable``, then ``places``), else installed with
    npm into ``cache`` (the last of ``places``)."""
    given = os.environ.get(variable)
    if given:
        if _executable(given):
            return None
        return "%s=%s is not an executable file (point it at the %s, or unset it)" % (variable, given, what)
    if any(_executable(place) for place in places):
        return None
    npm = shutil.which("npm")
    how = "install Node.js with npm (https://nodejs.org), or set %s to a %s" % (variable, what)
    if npm is None:
        return "the %s (%s, for its real-CLI test), and npm to install it: %s" % (what, package, how)
    print("make test: installing %s into %s (once)" % (package, cache), file=sys.stderr)
    command = [npm, "install", "--prefix", cache, "--no-audit", "--no-fund", package]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "the %s: `%s` failed (%s); %s" % (what, " ".join(command), exc, how)
    if done.returncode != 0 or not _executable(places[-1]):
        tail = done.stdout.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        return "the %s: `%s` failed (%s); %s" % (what, " ".join(command), tail[0], how)
    return None


def check_claude_code():
    """The Claude Code CLI, found where the test looks, else installed with npm into .cache."""
    return _npm_cli("Claude Code CLI", CLAUDE_CODE, "CCROUTER_TEST_CLAUDE", CLAUDE_CACHE, CLAUDE_PLACES)


def check_codex():
    """The Codex CLI, found where the test looks, else installed with npm into .cache."""
    return _npm_cli("Codex CLI", CODEX, "CCROUTER_TEST_CODEX", CODEX_CACHE, CODEX_PLACES)


def check_chromium():
    # tests/ui drive it through Playwright (tests/ui/ui_support.py looks at the same place).
    path = os.environ.get("CCROUTER_TEST_CHROMIUM", "/usr/bin/chromium")
    if _executable(path):
        return None
    return (
        "Chromium at %s (the dashboard's browser tests): apt-get install -y --no-install-recommends "
        "chromium, or set CCROUTER_TEST_CHROMIUM to a Chromium or Chrome binary" % path
    )


def check_firefox():
    # tests/ui/test_firefox.py drives it over WebDriver BiDi (tests/ui/firefox.py looks at the same place).
    path = os.environ.get("CCROUTER_TEST_FIREFOX", "/usr/bin/firefox-esr")
    if _executable(path):
        return None
    return (
        "Firefox at %s (the dashboard's test in a second browser engine): apt-get install -y "
        "--no-install-recommends firefox-esr, or set CCROUTER_TEST_FIREFOX to a Firefox binary" % path
    )


def check_webkit():
    # tests/ui/test_engines.py drives WebKitGTK's MiniBrowser through WebKitWebDriver on an Xvfb display
    # (tests/ui/webkit.py looks at the same places).
    needed = (
        (os.environ.get("CCROUTER_TEST_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver"), "webkit2gtk-driver"),
        (
            os.environ.get(
                "CCROUTER_TEST_WEBKIT_BROWSER", "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
            ),
            "webkit2gtk-driver",
        ),
        ("/usr/bin/Xvfb", "xvfb"),
    )
    missing = [(path, package) for path, package in needed if not _executable(path)]
    if not missing:
        return None
    return (
        "WebKit, Safari's engine, for the dashboard's test in a third browser engine: %s missing; "
        "apt-get install -y --no-install-recommends %s"
        % (", ".join(path for path, _ in missing), " ".join(sorted({p for _, p in missing})))
    )


def check_nginx():
    # tests/deploy/test_compose.py checks and runs deploy/compose/nginx.conf, and
    # tests/integration/test_cluster.py balances three gateways with it (both look at the same place).
    path = os.environ.get("CCROUTER_TEST_NGINX", "/usr/sbin/nginx")
    if _executable(path):
        return None
    return (
        "nginx at %s (the multi-instance tests' load balancer): apt-get install -y "
        "--no-install-recommends nginx, or set CCROUTER_TEST_NGINX to an nginx binary" % path
    )


CHECKS = (
    check_python,
    check_promtool,
    check_nginx,
    check_redis,
    check_postgres,
    check_chromium,
    check_firefox,
    check_webkit,
    check_claude_code,
    check_codex,
)


def main():
    missing = [problem for problem in (check() for check in CHECKS) if problem]
    if not missing:
        return 0
    lines = ["make test: this machine lacks what the test suite needs (see README, Development):"]
    lines += ["  - " + problem for problem in missing]
    print("\n".join(lines), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
