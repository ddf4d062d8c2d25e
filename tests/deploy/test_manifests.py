"""deploy/ manifests parse and agree with the code (Settings fields, ports, paths, CLI)."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

from typostream.streams.config import ENV_PREFIX, Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
FIELDS = {f.name for f in dataclasses.fields(Settings)}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    docs = load_all(DEPLOY / "docker-compose.yml")
    assert len(docs) == 1
    return docs[0]


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_all(path):
            out[f"{doc['kind']}/{doc.get('metadata', {}).get('name', '')}"] = doc
    return out


def typostream_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if "build" in svc or str(svc.get("image", "")).startswith("typostream")
    }


def env_dict(env: Any) -> dict[str, str]:
    if isinstance(env, list):
        return dict(str(item).split("=", 1) for item in env)
    return {str(k): str(v) for k, v in (env or {}).items()}


def assert_settings_vars(names: list[str], where: str) -> None:
    for name in names:
        assert name.startswith(ENV_PREFIX), f"{where}: {name} is not a TYPOSTREAM_* variable"
        field = name.removeprefix(ENV_PREFIX).lower()
        assert name == ENV_PREFIX + field.upper()
        assert field in FIELDS, f"{where}: {name} is not a Settings field"


def test_compose_has_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "redis", "clickhouse", "typostream", "topics"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:3.")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("kafka", "redis", "clickhouse", "typostream"):
        assert "healthcheck" in services[name], name


def test_compose_env_vars_are_settings_fields(compose: dict[str, Any]) -> None:
    services = typostream_services(compose)
    assert set(services) == {"typostream", "topics"}
    for name, svc in services.items():
        env = env_dict(svc["environment"])
        assert_settings_vars(list(env), f"compose service {name}")


def test_compose_worker_env_values(compose: dict[str, Any], tmp_path: Path) -> None:
    env = env_dict(compose["services"]["typostream"]["environment"])
    assert env["TYPOSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["TYPOSTREAM_REDIS_URL"].startswith("redis://redis:6379")
    assert re.fullmatch(
        r"http://default:\$\{CLICKHOUSE_PASSWORD[^}]*\}@clickhouse:8123/default",
        env["TYPOSTREAM_CLICKHOUSE_DSN"],
    )
    assert env["TYPOSTREAM_HIGHWATER_FROM_FETCH"] == "false"  # real Kafka: plain transport
    assert env["TYPOSTREAM_WEB_HOST"] == "0.0.0.0"
    # Values must coerce like Settings.from_env would.
    environ = {k: v for k, v in env.items() if k != "TYPOSTREAM_DATA_DIR"}
    settings = Settings.from_env(environ=environ, data_dir=tmp_path)
    assert settings.unbatched_producer is False
    assert settings.web_port == 6066
    # The web port is only published on the host's loopback.
    port = settings.web_port
    assert compose["services"]["typostream"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    # TYPOSTREAM_WEB_HOST=0.0.0.0 only inside the container: the topics job doesn't serve HTTP.
    assert "TYPOSTREAM_WEB_HOST" not in env_dict(compose["services"]["topics"]["environment"])


def test_compose_volume_is_the_data_dir(compose: dict[str, Any]) -> None:
    svc = compose["services"]["typostream"]
    data_dir = env_dict(svc["environment"])["TYPOSTREAM_DATA_DIR"]
    assert any(v.endswith(":" + data_dir) for v in svc["volumes"])


def test_dockerfile_runs_the_worker() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install ." in text
    assert 'CMD ["typostream", "worker"]' in text
    for name in re.findall(r"\b(TYPOSTREAM_[A-Z_]+)=", text):
        assert_settings_vars([name], "Dockerfile")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "typostream" in scripts
    for folder in re.findall(r"^COPY (\w+) \./\1$", text, flags=re.MULTILINE):
        assert (ROOT / folder / "__init__.py").is_file(), folder


def test_k8s_documents_present(k8s: dict[str, dict[str, Any]]) -> None:
    assert {
        "Namespace/typostream",
        "ConfigMap/typostream-config",
        "Secret/typostream-clickhouse",
        "StatefulSet/typostream-worker",
        "Service/typostream-worker",
        "Job/typostream-topics",
    } <= set(k8s)
    for key, doc in k8s.items():
        if doc["kind"] not in {"Namespace", "Kustomization"}:
            assert doc["metadata"]["namespace"] == "typostream", key


def test_k8s_config_keys_are_settings_fields(k8s: dict[str, dict[str, Any]]) -> None:
    assert_settings_vars(list(k8s["ConfigMap/typostream-config"]["data"]), "configmap")
    pod = k8s["StatefulSet/typostream-worker"]["spec"]["template"]["spec"]
    names = [e["name"] for e in pod["containers"][0]["env"] if e["name"].startswith(ENV_PREFIX)]
    assert names == ["TYPOSTREAM_CLICKHOUSE_DSN"]
    assert_settings_vars(names, "statefulset")


def test_k8s_worker_is_consistent(k8s: dict[str, dict[str, Any]]) -> None:
    config = k8s["ConfigMap/typostream-config"]["data"]
    sts = k8s["StatefulSet/typostream-worker"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["typostream", "worker"]
    port = int(config["TYPOSTREAM_WEB_PORT"])
    assert config["TYPOSTREAM_WEB_HOST"] == "0.0.0.0"
    assert config["TYPOSTREAM_HIGHWATER_FROM_FETCH"] == "false"
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/metrics"
    mount = container["volumeMounts"][0]
    assert mount["mountPath"] == config["TYPOSTREAM_DATA_DIR"]
    assert mount["name"] == sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    # The DSN only references env entries defined before it, and the secret's keys exist.
    env = container["env"]
    secret = k8s["Secret/typostream-clickhouse"]["stringData"]
    defined = [e["name"] for e in env]
    dsn = next(e["value"] for e in env if e["name"] == "TYPOSTREAM_CLICKHOUSE_DSN")
    for ref in re.findall(r"\$\((\w+)\)", dsn):
        assert defined.index(ref) < defined.index("TYPOSTREAM_CLICKHOUSE_DSN")
    for e in env:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "typostream-clickhouse" and ref["key"] in secret
    service = k8s["Service/typostream-worker"]
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["ports"][0]["port"] == port
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    assert sts["spec"]["replicas"] <= int(config["TYPOSTREAM_PARTITIONS"])


def test_kustomization_lists_every_manifest() -> None:
    kust = load_all(K8S / "kustomization.yaml")[0]
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files
