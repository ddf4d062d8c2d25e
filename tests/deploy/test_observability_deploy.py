"""deploy/prometheus rules and deploy/grafana dashboards: promtool checks and unit-tests the rules,
Prometheus (compose and k8s) loads them, Grafana in compose is provisioned with the dashboards.

promtool comes with Debian's ``prometheus`` package (``.ci/install`` installs it); without it the
promtool tests are skipped with that reason. The dashboards' queries are checked against the
metrics the processes really expose in ``tests/observability/test_observability_e2e.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import COMPOSE_ENV_EXAMPLE, DEPLOY, K8S, load_all, read_env_file, yaml

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install prometheus; .ci/install does)",
)
RULES = DEPLOY / "prometheus" / "rules"
RULE_FILES = sorted(RULES.glob("*.rules.yml"))
TEST_FILES = sorted(RULES.glob("*.test.yml"))
GRAFANA = DEPLOY / "grafana"
COMPOSE: dict[str, Any] = load_all(DEPLOY / "docker-compose.yml")[0]


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def alert_names(path: Path) -> set[str]:
    return {
        r["alert"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "alert" in r
    }


def test_the_rules_cover_the_seed_and_the_stream() -> None:
    assert [p.name for p in RULE_FILES] == ["typostream.rules.yml"]
    assert [p.name for p in TEST_FILES] == ["typostream.test.yml"]
    names = alert_names(RULE_FILES[0])
    assert {
        "TypostreamApiLatencyHigh",
        "TypostreamApiErrorRateHigh",
        "TypostreamMemoryHigh",
        "TypostreamConnectionPoolSaturated",  # the seed's four
        "TypostreamConsumerLagGrowing",
        "TypostreamFeedStalled",
        "TypostreamDeadLetterRateHigh",
        "TypostreamSinkFailing",
        "TypostreamAlertDeliveryFailing",  # the stream's
    } <= names
    rules = {r["alert"]: r for g in yaml.safe_load(RULE_FILES[0].read_text())["groups"] for r in g["rules"]}
    # The seed's thresholds and durations.
    assert (
        "> 2" in rules["TypostreamApiLatencyHigh"]["expr"]
        and rules["TypostreamApiLatencyHigh"]["for"] == "5m"
    )
    assert "> 0.05" in rules["TypostreamApiErrorRateHigh"]["expr"]
    assert rules["TypostreamApiErrorRateHigh"]["for"] == "2m"
    assert "> 0.8" in rules["TypostreamMemoryHigh"]["expr"] and rules["TypostreamMemoryHigh"]["for"] == "10m"
    assert "> 0.9" in rules["TypostreamConnectionPoolSaturated"]["expr"]
    assert rules["TypostreamConnectionPoolSaturated"]["for"] == "1m"
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
    # Every alert has a unit test that expects it to fire.
    tested = set(re.findall(r"alertname: (\w+)\n\s*exp_alerts:\n\s*- exp_labels", TEST_FILES[0].read_text()))
    assert tested == names


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    checked = promtool("check", "rules", *map(str, RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_names(RULE_FILES[0]))} rules found" in checked.stdout


@needs_promtool
def test_promtool_unit_tests_the_rules() -> None:
    tested = promtool("test", "rules", *(p.name for p in TEST_FILES), cwd=RULES)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@needs_promtool
def test_the_rule_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    """The unit tests can fail: a memory alert at 90 % instead of 80 % no longer fires at 85 %."""
    for path in (*RULE_FILES, *TEST_FILES):
        shutil.copy(path, tmp_path / path.name)
    rules = tmp_path / RULE_FILES[0].name
    text = rules.read_text()
    assert text.count("typostream_memory_limit_bytes > 0.8") == 1
    rules.write_text(
        text.replace("typostream_memory_limit_bytes > 0.8", "typostream_memory_limit_bytes > 0.9")
    )
    tested = promtool("test", "rules", TEST_FILES[0].name, cwd=tmp_path)
    assert tested.returncode != 0
    assert "TypostreamMemoryHigh" in tested.stdout + tested.stderr


@needs_promtool
def test_promtool_checks_the_compose_prometheus_config() -> None:
    checked = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout  # the rules, not their tests


def test_compose_prometheus_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.rules.yml"]  # relative to /etc/prometheus/prometheus.yml
    volumes = COMPOSE["services"]["prometheus"]["volumes"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in volumes
    assert "--config.file=/etc/prometheus/prometheus.yml" in COMPOSE["services"]["prometheus"]["command"]


def test_k8s_prometheus_loads_the_same_rules() -> None:
    docs = {f"{d['kind']}/{d['metadata']['name']}": d for d in load_all(K8S / "prometheus.yaml")}
    data = docs["ConfigMap/prometheus-config"]["data"]
    assert data["typostream.rules.yml"] == RULE_FILES[0].read_text(), (
        "deploy/k8s/prometheus.yaml carries a copy of deploy/prometheus/rules/typostream.rules.yml: update it"
    )
    config = yaml.safe_load(data["prometheus.yml"])
    container = docs["StatefulSet/prometheus"]["spec"]["template"]["spec"]["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert config["rule_files"] == [f"{mount['mountPath']}/typostream.rules.yml"]


# --- Grafana --------------------------------------------------------------------------------------------
def test_dashboards_are_what_the_generator_renders() -> None:
    checked = subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def test_dashboards_use_the_provisioned_datasource() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["type"], source["uid"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    assert set(dashboards()) == {
        "typostream-service.json",
        "typostream-threats.json",
        "typostream-stream.json",
    }
    uids = set()
    for name, board in dashboards().items():
        uids.add(board["uid"])
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert panels, name
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in panels:
            assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, (name, panel["title"])
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), (name, panel["title"])
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, (name, panel["title"])
    assert len(uids) == len(dashboards())


def test_dashboards_show_the_seed_and_business_kpis() -> None:
    titles = {name: [p["title"] for p in board["panels"]] for name, board in dashboards().items()}
    service = " | ".join(titles["typostream-service.json"]).lower()
    for kpi in (
        "latency p50 / p95 / p99",
        "requests per second",
        "error rate",
        "hit ratio",
        "clickhouse",
        "redis",
        "memory",
        "cpu",
    ):
        assert kpi in service, kpi
    threats = " | ".join(titles["typostream-threats.json"]).lower()
    for kpi in (
        "packages analysed per minute",
        "by technique",
        "severity",
        "top 10 targets",
        "detection latency",
    ):
        assert kpi in threats, kpi


def test_compose_grafana_is_provisioned_with_the_dashboards(compose_example_env: dict[str, str]) -> None:
    grafana = COMPOSE["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]  # loopback only
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert (DEPLOY / mounts["/etc/grafana/provisioning"]).resolve() == (GRAFANA / "provisioning").resolve()
    assert (DEPLOY / mounts["/etc/grafana/dashboards"]).resolve() == (GRAFANA / "dashboards").resolve()
    assert mounts["/var/lib/grafana"] == "grafana-data" and "grafana-data" in COMPOSE["volumes"]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "typostream.yml").read_text())
    assert [p["options"]["path"] for p in providers["providers"]] == ["/etc/grafana/dashboards"]
    env = grafana["environment"]
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (
        home.startswith("/etc/grafana/dashboards/") and (GRAFANA / "dashboards" / Path(home).name).is_file()
    )
    # The admin password comes from deploy/.env, never from the repository.
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", env["GF_SECURITY_ADMIN_PASSWORD"])
    assert read_env_file(COMPOSE_ENV_EXAMPLE)["GRAFANA_ADMIN_PASSWORD"] == ""
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false" and env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
