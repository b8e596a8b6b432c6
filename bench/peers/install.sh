#!/usr/bin/env bash
# Install the peer gateways for `make bench-peers` into bench/.peers (gitignored), apart from the
# project's venv: LiteLLM proxy from PyPI, claude-code-router from npm. Idempotent; pinned versions.
# A peer that fails to install is reported and skipped: the benchmark still runs without it.
set -uo pipefail
PY="${PY:-python3}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="$HERE/.peers"
LITELLM_VERSION="${LITELLM_VERSION:-1.106.2}"
CCR_VERSION="${CCR_VERSION:-2.0.0}"
mkdir -p "$PEERS"

install_litellm() {
    [ -f "$PEERS/venv/.litellm-$LITELLM_VERSION" ] && return 0
    echo "bench-peers: installing litellm[proxy]==$LITELLM_VERSION into $PEERS/venv" >&2
    "$PY" -m venv "$PEERS/venv" &&
        "$PEERS/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "litellm[proxy]==$LITELLM_VERSION" &&
        touch "$PEERS/venv/.litellm-$LITELLM_VERSION"
}

install_ccr() {
    [ -f "$PEERS/node/.ccr-$CCR_VERSION" ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        echo "bench-peers: npm not found" >&2
        return 1
    fi
    echo "bench-peers: installing @musistudio/claude-code-router@$CCR_VERSION into $PEERS/node" >&2
    mkdir -p "$PEERS/node" &&
        npm install --silent --no-audit --no-fund --prefix "$PEERS/node" \
            "@musistudio/claude-code-router@$CCR_VERSION" &&
        touch "$PEERS/node/.ccr-$CCR_VERSION"
}

install_litellm || echo "bench-peers: litellm could not be installed (see above); it will be skipped" >&2
install_ccr || echo "bench-peers: claude-code-router could not be installed (see above); it will be skipped" >&2
exit 0
