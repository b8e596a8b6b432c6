"""GET /metrics on a real gateway after real traffic through the fake upstream, and the shipped
Prometheus rules and Grafana dashboard checked against what it exports (promtool, Debian package
``prometheus``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from gateway_support import GatewayFactory, settings_for
from prometheus_client.parser import text_string_to_metric_families

from ccrouter.config import Settings
from ccrouter.testing import FakeUpstream, Fault, Reply

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "ccrouter-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "ccrouter-dashboard.json"
_METRIC = re.compile(r"\bccr_[a-z0-9_]+")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}

MODEL = "claude-sonnet-4-6"
BODY: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def observed_settings(fake_url: str) -> Settings:
    base = settings_for(fake_url, "anthropic").model_dump(mode="json")
    base["providers"][0]["api_key"] = "sk-test-secret-key"
    base["budgets"] = [{"name": "team", "period": "daily", "limit_usd": 100, "action": "warn"}]
    base["routing"] = {"auto_fallback": "off"}
    return Settings.model_validate(base)


async def drive_traffic(fake: FakeUpstream, gateway: GatewayFactory) -> str:
    """Non-streamed and streamed successes, an upstream 500, a count_tokens, a 404; returns the URL."""
    url = await gateway(observed_settings(fake.url))
    fake.script(
        Reply(text="hi there", input_tokens=120, output_tokens=7, cache_read_tokens=30),
        Reply(text="streamed reply", input_tokens=50, output_tokens=9),
        Fault("status", status=500),
    )
    async with aiohttp.ClientSession() as session:
        for body in (BODY, {**BODY, "stream": True}, BODY):
            async with session.post(url + "/v1/messages", json=body) as response:
                await response.read()
        async with session.post(url + "/v1/messages/count_tokens", json=BODY) as response:
            assert response.status == 200
        async with session.get(url + "/v1/no-such-route") as response:
            assert response.status == 404
    return url


async def scrape(url: str) -> tuple[str, Samples]:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


async def test_metrics_count_requests_tokens_errors_and_live_state(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await drive_traffic(fake, gateway)
    text, s = await scrape(url)
    ok = _labels(route="messages", provider="up", model=MODEL, status="200")
    assert s[("ccr_requests_total", ok)] == 2
    failed = [
        (labels, value)
        for (name, labels), value in s.items()
        if name == "ccr_requests_total" and dict(labels)["status"].startswith("5")
    ]
    assert [value for _, value in failed] == [1]
    assert s[("ccr_requests_total", _labels(route="count_tokens", provider="", model="", status="200"))] == 1
    assert s[("ccr_requests_total", _labels(route="other", provider="", model="", status="404"))] == 1
    tokens = {
        kind: s[("ccr_tokens_total", _labels(provider="up", model=MODEL, kind=kind))]
        for kind in ("input", "output", "cache_read")
    }
    assert tokens == {"input": 170, "output": 16, "cache_read": 30}
    assert s[("ccr_cost_usd_total", _labels(provider="up", model=MODEL))] > 0
    assert s[("ccr_errors_total", _labels(route="messages", provider="up", error_type="api_error"))] == 1
    assert s[("ccr_errors_total", _labels(route="other", provider="", error_type="not_found_error"))] == 1
    duration = _labels(route="messages", provider="up", model=MODEL)
    assert s[("ccr_request_duration_seconds_count", duration)] == 3
    assert s[("ccr_time_to_first_byte_seconds_count", duration)] == 1
    assert s[("ccr_provider_latency_seconds_count", _labels(provider="up", model=MODEL, outcome="ok"))] == 2
    assert s[("ccr_in_flight_requests", _labels(route="messages"))] == 0
    assert s[("ccr_provider_health_score", _labels(provider="up", model=MODEL))] >= 0
    assert s[("ccr_provider_breaker_state", _labels(provider="up", model=MODEL, state="closed"))] == 1
    assert ("ccr_provider_headroom_ratio", _labels(provider="up", model=MODEL)) in s
    budget = _labels(budget="team", scope="global", period="daily", action="warn")
    assert 0 < s[("ccr_budget_used_ratio", budget)] < 1
    assert s[("ccr_budget_limit_usd", budget)] == 100
    assert "sk-test-secret-key" not in text


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path is not None, (
        "promtool is missing: apt-get install -y --no-install-recommends prometheus (.ci/run does it)"
    )
    return path


def _run(*args: str) -> str:
    done = subprocess.run(args, cwd=RULES.parent, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = _promtool()
    assert "SUCCESS: 8 rules found" in _run(promtool, "check", "rules", RULES.name)
    _run(promtool, "test", "rules", "ccrouter-rules.test.yml")
    _run(promtool, "check", "config", "prometheus.yml")


def _used_names() -> dict[str, set[str]]:
    rules = yaml.safe_load(RULES.read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return {
        "rules": {m for e in exprs for m in _METRIC.findall(e)},
        "dashboard": {m for q in queries for m in _METRIC.findall(q)},
    }


async def test_rules_and_dashboard_only_use_exported_metrics(
    fake: FakeUpstream, gateway: GatewayFactory
) -> None:
    url = await drive_traffic(fake, gateway)
    text, samples = await scrape(url)
    exported = {name for name, _ in samples}
    for family in text_string_to_metric_families(text):
        exported |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    used = _used_names()
    assert used["rules"] >= {"ccr_requests_total", "ccr_budget_used_ratio", "ccr_provider_health_score"}
    assert len(used["dashboard"]) >= 15
    for where, names in used.items():
        assert names <= exported, f"{where} use metrics /metrics does not export: {sorted(names - exported)}"
