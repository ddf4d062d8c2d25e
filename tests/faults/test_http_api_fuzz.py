"""The worker's HTTP API fuzzed from its OpenAPI description (``schemas/openapi.yaml``, schemathesis).

- The description matches the routes the worker registers (method and path, both ways).
- Every operation, with valid and invalid inputs (schemathesis' positive and negative modes):
  never a 5xx, never slower than :data:`REQUEST_TIMEOUT_S`, only documented status codes and
  content types, bodies matching the response schemas, invalid input refused with a 4xx.
- Undocumented methods on the documented paths and Faust's own pages: never a 5xx or a hang.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.faults.harness import LedgerRow, produce, profile, record_row
from tests.faults.inputs import valid_message
from typostream.streams.app import build_app
from typostream.streams.config import Settings
from typostream.streams.stack import StackState
from typostream.streams.stack.processes import free_port
from typostream.streams.worker_process import WorkerProcess

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SPEC = Path(str(files("typostream.schemas") / "openapi.yaml"))
REQUEST_TIMEOUT_S = 10.0
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
STATUSES: Counter[int] = Counter()
HANGS: list[str] = []


def spec_operations() -> set[tuple[str, str]]:
    spec = yaml.safe_load(SPEC.read_text())
    return {
        (method.upper(), path) for path, item in spec["paths"].items() for method in item if method in METHODS
    }


def test_the_description_matches_the_routes_the_worker_registers(tmp_path: Path) -> None:
    pipeline = build_app(Settings(data_dir=tmp_path), sinks=[], store="memory://")
    router = pipeline.app.web.web_app.router  # type: ignore[attr-defined]
    # aiohttp adds HEAD beside every method of a view; HEAD is not part of the API
    routes = {(r.method, r.resource.canonical) for r in router.routes() if r.method != "HEAD"}
    assert spec_operations() == routes
    spec = yaml.safe_load(SPEC.read_text())
    assert spec["servers"][0]["url"] == f"http://127.0.0.1:{Settings().web_port}"
    assert set(spec["paths"]["/api/v1/package"]["get"]["parameters"][0]["schema"]["enum"]) == {"npm", "pypi"}


@pytest.fixture(scope="module")
def fuzz_worker(
    embedded_stack: StackState, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker for the module, with a few packages seen (so ``/api/v1/package`` finds some)."""
    root = tmp_path_factory.mktemp("fuzz")
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        data_dir=root / "typostream",
        kafka_bootstrap=embedded_stack.kafka_bootstrap,
        redis_url=embedded_stack.redis_url,
        clickhouse_dsn=f"chdb://{root / 'clickhouse'}",
        web_port=free_port(),
        sink_batch_seconds=0.2,
        app_id=f"typostream-{suffix}",
        **{f.name: f"{f.default}-{suffix}" for f in fields(Settings) if f.name.startswith("topic_")},
    )
    worker = WorkerProcess(settings).start()
    try:
        worker.wait_ready(timeout_s=90)
        seen = [valid_message(n, "1.0.0", r, "2026-11-25T10:00:00Z") for n, r in
                [("expresss", "npm"), ("left-pad", "npm"), ("reqeusts", "pypi")]]  # fmt: skip
        produce(settings, [m.raw for m in seen])
        deadline = time.monotonic() + 60
        while ((worker.stats() or {}).get("clickhouse_events") or 0) < len(seen):
            assert time.monotonic() < deadline, f"seed events not stored; log {worker.log_path}"
            time.sleep(0.3)
        yield worker
    finally:
        worker.kill()
        requests = sum(STATUSES.values())
        if requests:
            server_errors = sum(n for status, n in STATUSES.items() if status >= 500)
            record_row(
                LedgerRow(
                    "HTTP API fuzz (schemathesis, positive + negative)",
                    len(spec_operations()),
                    requests,
                    requests - server_errors - len(HANGS),
                    "-",
                    server_errors + len(HANGS),
                    "-",
                    f"sent = requests, processed = answered without 5xx in < {REQUEST_TIMEOUT_S:.0f} s, "
                    f"lost = 5xx or hangs; statuses {dict(sorted(STATUSES.items()))}",
                )
            )


