"""deploy/helm/ccrouter, rendered and linted offline by Helm's own Go SDK (libhelm from the
``helm-python-sdk`` wheel, the engine of ``helm template`` and ``helm lint``; no helm binary, no
cluster), every manifest validated against the Kubernetes JSON schemas that ``kubernetes-validate``
ships (strict: unknown fields fail), at the chart's oldest Kubernetes and the newest the schemas know.
The ServiceMonitor, a Prometheus Operator CRD with no schema there, is checked field by field. What
the manifests name is checked against the code: the probe paths the app serves, the metric the
autoscaler's adapter rule reads, the configuration the real loader accepts."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_support import DEPLOY, ROOT, dummy_environ, load_config, variables

from ccrouter.api.lifecycle import routes
from ccrouter.telemetry.metrics import GatewayMetrics

CHART = DEPLOY / "helm" / "ccrouter"
ADAPTER = DEPLOY / "helm" / "prometheus-adapter-values.yaml"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
# The chart's kubeVersion floor and the newest Kubernetes the shipped schemas cover.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
CRDS = {"ServiceMonitor"}
RELEASE, NAMESPACE = "team", "llm"
FULL: dict[str, Any] = {
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "lifecycle": {"preStopSleepSeconds": 5},
    "secrets": {name: f"set-{name.lower()}" for name in VALUES["secrets"]},
}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "full": FULL,
    "fixed": {"autoscaling": {"enabled": False}, "podDisruptionBudget": {"enabled": False}},
    "own-secret": {"existingSecret": "ccrouter-keys"},
}


def _helm(*args: str, values: dict[str, Any] | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("helm_chart.py")), *args],
        input=json.dumps(values or {}), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@functools.cache
def rendered(name: str) -> tuple[dict[str, Any], ...]:
    manifests: dict[str, str] = _helm("render", str(CHART), RELEASE, NAMESPACE, values=VALUE_SETS[name])
    return tuple(doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc)


def one(name: str, kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in rendered(name) if doc["kind"] == kind]
    return found


def container(name: str) -> dict[str, Any]:
    (found,) = one(name, "Deployment")["spec"]["template"]["spec"]["containers"]
    return found


def test_helm_lint_finds_no_error_or_warning() -> None:
    report = _helm("lint", str(CHART))
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_manifest_fits_the_kubernetes_schema(values: str, version: str) -> None:
    for doc in rendered(values):
        if doc["kind"] in CRDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']} (Kubernetes {version}): {error.message}")


def test_the_manifests_each_value_set_makes() -> None:
    kinds = {name: sorted(doc["kind"] for doc in rendered(name)) for name in VALUE_SETS}
    base = ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "Service"]
    assert kinds["default"] == base
    assert kinds["full"] == sorted([*base, "ServiceMonitor"])
    assert kinds["fixed"] == ["ConfigMap", "Deployment", "Secret", "Service"]
    assert kinds["own-secret"] == [kind for kind in base if kind != "Secret"]
    assert one("fixed", "Deployment")["spec"]["replicas"] == VALUES["replicaCount"]
    assert "replicas" not in one("default", "Deployment")["spec"], "the autoscaler owns the count"


def test_the_probes_are_the_lifecycle_endpoints_the_app_serves() -> None:
    served = {route.path for route in routes()}
    spec = container("default")
    (port,) = spec["ports"]
    assert port == {"name": "http", "containerPort": VALUES["containerPort"], "protocol": "TCP"}
    assert spec["args"] == ["--port", str(VALUES["containerPort"])]
    probes = {kind: spec[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe", "startupProbe")}
    assert probes["readinessProbe"] == {"path": "/health/ready", "port": "http"}
    assert probes["livenessProbe"] == {"path": "/health/live", "port": "http"}
    assert {probe["path"] for probe in probes.values()} <= served


def _config(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(one(name, "ConfigMap")["data"]["config.yaml"])
    return data


@pytest.mark.parametrize("values", ["default", "full"])
def test_the_pod_outlives_its_drain(values: str) -> None:
    pod = one(values, "Deployment")["spec"]["template"]["spec"]
    server = _config(values)["server"]
    pause = VALUE_SETS[values].get("lifecycle", {}).get("preStopSleepSeconds", 0)
    assert pod["terminationGracePeriodSeconds"] > pause + server["drain_grace_s"] + server["drain_s"]
    assert server["drain_grace_s"] > 0, "new requests are served while the endpoint change spreads"
    pre_stop = container(values).get("lifecycle", {}).get("preStop")
    assert pre_stop == ({"exec": {"command": ["sleep", str(pause)]}} if pause else None)


def test_the_configmap_is_a_configuration_the_gateway_loads() -> None:
    text = one("default", "ConfigMap")["data"]["config.yaml"]
    assert variables(text) <= set(VALUES["secrets"]), "the config reads variables the Secret never holds"
    settings = load_config(text, dummy_environ(variables(text)))
    assert settings.server.host == "0.0.0.0"
    assert settings.server.auth_required
    assert settings.state.redis_url is not None, "replicas share live state"
    assert settings.store.url is not None, "replicas share the ledger"
    pod = one("default", "Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in container("default")["volumeMounts"] if m["name"] == "config"]
    assert (
        mount["mountPath"] + "/config.yaml"
        == {e["name"]: e["value"] for e in container("default")["env"]}["CCROUTER_CONFIG"]
    )
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == one("default", "ConfigMap")["metadata"]["name"]


def test_the_secret_holds_only_what_is_set_and_reaches_the_pod() -> None:
    assert one("default", "Secret").get("stringData") in (None, {}), "empty values are left out"
    full = one("full", "Secret")
    assert full["stringData"] == FULL["secrets"]
    assert container("full")["envFrom"] == [{"secretRef": {"name": full["metadata"]["name"]}}]
    assert container("own-secret")["envFrom"] == [{"secretRef": {"name": "ccrouter-keys"}}]
    # A change of either rolls the pods.
    annotations = one("full", "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations != one("default", "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert {"checksum/config", "checksum/secret"} <= set(annotations)


def test_the_selectors_find_the_pods() -> None:
    deployment = one("default", "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert one("default", "Service")["spec"]["selector"] == selector
    assert one("default", "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert one("default", "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert deployment["metadata"]["name"] == f"{RELEASE}-ccrouter"


def _exported_metrics() -> set[str]:
    names: set[str] = set()
    for family in GatewayMetrics().registry.collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_the_autoscaler_scales_on_cpu_and_on_the_request_rate_of_a_real_metric() -> None:
    metrics = {m["type"]: m for m in one("default", "HorizontalPodAutoscaler")["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Resource"]["resource"]["target"]["type"] == "Utilization"
    assert container("default")["resources"]["requests"]["cpu"], "CPU utilization needs a request"
    pods = metrics["Pods"]["pods"]
    (rule,) = yaml.safe_load(ADAPTER.read_text())["rules"]["custom"]
    assert pods["metric"]["name"] == rule["name"]["as"]
    series = re.match(r"[a-z_:]+", rule["seriesQuery"])
    assert series is not None
    assert series.group(0) == "ccr_requests_total"
    assert series.group(0) in _exported_metrics()
    assert re.fullmatch(rule["name"]["matches"].strip("^$"), series.group(0))
    assert "rate(<<.Series>>" in rule["metricsQuery"]


def test_the_service_monitor_scrapes_with_the_admin_token_as_the_rules_job() -> None:
    monitor = one("full", "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = one("full", "Service")
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # job="ccrouter", as the shipped rules select.
    assert service["metadata"]["labels"][spec["jobLabel"]] == "ccrouter"
    assert 'job="ccrouter"' in (DEPLOY / "prometheus" / "ccrouter-rules.yml").read_text()
    credentials = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer"
    assert credentials["name"] == one("full", "Secret")["metadata"]["name"]
    assert credentials["key"] in one("full", "Secret")["stringData"]
    assert "${" + credentials["key"] + "}" == _config("full")["server"]["admin_token"]


def test_the_pod_runs_as_the_image_user_on_a_read_only_root() -> None:
    uid = re.search(r"^ARG UID=(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert uid is not None
    pod = one("default", "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
    security = container("default")["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    writable = {m["mountPath"] for m in container("default")["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/var/lib/ccrouter", "/tmp"}
