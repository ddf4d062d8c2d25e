"""The layer contract (ARCHITECTURE.md): imports point one way, and the domain stays pure.

    typostream.streams            composition: config, app, CLI, stack, web       (top)
    typostream.agents.stream      Faust agents
    typostream.agents.adapters    I/O: ClickHouse, Redis, HTTP, feeds, sinks, metrics
    typostream.agents.domain      pure: detection, advisories, events, messages, vocabulary, errors
    typostream.schemas / .data    data files and their loaders                     (bottom)

A module may import its own layer and the layers below it, never above. Domain modules import no
runtime library (Kafka, Faust, ClickHouse, Redis, HTTP, metrics, terminal UI), so everything that
decides can be imported and tested without servers. Every import counts, function-level and
``TYPE_CHECKING`` ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {d: f"typostream.{d}" for d in ("streams", "agents", "schemas", "data")}
LAYERS = (
    ("data", ("typostream.schemas", "typostream.data")),
    ("domain", ("typostream.agents.domain",)),
    ("adapters", ("typostream.agents.adapters",)),
    ("stream", ("typostream.agents.stream",)),
    ("composition", ("typostream.streams",)),
)
RUNTIME_LIBRARIES = frozenset(
    {"faust", "mode", "aiokafka", "clickhouse_connect", "chdb", "redis", "aiohttp", "yarl",
     "prometheus_client", "typer", "click", "rich"}
)  # fmt: skip
FORBIDDEN = {
    "data": RUNTIME_LIBRARIES,
    "domain": RUNTIME_LIBRARIES,
    "adapters": frozenset({"faust", "mode", "typer", "click"}),  # adapters work without a Faust app
}


def layer_of(module: str) -> int | None:
    if module == "typostream.agents":  # the namespace package: a docstring, no imports
        return 1
    for rank, (_name, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE_DIRS[parts[0]], *parts[1:]])


def imported_modules(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from typostream.agents import stream`` imports the sub-package too
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def violations(module: str, source: str) -> list[str]:
    """Every import of ``module``'s source that breaks the contract, one readable line per statement."""
    own = layer_of(module)
    if own is None:
        return [f"{module}: not in any layer (add it to LAYERS)"]
    layer_name = LAYERS[own][0]
    problems: dict[int, str] = {}
    for line, target in imported_modules(source):
        top = target.split(".")[0]
        if top in FORBIDDEN.get(layer_name, ()):
            problems.setdefault(line, f"{module}:{line} imports {target}: {layer_name} must not use {top}")
        rank = layer_of(target) if top == "typostream" else None
        if rank is not None and rank > own:
            upper = LAYERS[rank][0]
            problems.setdefault(
                line, f"{module}:{line} imports {target}: {layer_name} may not import {upper}"
            )
    return list(problems.values())


def package_modules() -> list[Path]:
    return sorted(p for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_respects_the_layers() -> None:
    problems = [v for path in package_modules() for v in violations(module_name(path), path.read_text())]
    assert problems == []


def test_generate_scripts_are_in_the_data_layer() -> None:
    assert layer_of(module_name(ROOT / "data" / "popular" / "generate.py")) == 0


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("typostream.agents.domain.x", "import redis\n", "must not use redis"),
        (
            "typostream.agents.domain.x",
            "def f():\n    from aiokafka import AIOKafkaProducer\n",
            "must not use aiokafka",
        ),
        (
            "typostream.agents.domain.x",
            "from clickhouse_connect.driver import Client\n",
            "must not use clickhouse",
        ),
        (
            "typostream.agents.domain.x",
            "from typostream.agents.adapters import metrics\n",
            "may not import adapters",
        ),
        (
            "typostream.agents.domain.x",
            "from typostream.streams.config import Settings\n",
            "may not import composition",
        ),
        ("typostream.agents.adapters.x", "import faust\n", "must not use faust"),
        ("typostream.agents.stream.x", "from typostream.streams import app\n", "may not import composition"),
        ("typostream.agents.adapters.x", "from typostream.agents import stream\n", "may not import stream"),
    ],
)
def test_the_checker_catches_a_planted_violation(module: str, source: str, expected: str) -> None:
    [problem] = violations(module, source)
    assert expected in problem


def test_the_checker_allows_downward_imports() -> None:
    source = (
        "import orjson\nfrom typostream.agents.domain.errors import ConfigError\nimport typostream.schemas\n"
    )
    assert violations("typostream.agents.adapters.x", source) == []
    assert (
        violations("typostream.streams.x", "import faust\nfrom typostream.agents.stream import detect\n")
        == []
    )
