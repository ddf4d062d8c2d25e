"""deploy/ agrees with the code: schemas, Settings fields, CLI flags, scraping, bindings, secrets.

No Docker engine or cluster runs here: the compose file is validated against the compose spec's JSON
schema (tests/deploy/compose-spec.json), the manifests with kubernetes-validate (the schemas ship in
the wheel, offline) after `kubectl kustomize` renders them, and everything the processes read is
checked against the real Settings, CLI parser and worker composition.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.conftest import (
    COMPOSE_ENV_EXAMPLE,
    DEPLOY,
    K8S,
    K8S_SECRETS_EXAMPLE,
    ROOT,
    WORKLOAD_KINDS,
    MissingVariable,
    command_of,
    containers,
    env_dict,
    interpolate,
    interpolated_names,
    load_all,
    option,
    parse_cli,
    pod_metadata,
    pod_spec,
    read_env_file,
    yaml,
)
from typostream.streams.config import ENV_PREFIX, Settings

FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
# Settings whose whole value is a secret, and other secrets the stack passes around.
SECRET_VALUES = {ENV_PREFIX + n.upper() for n, f in FIELDS.items() if f.metadata.get("secret") == "value"} | {
    "CLICKHOUSE_PASSWORD"
}
# Settings that are URLs and may carry a password.
SECRET_URLS = {ENV_PREFIX + n.upper() for n, f in FIELDS.items() if f.metadata.get("secret") == "url"}
K8S_VERSIONS = ["1.28.0", "1.32.0"]  # the oldest with the pod-index label, and kubectl's here
LONG_RUNNING = {"worker", "feed", "alerts"}  # typostream commands that run until stopped


def sync_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("advisories_sync", DEPLOY / "advisories_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def assert_settings_vars(names: list[str], where: str) -> None:
    for name in names:
        assert name.startswith(ENV_PREFIX), f"{where}: {name} is not a TYPOSTREAM_* variable"
        field = name.removeprefix(ENV_PREFIX).lower()
        assert name == ENV_PREFIX + field.upper()
        assert field in FIELDS, f"{where}: {name} is not a Settings field"


def metrics_endpoint(args: list[str], env: dict[str, str]) -> tuple[str, int]:
    """Where a long-running typostream process serves /metrics: (bind host, port)."""
    if args[:2] == ["typostream", "worker"]:
        settings = Settings.from_env(environ={k: v for k, v in env.items() if k != "TYPOSTREAM_DATA_DIR"})
        return settings.web_host, settings.web_port
    if args[:2] == ["typostream", "feed"] or args[:3] == ["typostream", "alerts", "run"]:
        port = option(args, "--metrics-port")
        assert port is not None, f"{args}: serves no /metrics (--metrics-port)"
        return option(args, "--metrics-host") or "127.0.0.1", int(port)
    raise AssertionError(f"{args}: how does this process serve /metrics?")


def is_long_running(args: list[str]) -> bool:
    return len(args) > 1 and args[0] == "typostream" and args[1] in LONG_RUNNING


def cli_param(args: list[str], where: str) -> Any:
    return pytest.param(args, id=where)


# --- docker compose --------------------------------------------------------------------------------

COMPOSE: dict[str, Any] = load_all(DEPLOY / "docker-compose.yml")[0]
COMPOSE_TYPOSTREAM = {
    name: svc
    for name, svc in COMPOSE["services"].items()
    if str(svc.get("image", "")).startswith("typostream")
}
COMPOSE_COMMANDS = {name: [str(a) for a in svc["command"]] for name, svc in COMPOSE_TYPOSTREAM.items()}
COMPOSE_LONG_RUNNING = {n: a for n, a in COMPOSE_COMMANDS.items() if is_long_running(a)}


def compose_env(name: str, values: dict[str, str]) -> dict[str, str]:
    return env_dict(interpolate(COMPOSE["services"][name].get("environment"), values))


def test_compose_spec_schema_is_the_committed_upstream_file() -> None:
    schema = json.loads((ROOT / "tests" / "deploy" / "compose-spec.json").read_text())
    assert schema["title"] == "Compose Specification" and schema["$id"] == "compose_spec.json"
    assert "compose-spec/compose-spec" in (ROOT / "tests" / "deploy" / "README.md").read_text()


def test_compose_validates_against_the_compose_spec(compose_example_env: dict[str, str]) -> None:
    import jsonschema

    schema = json.loads((ROOT / "tests" / "deploy" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    for label, doc in (("as written", COMPOSE), ("interpolated", interpolate(COMPOSE, compose_example_env))):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == [], label
    # The validator is live: a misspelt key is refused.
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["worker"]["depends_on"]["topics"] = {"condition": "service_completed"}
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    assert len(list(validator.iter_errors(broken))) == 2


def test_compose_has_the_stack() -> None:
    services = COMPOSE["services"]
    assert set(services) == {
        "kafka", "redis", "clickhouse", "prometheus", "grafana", "topics", "advisories",
        "advisories-refresh", "worker", "feed-npm", "feed-pypi", "alerts",
    }  # fmt: skip
    assert services["kafka"]["image"].startswith("apache/kafka:3.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["redis"]["image"].startswith("redis:7")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:v3.")
    assert COMPOSE_COMMANDS["worker"] == ["typostream", "worker"]
    assert COMPOSE_COMMANDS["feed-npm"][:4] == ["typostream", "feed", "--registry", "npm"]
    assert COMPOSE_COMMANDS["feed-pypi"][:4] == ["typostream", "feed", "--registry", "pypi"]
    assert COMPOSE_COMMANDS["alerts"][:3] == ["typostream", "alerts", "run"]
    for name, svc in services.items():
        if svc.get("restart") != "no":  # every long-running service reports its health
            assert "healthcheck" in svc or name == "advisories-refresh", name
    # The server image: no chDB (tests/deploy/test_slim_image.py checks the target).
    for name, svc in COMPOSE_TYPOSTREAM.items():
        assert svc["build"]["target"] == "server", name


def test_compose_start_order() -> None:
    def deps(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in COMPOSE["services"][name].get("depends_on", {}).items()}

    done = "service_completed_successfully"
    assert deps("worker") == {
        "topics": done, "advisories": done, "redis": "service_healthy", "clickhouse": "service_healthy",
    }  # fmt: skip
    for feed in ("feed-npm", "feed-pypi"):
        assert deps(feed) == {"topics": done}
    assert deps("alerts") == {"topics": done, "redis": "service_healthy"}
    assert deps("topics") == {"kafka": "service_healthy"}
    assert deps("advisories-refresh") == {"advisories": done}  # the first download is not raced
    for one_shot in ("topics", "advisories"):
        assert COMPOSE["services"][one_shot]["restart"] == "no"


def test_compose_env_vars_are_settings_fields() -> None:
    for name, svc in COMPOSE_TYPOSTREAM.items():
        env = env_dict(svc.get("environment"))
        assert_settings_vars([k for k in env if not k.startswith("ADVISORIES_")], f"compose service {name}")
    names = {n for n, _ in interpolated_names(COMPOSE) if n.startswith(ENV_PREFIX)}
    assert_settings_vars(sorted(names), "compose ${...}")
    assert_settings_vars(
        [k for k in read_env_file(COMPOSE_ENV_EXAMPLE) if k.startswith(ENV_PREFIX)], ".env.example"
    )
    for name in re.findall(r"\b(TYPOSTREAM_[A-Z_]+)=", (DEPLOY / "Dockerfile").read_text()):
        assert_settings_vars([name], "Dockerfile")


def test_compose_required_variables_are_documented(compose_example_env: dict[str, str]) -> None:
    """`${VAR:?}` stops `docker compose up` when deploy/.env lacks VAR; .env.example lists each one."""
    required = {n for n, op in interpolated_names(COMPOSE) if op in (":?", "?")}
    assert required == {"CLICKHOUSE_PASSWORD", "TYPOSTREAM_API_TOKEN", "GRAFANA_ADMIN_PASSWORD"}
    documented = read_env_file(COMPOSE_ENV_EXAMPLE)
    for name in {n for n, _ in interpolated_names(COMPOSE)}:
        assert name in documented or f"# {name}=" in COMPOSE_ENV_EXAMPLE.read_text(), name
    interpolate(COMPOSE, compose_example_env)  # filled in: fine
    for name in required:
        with pytest.raises(MissingVariable, match=name):
            interpolate(COMPOSE, {k: v for k, v in compose_example_env.items() if k != name})


def test_compose_worker_starts_with_these_settings(
    compose_example_env: dict[str, str], tmp_path: Path
) -> None:
    """The worker's composition accepts its environment: before, TYPOSTREAM_WEB_HOST=0.0.0.0 without
    TYPOSTREAM_API_TOKEN made `typostream worker` refuse to start (streams/web/__init__.py)."""
    env = compose_env("worker", compose_example_env)
    assert env["TYPOSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["TYPOSTREAM_REDIS_URL"].startswith("redis://redis:6379")
    assert env["TYPOSTREAM_ALERT_IN_WORKER"] == "false"  # `alerts` delivers; both would double-send
    raw = env_dict(COMPOSE["services"]["worker"]["environment"])
    assert re.fullmatch(
        r"http://typostream:\$\{CLICKHOUSE_PASSWORD:\?[^}]*\}@clickhouse:8123/typostream",
        raw["TYPOSTREAM_CLICKHOUSE_DSN"],
    )
    assert_worker_composes(env, tmp_path)


def assert_worker_composes(env: dict[str, str], tmp_path: Path) -> None:
    from typostream.agents.domain.assess import Assessor
    from typostream.streams.app import build_app
    from typostream.streams.components import build_detector, load_known

    settings = Settings.from_env(environ={k: v for k, v in env.items() if k != "TYPOSTREAM_DATA_DIR"})
    assert settings.highwater_from_fetch is False and settings.unbatched_producer is False
    assert settings.kafka_url.startswith("kafka://")  # Faust's plain transport against a real Kafka
    assert settings.clickhouse_dsn.startswith("http://")  # the server image has no chDB
    assert settings.web_host == "0.0.0.0"  # reachable by Prometheus: then the API needs a token
    # The advisory path is checked against the sync script's layout elsewhere; here the seed stands in.
    assessor = Assessor(build_detector(settings), load_known(""))
    # Raises ConfigError where the worker would refuse to start (e.g. no token on 0.0.0.0).
    pipeline = build_app(settings.replace(data_dir=tmp_path), assessor=assessor, sinks=[], store="memory://")
    assert pipeline.settings.web_port == settings.web_port and pipeline.settings.api_token


def test_compose_processes_parse_with_the_real_cli() -> None:
    for name, args in COMPOSE_COMMANDS.items():
        if args[0] == "typostream-advisories-sync":
            sync_script().build_parser().parse_args(args[1:])
        elif not (args[:3] == ["typostream", "alerts", "run"] and "--metrics-port" in args):
            parse_cli(args)  # alerts: test_cli_flags_exist (pending flag)
        else:
            assert name == "alerts"


def test_compose_prometheus_scrapes_every_long_running_process(compose_example_env: dict[str, str]) -> None:
    assert set(COMPOSE_LONG_RUNNING) == {"worker", "feed-npm", "feed-pypi", "alerts"}
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    mount = "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
    assert mount in COMPOSE["services"]["prometheus"]["volumes"]
    targets = {
        t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]
    }
    expected = set()
    for name, args in COMPOSE_LONG_RUNNING.items():
        host, port = metrics_endpoint(args, compose_env(name, compose_example_env))
        assert host == "0.0.0.0", (
            f"{name}: /metrics on {host} cannot be reached from the prometheus container"
        )
        expected.add(f"{name}:{port}")
        # Its healthcheck probes the same endpoint.
        assert f"http://127.0.0.1:{port}/metrics" in " ".join(
            COMPOSE["services"][name]["healthcheck"]["test"]
        )
    assert targets - {"127.0.0.1:9090"} == expected


def test_compose_publishes_ports_on_loopback_only() -> None:
    published = {name: svc["ports"] for name, svc in COMPOSE["services"].items() if "ports" in svc}
    assert published == {
        "worker": ["127.0.0.1:6066:6066"],
        "prometheus": ["127.0.0.1:9090:9090"],
        "grafana": ["127.0.0.1:3000:3000"],
    }


def test_compose_services_reach_each_other(compose_example_env: dict[str, str]) -> None:
    services = COMPOSE["services"]
    kafka = services["kafka"]["environment"]
    listeners = dict(entry.split("://") for entry in kafka["KAFKA_LISTENERS"].split(","))
    assert listeners["PLAINTEXT"] == ":9092"  # all interfaces
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{services['kafka']['hostname']}:9092"
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka['KAFKA_NODE_ID']}@kafka:9093"
    for name in COMPOSE_TYPOSTREAM:
        env = compose_env(name, compose_example_env)
        settings = Settings.from_env(environ={k: v for k, v in env.items() if k != "TYPOSTREAM_DATA_DIR"})
        assert settings.kafka_bootstrap == "kafka:9092" or name.startswith("advisories"), name
        assert settings.replication_factor <= 1  # one broker
        if "TYPOSTREAM_REDIS_URL" in env:
            assert urlsplit(settings.redis_url).hostname in services
        if "TYPOSTREAM_CLICKHOUSE_DSN" in env:
            dsn = urlsplit(settings.clickhouse_dsn)
            assert (dsn.hostname, dsn.port, dsn.path) == ("clickhouse", 8123, "/typostream")
            ch = services["clickhouse"]["environment"]
            assert (dsn.username, ch["CLICKHOUSE_USER"], ch["CLICKHOUSE_DB"]) == ("typostream",) * 3
            assert "8123/ping" in services["clickhouse"]["healthcheck"]["test"][1]
    assert set(COMPOSE.get("volumes", {})) == {
        v.split(":")[0] for svc in services.values() for v in svc.get("volumes", []) if not v.startswith(".")
    }


def test_compose_state_lives_on_volumes(compose_example_env: dict[str, str]) -> None:
    script = sync_script()
    mounts: dict[str, dict[str, str]] = {
        name: {v.split(":")[1]: v for v in svc.get("volumes", [])} for name, svc in COMPOSE_TYPOSTREAM.items()
    }
    stateful = {}
    for name in ("worker", "feed-npm", "feed-pypi"):
        data_dir = compose_env(name, compose_example_env)["TYPOSTREAM_DATA_DIR"]
        volume = mounts[name][data_dir].split(":")[0]
        stateful[name] = volume
    assert len(set(stateful.values())) == 3, stateful  # a cursor or a RocksDB table per process
    assert compose_env("alerts", compose_example_env)["TYPOSTREAM_ALERT_DEDUPE"] == "redis"  # no local state
    # Advisories: written by the one-shot and the loop, read-only in the worker, at the script's layout.
    for name in ("advisories", "advisories-refresh"):
        directory = compose_env(name, compose_example_env)["ADVISORIES_DIR"]
        assert mounts[name][directory] == f"advisories:{directory}"
        assert not compose_env(name, compose_example_env)["ADVISORIES_URL"]  # the script's default URL
    known = compose_env("worker", compose_example_env)["TYPOSTREAM_KNOWN_MALICIOUS_PATHS"]
    assert known == f"{directory}/current/{script.SUBDIR}"
    assert mounts["worker"][directory] == f"advisories:{directory}:ro"


# --- Kubernetes ------------------------------------------------------------------------------------

K8S_DOCS: dict[str, dict[str, Any]] = {}
for _path in sorted(set(K8S.glob("*.yaml")) - {K8S / "kustomization.yaml"}):
    for _doc in load_all(_path):
        _key = f"{_doc['kind']}/{_doc['metadata']['name']}"
        assert _key not in K8S_DOCS, f"{_key} is defined twice"
        K8S_DOCS[_key] = _doc
K8S_WORKLOADS = {k: d for k, d in K8S_DOCS.items() if d["kind"] in WORKLOAD_KINDS}
K8S_COMMANDS = {
    f"{key}/{c['name']}": command_of(c)
    for key, doc in K8S_WORKLOADS.items()
    for c in containers(doc)
    if command_of(c)
}
CONFIG = K8S_DOCS["ConfigMap/typostream-config"]["data"]


def secrets_example() -> dict[str, str]:
    return {k: v or ("https://alerts.example/hook" if "URL" in k else "0123abcd" * 4)
            for k, v in read_env_file(K8S_SECRETS_EXAMPLE).items()}  # fmt: skip


def container_env(doc: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The environment Kubernetes gives ``container``: envFrom ConfigMaps, then env with $(VAR) expansion."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(K8S_DOCS[f"ConfigMap/{source['configMapRef']['name']}"]["data"])
    secrets = secrets_example()
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), str(entry["value"]))
        elif "secretKeyRef" in entry["valueFrom"]:
            env[entry["name"]] = secrets[entry["valueFrom"]["secretKeyRef"]["key"]]
        else:
            env[entry["name"]] = "downward-api"
    return env


def main_container(key: str) -> dict[str, Any]:
    return pod_spec(K8S_DOCS[key])["containers"][0]


def test_k8s_documents_present() -> None:
    assert {
        "Namespace/typostream", "ConfigMap/typostream-config", "ConfigMap/prometheus-config",
        "StatefulSet/kafka", "StatefulSet/redis", "StatefulSet/clickhouse", "StatefulSet/prometheus",
        "StatefulSet/typostream-worker", "Deployment/typostream-feed-npm", "Deployment/typostream-feed-pypi",
        "Deployment/typostream-alerts", "Job/typostream-topics", "CronJob/typostream-advisories-refresh",
        "PersistentVolumeClaim/typostream-advisories",
    } <= set(K8S_DOCS)  # fmt: skip
    for key, doc in K8S_DOCS.items():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "typostream", key


def test_kustomization_lists_every_manifest_and_generates_the_secret() -> None:
    kust = load_all(K8S / "kustomization.yaml")[0]
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files
    assert kust["secretGenerator"] == [{"name": "typostream-secrets", "envs": ["secrets.env"]}]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """`kubectl kustomize deploy/k8s` with secrets.env filled in from the example."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    work = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, work)
    (work / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in secrets_example().items()))
    out = subprocess.run([kubectl, "kustomize", str(work)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_validate_against_the_kubernetes_schema(
    rendered: list[dict[str, Any]], version: str
) -> None:
    import kubernetes_validate

    kinds = set()
    for doc in rendered:
        try:  # strict: unknown fields (typos) are errors too
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
        kinds.add(doc["kind"])
    assert {"Secret", "StatefulSet", "Deployment", "CronJob", "Job", "Role", "PersistentVolumeClaim"} <= kinds
    # The validator is live: a misspelt field is refused.
    broken = json.loads(json.dumps(next(d for d in rendered if d["kind"] == "Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_k8s_references_resolve(rendered: list[dict[str, Any]]) -> None:
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    secret = next(d for d in rendered if d["kind"] == "Secret")
    assert secret["metadata"]["name"].startswith("typostream-secrets-")  # content hash: a change rolls pods
    assert set(secret["data"]) == set(read_env_file(K8S_SECRETS_EXAMPLE))
    for doc in (d for d in rendered if d["kind"] in WORKLOAD_KINDS):
        spec, where = pod_spec(doc), f"{doc['kind']}/{doc['metadata']['name']}"
        for c in containers(doc):
            for source in c.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in names, where
            for entry in c.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"], where
                    assert ref["key"] in secret["data"], where
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names, where
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names, where
        if "serviceAccountName" in spec:
            assert ("ServiceAccount", spec["serviceAccountName"]) in names, where


def test_k8s_env_vars_are_settings_fields() -> None:
    assert_settings_vars(list(CONFIG), "configmap")
    for key, doc in K8S_WORKLOADS.items():
        for c in containers(doc):
            names = [e["name"] for e in c.get("env", []) if e["name"].startswith(ENV_PREFIX)]
            assert_settings_vars(names, f"{key}/{c['name']}")
    assert_settings_vars(
        [k for k in read_env_file(K8S_SECRETS_EXAMPLE) if k.startswith(ENV_PREFIX)], "secrets"
    )


def test_k8s_env_references_are_defined_before_use() -> None:
    for key, doc in K8S_WORKLOADS.items():
        for c in containers(doc):
            defined: list[str] = []
            for entry in c.get("env", []):
                for ref in re.findall(r"\$\((\w+)\)", str(entry.get("value", ""))):
                    assert ref in defined, (
                        f"{key}/{c['name']}: {entry['name']} uses $({ref}) before it is set"
                    )
                defined.append(entry["name"])


def test_k8s_worker_starts_with_these_settings(tmp_path: Path) -> None:
    sts = K8S_DOCS["StatefulSet/typostream-worker"]
    container = main_container("StatefulSet/typostream-worker")
    assert command_of(container) == ["typostream", "worker"]
    env = container_env(sts, container)
    assert env["TYPOSTREAM_ALERT_IN_WORKER"] == "false"
    dsn = urlsplit(env["TYPOSTREAM_CLICKHOUSE_DSN"])
    assert (dsn.hostname, dsn.port, dsn.username, dsn.password) == (
        "clickhouse",
        8123,
        "typostream",
        "0123abcd" * 4,
    )
    assert_worker_composes(env, tmp_path)
    assert sts["spec"]["replicas"] <= int(CONFIG["TYPOSTREAM_PARTITIONS"])
    service = K8S_DOCS["Service/typostream-worker"]
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["data"]["mountPath"] == CONFIG["TYPOSTREAM_DATA_DIR"]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


@pytest.mark.parametrize(("where", "args"), sorted(K8S_COMMANDS.items()))
def test_k8s_sync_commands_parse(where: str, args: list[str]) -> None:
    if args[0] == "typostream-advisories-sync":
        sync_script().build_parser().parse_args(args[1:])
    else:
        assert args[0] in {"typostream", "redis-server"} or where.startswith(
            ("StatefulSet/kafka", "StatefulSet/prom")
        )


ALL_CLI = [
    *(cli_param(a, f"compose:{n}") for n, a in sorted(COMPOSE_COMMANDS.items()) if a[0] == "typostream"),
    *(cli_param(a, f"k8s:{w}") for w, a in sorted(K8S_COMMANDS.items()) if a[0] == "typostream"),
]


@pytest.mark.parametrize("args", ALL_CLI)
def test_cli_flags_exist(args: list[str]) -> None:
    """Every typostream command line in deploy/ parses with the real CLI (unknown flag or bad value fails)."""
    parse_cli(args)


def test_k8s_prometheus_scrapes_every_long_running_process() -> None:
    long_running = {
        key: doc
        for key, doc in K8S_WORKLOADS.items()
        if doc["kind"] in {"Deployment", "StatefulSet"}
        and is_long_running(command_of(pod_spec(doc)["containers"][0]))
    }
    assert set(long_running) == {
        "StatefulSet/typostream-worker", "Deployment/typostream-feed-npm", "Deployment/typostream-feed-pypi",
        "Deployment/typostream-alerts",
    }  # fmt: skip
    for key, doc in long_running.items():
        container = pod_spec(doc)["containers"][0]
        host, port = metrics_endpoint(command_of(container), container_env(doc, container))
        assert host == "0.0.0.0", f"{key}: /metrics on {host} is unreachable from the Prometheus pod"
        annotations = pod_metadata(doc).get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", key
        assert annotations.get("prometheus.io/path") == "/metrics", key
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports.get("metrics") == port, key
        assert container["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}, key
    # What the Prometheus config keeps: annotated pods, on the port named `metrics`.
    config = yaml.safe_load(K8S_DOCS["ConfigMap/prometheus-config"]["data"]["prometheus.yml"])
    job = next(j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j)
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"own_namespace": True}}]
    keeps = {
        tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"
    }
    assert keeps == {
        ("__meta_kubernetes_pod_annotation_prometheus_io_scrape",): "true",
        ("__meta_kubernetes_pod_container_port_name",): "metrics",
    }
    # The only other containers with a port named `metrics` would be scraped too: none must be stray.
    for key, doc in K8S_WORKLOADS.items():
        for c in containers(doc):
            if any(p.get("name") == "metrics" for p in c.get("ports", [])):
                assert key in long_running, key
    # Prometheus may list pods in its namespace.
    prometheus = pod_spec(K8S_DOCS["StatefulSet/prometheus"])
    binding = K8S_DOCS["RoleBinding/prometheus"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": prometheus["serviceAccountName"],
                                    "namespace": "typostream"}]  # fmt: skip
    rules = K8S_DOCS[f"Role/{binding['roleRef']['name']}"]["rules"]
    assert {"list", "watch"} <= set(next(r for r in rules if "pods" in r["resources"])["verbs"])
    mount = next(m for m in prometheus["containers"][0]["volumeMounts"] if m["name"] == "config")
    assert "--config.file=" + mount["mountPath"] + "/prometheus.yml" in prometheus["containers"][0]["args"]


def test_k8s_services_select_pods_and_ports() -> None:
    for key, service in ((k, d) for k, d in K8S_DOCS.items() if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        pods = [
            d for d in K8S_WORKLOADS.values() if selector.items() <= pod_metadata(d).get("labels", {}).items()
        ]
        assert pods, f"{key} selects no pod"
        ports = {p.get("name") for d in pods for c in containers(d, init=False) for p in c.get("ports", [])}
        numbers = {
            p["containerPort"] for d in pods for c in containers(d, init=False) for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            assert target in ports or target in numbers, f"{key}: targetPort {target}"


def test_k8s_services_reach_each_other() -> None:
    def service_port(name: str) -> int:
        return int(K8S_DOCS[f"Service/{name}"]["spec"]["ports"][0]["port"])

    host, port = CONFIG["TYPOSTREAM_KAFKA_BOOTSTRAP"].split(":")
    assert service_port(host) == int(port)
    redis = urlsplit(CONFIG["TYPOSTREAM_REDIS_URL"])
    assert redis.port == service_port(str(redis.hostname))
    dsn = urlsplit(main_container("StatefulSet/typostream-worker")["env"][1]["value"])
    assert dsn.port == service_port(str(dsn.hostname))
    ch_env = {e["name"]: e.get("value") for e in main_container("StatefulSet/clickhouse")["env"]}
    assert (dsn.username, dsn.path) == (ch_env["CLICKHOUSE_USER"], "/" + ch_env["CLICKHOUSE_DB"])
    # Kafka: three KRaft voters, one per pod, addressed through the headless service.
    kafka = K8S_DOCS["StatefulSet/kafka"]
    env = {e["name"]: e for e in main_container("StatefulSet/kafka")["env"]}
    replicas = kafka["spec"]["replicas"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]["value"].split(",")
    assert [v.split("@")[0] for v in voters] == [str(i) for i in range(replicas)]
    assert all(
        v.split("@")[1].startswith(f"kafka-{i}.{kafka['spec']['serviceName']}.") for i, v in enumerate(voters)
    )
    assert (
        env["KAFKA_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
        == "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    assert env["KAFKA_ADVERTISED_LISTENERS"]["value"].startswith("PLAINTEXT://$(POD_NAME).kafka-headless.")
    assert K8S_DOCS["Service/kafka-headless"]["spec"]["publishNotReadyAddresses"] is True
    assert kafka["spec"]["podManagementPolicy"] == "Parallel"  # the quorum needs every voter up
    rf = int(CONFIG["TYPOSTREAM_REPLICATION_FACTOR"])
    assert rf <= replicas and int(env["KAFKA_MIN_INSYNC_REPLICAS"]["value"]) < rf  # one broker may be down


def test_k8s_state_lives_on_volumes() -> None:
    script = sync_script()
    for registry in ("npm", "pypi"):
        key = f"Deployment/typostream-feed-{registry}"
        doc = K8S_DOCS[key]
        assert (
            doc["spec"]["replicas"] == 1 and doc["spec"]["strategy"]["type"] == "Recreate"
        )  # one cursor owner
        mount = main_container(key)["volumeMounts"][0]
        assert mount["mountPath"] == CONFIG["TYPOSTREAM_DATA_DIR"]
        volume = next(v for v in pod_spec(doc)["volumes"] if v["name"] == mount["name"])
        claim = K8S_DOCS[f"PersistentVolumeClaim/{volume['persistentVolumeClaim']['claimName']}"]
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert CONFIG["TYPOSTREAM_ALERT_DEDUPE"] == "redis"  # alert delivery keeps no local state
    # Advisories: written by the worker's init container and the CronJob, read-only in the worker.
    claim = K8S_DOCS["PersistentVolumeClaim/typostream-advisories"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # pods on several nodes share it
    writers = 0
    for key, doc in K8S_WORKLOADS.items():
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in pod_spec(doc).get("volumes", []) if "persistentVolumeClaim" in v}  # fmt: skip
        for c in containers(doc):
            for m in c.get("volumeMounts", []):
                if claims.get(m["name"]) != "typostream-advisories":
                    continue
                args = command_of(c)
                if args[0] == "typostream-advisories-sync":
                    writers += 1
                    assert not m.get("readOnly")
                    assert container_env(doc, c)["ADVISORIES_DIR"] == m["mountPath"]
                else:
                    assert args == ["typostream", "worker"] and m["readOnly"] is True, key
                    assert (
                        CONFIG["TYPOSTREAM_KNOWN_MALICIOUS_PATHS"]
                        == f"{m['mountPath']}/current/{script.SUBDIR}"
                    )
    assert writers == 2  # init container (sync on start) + CronJob (refresh)
    init = pod_spec(K8S_DOCS["StatefulSet/typostream-worker"])["initContainers"][0]
    assert "--allow-stale" in command_of(init)  # a registry outage does not keep workers down
    cron = K8S_DOCS["CronJob/typostream-advisories-refresh"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


# --- both ------------------------------------------------------------------------------------------


def test_advisory_command_lives_in_one_place() -> None:
    """Everything that syncs advisories runs typostream-advisories-sync: swapping it for
    `typostream advisories sync` is an edit of deploy/advisories_sync.py alone."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY deploy/advisories_sync.py /usr/local/bin/typostream-advisories-sync" in dockerfile
    assert "!deploy/advisories_sync.py" in (DEPLOY / "Dockerfile.dockerignore").read_text()
    users = [n for n, a in COMPOSE_COMMANDS.items() if a[0] == "typostream-advisories-sync"]
    users += [w for w, a in K8S_COMMANDS.items() if a[0] == "typostream-advisories-sync"]
    assert len(users) == 4, users  # compose one-shot + loop, k8s init container + CronJob
    assert sync_script().DEFAULT_URL.endswith("/ossf/malicious-packages/archive/refs/heads/main.zip")
    for path in [DEPLOY / "docker-compose.yml", *K8S.glob("*.yaml")]:
        text = path.read_text()
        assert "archive/refs/heads" not in text and "git clone" not in text, path.name


def test_kafka_kraft_has_a_cluster_id() -> None:
    """apache/kafka's start script exits with "CLUSTER_ID environment variable not set" in KRaft mode
    (docker/resources/common-scripts/configure: `ensure CLUSTER_ID`): compose lacked it before."""
    compose_env_ = COMPOSE["services"]["kafka"]["environment"]
    k8s_env = {e["name"]: e.get("value") for e in main_container("StatefulSet/kafka")["env"]}
    for env in (compose_env_, k8s_env):
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        cluster_id = env["CLUSTER_ID"]
        # A Kafka Uuid: 16 bytes, URL-safe base64 without padding, as `kafka-storage.sh random-uuid` prints.
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_no_secret_is_committed() -> None:
    # No Secret manifest: the secret is generated from a git-ignored env file.
    assert not any(d["kind"] == "Secret" for d in K8S_DOCS.values())
    assert not (K8S / "secret.yaml").exists()
    ignored = subprocess.run(
        ["git", "check-ignore", "deploy/.env", "deploy/k8s/secrets.env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ignored.stdout.split() == ["deploy/.env", "deploy/k8s/secrets.env"]
    tracked = subprocess.run(["git", "ls-files", "deploy"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "deploy/.env\n" not in tracked and "deploy/k8s/secrets.env\n" not in tracked
    # The examples leave every secret blank.
    for path in (COMPOSE_ENV_EXAMPLE, K8S_SECRETS_EXAMPLE):
        for key, value in read_env_file(path).items():
            if key in SECRET_VALUES:
                assert value == "", f"{path.name}: {key} has a value"
    # Compose: a secret is always a ${VAR} taken from deploy/.env, a URL's password too.
    for name, svc in COMPOSE["services"].items():
        for key, value in env_dict(svc.get("environment")).items():
            if key in SECRET_VALUES:
                assert re.fullmatch(rf"\$\{{{key}(:[-?][^}}]*)?\}}", value), f"{name}: {key}={value}"
            if key in SECRET_URLS:
                password = urlsplit(value).password
                assert password is None or re.fullmatch(r"\$\{\w+:\?[^}]*\}", password), f"{name}: {key}"
    # Kubernetes: secrets come from secretKeyRef, a URL's password from $(VAR) of one; none in ConfigMaps.
    for key in CONFIG:
        assert key not in SECRET_VALUES, key
        if key in SECRET_URLS:
            assert urlsplit(CONFIG[key]).password is None, key
    for key, doc in K8S_WORKLOADS.items():
        for c in containers(doc):
            from_secret = {e["name"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
            for entry in c.get("env", []):
                if entry["name"] in SECRET_VALUES:
                    assert entry["name"] in from_secret, f"{key}: {entry['name']}"
                if entry["name"] in SECRET_URLS:
                    password = urlsplit(entry["value"]).password
                    assert password is None or password.strip("$()") in from_secret, f"{key}: {entry['name']}"


def test_dockerfile_runs_typostream() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim AS base" in text
    assert text.count('CMD ["typostream", "worker"]') == 2  # both targets
    assert (
        "USER typostream" in text
        and "install -d -o typostream -g typostream /var/lib/typostream-advisories" in text
    )
    for name in re.findall(r"\b(TYPOSTREAM_[A-Z_]+)=", text):
        assert_settings_vars([name], "Dockerfile")
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for folder in re.findall(r"^COPY (\w+) \./\1$", text, flags=re.MULTILINE):
        assert (ROOT / folder / "__init__.py").is_file(), folder
        assert f"!{folder}" in ignore, folder  # sent in the build context
    assert ignore[0] == "*"  # and nothing else: no .venv, no deploy/.env
