"""What the deployment tests share: the repository's paths, the tools from the dev extras, and the
real configuration loader fed a dummy environment."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from ccrouter.config import Settings
from ccrouter.config_file import settings_from_data

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def dev_tool(name: str, package: str) -> str:
    """A command that a dev-extras wheel installs beside the interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found is not None, f"{name} is missing: it comes with the dev extras (pip install {package})"
    return found


def variables(text: str) -> set[str]:
    """The ``${VAR}`` references of a ccrouter configuration."""
    return set(_VAR.findall(text))


def dummy_environ(names: set[str]) -> dict[str, str]:
    return {name: f"dummy-{name.lower()}-value-0123456789" for name in names}


def load_config(text: str, environ: dict[str, str]) -> Settings:
    """``text`` as the gateway loads a file: parsed, interpolated from ``environ``, validated."""
    data: Any = yaml.safe_load(text)
    return settings_from_data(data, environ=environ)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Until ``GET url`` answers (any status); fails if the process exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{process.args!r} exited during startup"
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError as answered:
            answered.close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@contextmanager
def serving(config: Path, environ: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``ccrouter serve`` (the image's entry point) on ``config`` at 127.0.0.1:``port``, live; killed
    at the end if it is still running. Its log goes to ``gateway-<port>.log`` beside ``config``."""
    ccrouter = Path(sys.executable).parent / "ccrouter"
    argv = [str(ccrouter), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-watch"]
    env = {**os.environ, **environ, "CCROUTER_CONFIG": str(config)}
    with (config.parent / f"gateway-{port}.log").open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        try:
            wait_for(f"http://127.0.0.1:{port}/health/live", process)
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
