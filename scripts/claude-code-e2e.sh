#!/usr/bin/env bash
# Real Claude Code through ccrouter to an OpenAI-format upstream (or, with WIRE=anthropic, an
# Anthropic-format one: the passthrough), offline.
#
# Starts the shipped fake OpenAI-compatible upstream (whose default behaviour answers "Run: <cmd>" with a
# Bash tool call), a gateway pointed at it, then `claude -p` asking for a command. Passes when the tool
# ran and its output came back in the final answer. Needs the CLI: `npm install @anthropic-ai/claude-code`
# (local or global). Usage: [WIRE=openai|anthropic] scripts/claude-code-e2e.sh [path/to/claude]
#
# Both servers get free ports; each must answer (the gateway as the very process started here, by the
# pid in its GET /) within E2E_START_TIMEOUT seconds (20), else the script fails with the end of its log.
# PYTHON: the interpreter with ccrouter installed (default .venv/bin/python, which `make run` creates).
set -euo pipefail
cd "$(dirname "$0")/.."
CLAUDE=${1:-$(command -v claude || echo node_modules/.bin/claude)}
[ -x "$CLAUDE" ] || { echo "claude CLI not found: npm install @anthropic-ai/claude-code" >&2; exit 2; }
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "$PY not found: run \`make run\` once (it creates .venv), or set PYTHON" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed to check the servers started" >&2; exit 2; }
START_TIMEOUT=${E2E_START_TIMEOUT:-20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for NAME PID URL LOG [GREP]: until URL answers 200 (and its body matches GREP, if given).
wait_for() {
  local name=$1 pid=$2 url=$3 log=$4 match=${5:-} deadline=$((SECONDS + START_TIMEOUT)) body
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "FAIL: the $name exited during startup; end of its log:" >&2; tail -n 20 "$log" >&2; exit 1
    fi
    if body=$(curl -sf --max-time 1 "$url" 2>/dev/null) && { [ -z "$match" ] || grep -q -- "$match" <<<"$body"; }; then
      return 0
    fi
    sleep 0.2
  done
  echo "FAIL: the $name (pid $pid) did not answer $url within $START_TIMEOUT s; end of its log:" >&2
  tail -n 20 "$log" >&2
  exit 1
}

fake_port=$(free_port)
gw_port=$(free_port)
case "${WIRE:-openai}" in
  openai) upstream="type: openai
    base_url: http://127.0.0.1:$fake_port/v1" ;;
  anthropic) upstream="type: anthropic
    base_url: http://127.0.0.1:$fake_port" ;;
  *) echo "WIRE must be openai or anthropic" >&2; exit 2 ;;
esac
cat > "$work/config.yaml" <<YAML
providers:
  - name: fake
    $upstream
    api_key: sk-e2e-upstream
    models: [gpt-e2e]
router:
  default: fake,gpt-e2e
YAML
"$PY" -m ccrouter.testing.fake_upstream --port "$fake_port" > "$work/fake.log" 2>&1 &
fake_pid=$!
wait_for "fake upstream" "$fake_pid" "http://127.0.0.1:$fake_port/_fake/requests" "$work/fake.log"
"$PY" -m ccrouter.cli.main serve --config "$work/config.yaml" --port "$gw_port" > "$work/gateway.log" 2>&1 &
gw_pid=$!
wait_for gateway "$gw_pid" "http://127.0.0.1:$gw_port/" "$work/gateway.log" "\"pid\":$gw_pid[,}]"
echo "fake upstream on port $fake_port (pid $fake_pid), gateway on port $gw_port (pid $gw_pid)"
mkdir -p "$work/project" "$work/home"
(cd "$work/project" && HOME="$work/home" ANTHROPIC_BASE_URL="http://127.0.0.1:$gw_port" ANTHROPIC_API_KEY=e2e \
  DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1 \
  timeout 120 "$CLAUDE" -p "Run: echo ccrouter-e2e-ok" --allowedTools Bash --max-turns 4 \
  --output-format stream-json --verbose) > "$work/claude.jsonl" || echo "claude exited with status $?"
if grep -q '"tool_use"' "$work/claude.jsonl" && tail -n 1 "$work/claude.jsonl" | grep -q 'ccrouter-e2e-ok'; then
  echo "PASS: Claude Code asked for Bash, ran it, and got the answer through ccrouter"
else
  echo "FAIL: end of claude's output, then of the gateway's log:"
  tail -n 5 "$work/claude.jsonl"; tail -n 20 "$work/gateway.log"; exit 1
fi
