"""``ccrouter diagnose``: a support bundle, a ``.tar.gz`` of text files that holds no secret.

What it collects (each file named in ``manifest.json``, with what could not be collected and why):

- ``config.yaml``: the effective configuration, secrets masked as ``ccrouter config show`` masks them
  (``ccrouter.config_view``);
- ``status.txt`` and ``doctor.txt``: the output of ``ccrouter status`` and ``ccrouter doctor``;
- from the running gateway (the one the config's pid file or address names, or ``url``): ``health.json``
  (``/health``), ``health-ready.json``, ``health-providers.json``, ``metrics.txt`` (``/metrics``) and
  ``errors.json`` (``/api/logs`` at level warning and above, with the admin token if configured, else
  the read token the gateway left in its state file); without a gateway, ``log-tail.txt``: the end
  of the log file;
- ``versions.json``: ccrouter, Python, the platform and the key packages.

Every file then passes through the ``Redactor`` built from the configuration's secrets (provider keys
and credentials, the admin token, client keys, the webhook URL, the Redis and PostgreSQL URLs and their
passwords): what the gateway or a command printed is scrubbed a second time.
"""

from __future__ import annotations

import functools
import io
import os
import platform
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import orjson

from ccrouter.config import Settings
from ccrouter.errors import CCRouterError
from ccrouter.telemetry.redact import Redactor, secrets_of

__all__ = ["KEY_PACKAGES", "Bundle", "collect", "write_bundle"]

KEY_PACKAGES = (
    "aiohttp",
    "pydantic",
    "typer",
    "orjson",
    "structlog",
    "prometheus-client",
    "redis",
    "asyncpg",
    "tiktoken",
    "pluggy",
    "stamina",
)
_MAX_BYTES = 16 * 1024 * 1024
LOG_TAIL_LINES = 500
ERROR_RECORDS = 500


@dataclass(slots=True)
class Bundle:
    """The files of the bundle (name -> text) and, per file not collected, why."""

    files: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, produce: Callable[[], str]) -> None:
        try:
            self.files[name] = produce()
        except (CCRouterError, OSError, subprocess.SubprocessError, ValueError) as exc:
            # A part that cannot be had is noted, never fatal: the rest still helps.
            self.missing[name] = f"{type(exc).__name__}: {exc}"


def collect(config: Path, *, gateway: str | None, log_file: Path, timeout_s: float = 10.0) -> Bundle:
    """Everything listed in the module docstring, scrubbed; ``gateway``: the running gateway's URL
    (None: none found), ``log_file``: where its log would be."""
    from ccrouter.config_file import load_settings

    bundle = Bundle()
    settings: Settings | None = None
    try:
        settings = load_settings(config)
    except CCRouterError as exc:
        bundle.missing["config.yaml"] = f"the configuration does not load: {exc}"
    if settings is not None:
        bundle.add("config.yaml", lambda: _masked_config(config, settings))
    bundle.add("versions.json", _versions)
    bundle.add("status.txt", lambda: _command("status", config, timeout_s))
    # Doctor's network checks each wait up to timeout_s: a few of them, one after another.
    bundle.add("doctor.txt", lambda: _command("doctor", config, timeout_s * 6, "--timeout", f"{timeout_s:g}"))
    if gateway is None:
        bundle.missing["health.json"] = "no running gateway found (start it, or pass --url)"
        bundle.add("log-tail.txt", lambda: _log_tail(log_file))
    else:
        gateway = gateway.rstrip("/")
        _from_gateway(bundle, gateway, config, settings, timeout_s)
        if "errors.json" in bundle.missing:
            bundle.add("log-tail.txt", lambda: _log_tail(log_file))
    redactor = Redactor(secrets_of(settings) if settings is not None else ())
    bundle.files = {name: redactor.text(text) for name, text in bundle.files.items()}
    bundle.missing = {name: redactor.text(why) for name, why in bundle.missing.items()}
    bundle.files["manifest.json"] = _manifest(bundle, config, gateway)
    return bundle


def write_bundle(bundle: Bundle, target: Path) -> Path:
    """``bundle`` as ``target`` (a ``.tar.gz``; files under one folder named like it), mode 0600."""
    folder = target.name.removesuffix(".tar.gz")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in sorted(bundle.files.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            archive.addfile(info, io.BytesIO(data))
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(buffer.getvalue())
    return target


def _masked_config(path: Path, settings: Settings) -> str:
    from ccrouter.config_file import dump_yaml
    from ccrouter.config_view import masked_settings

    data = orjson.loads(orjson.dumps(masked_settings(settings), default=str))
    return f"# {path} (effective configuration; secrets masked)\n{dump_yaml(data)}"


def _versions() -> str:
    packages: dict[str, str | None] = {}
    for name in ("ccrouter", *KEY_PACKAGES):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    body = {
        "ccrouter": packages.pop("ccrouter"),
        "python": sys.version,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": packages,
    }
    return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()


def _command(name: str, config: Path, timeout_s: float, *extra: str) -> str:
    """``ccrouter <name> --config <config>``'s output and exit code (a child: its own console)."""
    argv = [sys.executable, "-m", "ccrouter.cli.main", name, "--config", str(config), *extra]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    done = subprocess.run(argv, capture_output=True, timeout=timeout_s, env=env, check=False)
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    return f"$ ccrouter {name} --config {config}\n(exit {done.returncode})\n{output}"


def _from_gateway(
    bundle: Bundle, url: str, config: Path, settings: Settings | None, timeout_s: float
) -> None:
    admin = settings.server.admin_token if settings is not None else None
    token = admin.get_secret_value() if admin is not None else None
    read_token = token or _read_token(config)
    for name, path, auth in (
        ("health.json", "/health", None),
        ("health-ready.json", "/health/ready", None),
        ("health-providers.json", "/health/providers", token),
        ("metrics.txt", "/metrics", token),
        ("errors.json", f"/api/logs?level=warning&limit={ERROR_RECORDS}", read_token),
    ):
        bundle.add(name, functools.partial(_get, url + path, auth, timeout_s))


def _read_token(config: Path) -> str | None:
    from ccrouter.statusline.state import read_state

    state = read_state(str(config.parent))
    return None if state is None else state.token


def _get(url: str, token: str | None, timeout_s: float) -> str:
    """The body of a GET (also of an error answer: a 503 from /health/ready is the finding)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    request = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            status, body = response.status, response.read(_MAX_BYTES)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(_MAX_BYTES)
    except urllib.error.URLError as exc:
        raise OSError(f"GET {url.split('?')[0]}: {exc.reason}") from None
    text: str = body.decode("utf-8", "replace")
    if status >= 400:
        return f"HTTP {status}\n{text}"
    return text


def _log_tail(path: Path) -> str:
    with path.open("rb") as log:
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - _MAX_BYTES))
        lines = log.read().decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:]) + "\n"


def _manifest(bundle: Bundle, config: Path, gateway: str | None) -> str:
    body = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": str(config),
        "gateway": gateway,
        "files": sorted(bundle.files),
        "missing": bundle.missing,
    }
    return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