# Loaded eagerly: one test per operation; the worker's address is given per call. (schemathesis'
# fixture-based loader sets pytest's private ``Function._nodeid``, which pytest 9 no longer has.)
schema = schemathesis.openapi.from_path(str(SPEC))


@schema.parametrize()
@settings(
    max_examples=profile().api_examples,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=profile().name == "short",
)
def test_no_operation_answers_5xx_hangs_or_breaks_its_description(
    case: Any, fuzz_worker: WorkerProcess
) -> None:
    started = time.monotonic()
    try:
        response = case.call(base_url=fuzz_worker.base_url, timeout=REQUEST_TIMEOUT_S)
    except Exception as exc:  # requests' ReadTimeout / ConnectionError: a hang or a dropped request
        HANGS.append(f"{case.method} {case.path}: {exc!r}")
        raise AssertionError(f"{case.method} {case.formatted_path} got no answer: {exc!r}") from exc
    STATUSES[response.status_code] += 1
    assert time.monotonic() - started < REQUEST_TIMEOUT_S
    case.validate_response(response, checks=CHECKS)


def test_undocumented_methods_and_faust_pages_never_answer_5xx(fuzz_worker: WorkerProcess) -> None:
    documented = spec_operations()
    probes = [
        (m.upper(), p)
        for p in {p for _, p in documented}
        for m in METHODS
        if (m.upper(), p) not in documented
    ]
    probes += [
        ("GET", "/"),
        ("GET", "/router/"),
        ("GET", "/table/"),
        ("GET", "/api/v1/nope"),
        ("GET", "/%ff"),
    ]
    answered: dict[tuple[str, str], int] = {}
    for method, path in probes:
        request = urllib.request.Request(fuzz_worker.base_url + path, method=method, data=b"{}")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                answered[(method, path)] = response.status
        except urllib.error.HTTPError as error:
            answered[(method, path)] = error.code
        STATUSES[answered[(method, path)]] += 1
    assert not {k: v for k, v in answered.items() if v >= 500}, answered
    for method, path in probes[:-5]:
        if method not in ("HEAD", "OPTIONS"):  # aiohttp answers HEAD like GET where there is a GET
            assert answered[(method, path)] == 405, (method, path, answered[(method, path)])


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b"names=left-pad&package_name=reqeusts&version=2.31.0&registry=pypi",
            "application/x-www-form-urlencoded",
        ),
        (b"name=&names=0&package_name=reqeusts&registry=pypi", "application/x-www-form-urlencoded"),
        (b'{"names": ["expresss"], "name": "lodahs"}', "application/json"),
        (b'{"package_name": "expresss", "name": "lodahs"}', "application/json"),
    ],
)
def test_a_scan_naming_packages_two_ways_is_refused_not_half_answered(
    fuzz_worker: WorkerProcess, body: bytes, content_type: str
) -> None:
    """Found by the fuzz run: with ``names`` and ``package_name`` (or ``name``) in one request the
    API answered 200 for ``names`` alone (and applied ``version`` to it): the other package was
    silently not scanned. Now one way of naming packages per request, else 400."""
    request = urllib.request.Request(
        fuzz_worker.base_url + "/api/v1/scan",
        data=body,
        headers={"Content-Type": content_type},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S)
    assert refused.value.code == 400
    message = orjson.loads(refused.value.read())["error"]
    assert "one of" in message and "names" in message, message


@pytest.mark.parametrize("registry", [{}, [], 0, False, {"npm": 1}])
def test_a_scan_whose_registry_is_not_a_string_is_refused_not_defaulted(
    fuzz_worker: WorkerProcess, registry: object
) -> None:
    """Found by the fuzz run: a falsy non-string ``registry`` (``{}``, ``[]``, ``0``, ``false``) was
    taken as "not given" and the names were scanned as npm; now 400 like any unknown registry."""
    body = orjson.dumps({"registry": registry, "names": ["expresss"]})
    request = urllib.request.Request(
        fuzz_worker.base_url + "/api/v1/scan", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S)
    assert refused.value.code == 400
    assert "'registry' must be one of" in orjson.loads(refused.value.read())["error"]
