#!/usr/bin/env bash
# Real Claude Code through ccrouter to an OpenAI-format upstream (or, with WIRE=anthropic, an
# Anthropic-format one: the passthrough), offline.
#
# Starts the shipped fake OpenAI-compatible upstream (whose default behaviour answers "Run: <cmd>" with a
# Bash tool call), a gateway pointed at it, then `claude -p` asking for a command. Passes when the tool
# ran and its output came back in the final answer. Needs the CLI: `npm install @anthropic-ai/claude-code`
# (local or global). Usage: [WIRE=openai|anthropic] scripts/claude-code-e2e.sh [path/to/claude]
set -euo pipefail
cd "$(dirname "$0")/.."
CLAUDE=${1:-$(command -v claude || echo node_modules/.bin/claude)}
[ -x "$CLAUDE" ] || { echo "claude CLI not found: npm install @anthropic-ai/claude-code" >&2; exit 2; }
PY=.venv/bin/python
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
fake_port=19100 gw_port=19101
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
$PY -m ccrouter.testing.fake_upstream --port $fake_port > "$work/fake.log" 2>&1 &
$PY -m ccrouter.cli.main serve --config "$work/config.yaml" --port $gw_port > "$work/gateway.log" 2>&1 &
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$gw_port/health" >/dev/null && break; sleep 0.2; done
mkdir -p "$work/project" "$work/home"
(cd "$work/project" && HOME="$work/home" ANTHROPIC_BASE_URL="http://127.0.0.1:$gw_port" ANTHROPIC_API_KEY=e2e \
  DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1 \
  timeout 120 "$CLAUDE" -p "Run: echo ccrouter-e2e-ok" --allowedTools Bash --max-turns 4 \
  --output-format stream-json --verbose) > "$work/claude.jsonl"
if grep -q '"tool_use"' "$work/claude.jsonl" && tail -n 1 "$work/claude.jsonl" | grep -q 'ccrouter-e2e-ok'; then
  echo "PASS: Claude Code asked for Bash, ran it, and got the answer through ccrouter"
else
  echo "FAIL: see below"; tail -n 5 "$work/claude.jsonl"; tail -n 20 "$work/gateway.log"; exit 1
fi
